"""/api/v1/audit: the log in keyset pages with ``audit list``'s filters, and ``verify``
(chain and signed checkpoints) on the server's database, for admin tokens only."""

from __future__ import annotations

from sqlalchemy import text

from tests.api.conftest import ApiClient, assert_problem
from tests.api.test_list import issue

AUDIT = "/api/v1/audit"


def test_the_audit_log_is_admin_only(api: ApiClient) -> None:
    for scope in ("read", "issue", "revoke"):
        token = api.token("web", scope, ["*.example.test"])
        assert_problem(api.get(AUDIT, token=token), 403, "admin is required")
        assert_problem(api.post(f"{AUDIT}/verify", token=token, json={}), 403, "admin is required")


def test_pages_walk_the_whole_log_with_the_cli_filters(api: ApiClient, admin: str) -> None:
    serials = [issue(api.platform, f"h{i}.example.test") for i in range(3)]
    everything = [e.to_dict() for e in api.platform.audit.entries()]
    walked: list[dict[str, object]] = []
    after = 0
    while True:
        page = api.get(AUDIT, token=admin, params={"limit": 2, "after": after})
        assert page.status_code == 200, page.text
        walked += page.json()["items"]
        if page.json()["next_after"] is None:
            break
        after = page.json()["next_after"]
    assert walked == everything
    assert len(everything) > 4

    issuer = next(ca.id for ca in api.platform.authorities.hierarchy() if ca.role == "intermediate")
    about = api.get(AUDIT, token=admin, params={"serial": serials[1], "issuer": issuer}).json()
    assert [e["action"] for e in about["items"]] == ["certificate.issued"]
    assert about["items"] == [
        e.to_dict() for e in api.platform.audit.entries(serial=serials[1], issuer=issuer)
    ]
    assert_problem(api.get(AUDIT, token=admin, params={"serial": "xyz"}), 400, "bad serial 'xyz'")
    assert_problem(api.get(AUDIT, token=admin, params={"limit": 0}), 422, "limit")


def test_verify_reports_a_tampered_entry(api: ApiClient, admin: str) -> None:
    issue(api.platform, "www.example.test")
    intact = api.post(f"{AUDIT}/verify", token=admin, json={})
    assert intact.status_code == 200, intact.text
    assert intact.json()["ok"] is True
    entries = intact.json()["entries"]

    with api.platform.database.engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET actor = 'mallory' WHERE seq = 2"))
    broken = api.post(f"{AUDIT}/verify", token=admin, json={}).json()
    assert broken["ok"] is False
    assert broken["first_bad_seq"] == 2
    assert broken == {**api.platform.audit.check().to_dict(), "entries": broken["entries"]}
    assert broken["entries"] <= entries


def test_verify_checks_signed_checkpoints(api: ApiClient, admin: str) -> None:
    issue(api.platform, "www.example.test")
    line = api.platform.audit.checkpoint().to_line()
    anchored = api.post(f"{AUDIT}/verify", token=admin, json={"checkpoint_lines": [line]}).json()
    assert anchored["ok"] is True and anchored["checkpoints"] == 1

    # The log wiped back to before the checkpoint: the chain alone cannot tell, the checkpoint can.
    with api.platform.database.engine.begin() as conn:
        last = conn.execute(text("SELECT max(seq) FROM audit_log")).scalar_one()
        conn.execute(text("DELETE FROM audit_log WHERE seq = :s"), {"s": last})
        conn.execute(
            text("UPDATE audit_head SET seq = :s, hash = (SELECT hash FROM audit_log WHERE seq = :s)"),
            {"s": last - 1},
        )
    assert api.post(f"{AUDIT}/verify", token=admin, json={}).json()["ok"] is True
    wiped = api.post(f"{AUDIT}/verify", token=admin, json={"checkpoint_lines": [line]}).json()
    assert wiped["ok"] is False and wiped["checkpoint_reason"]

    assert_problem(
        api.post(f"{AUDIT}/verify", token=admin, json={"checkpoint_lines": [line], "public_key": "!!"}),
        400,
        "is not base64",
    )
