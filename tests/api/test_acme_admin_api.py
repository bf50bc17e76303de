"""/api/v1/acme/eab-keys and /api/v1/acme/renewal-overrides: what ``certfleet acme eab`` and
``acme renew-now`` do, for admin tokens only; an HMAC key is shown once, never listed."""

from __future__ import annotations

from certfleet.protocols.acme.jws import b64decode
from tests.api.conftest import ApiClient, assert_problem, stored_rows
from tests.api.test_list import issue

EAB = "/api/v1/acme/eab-keys"
RENEW = "/api/v1/acme/renewal-overrides"


def test_eab_keys_are_admin_only(api: ApiClient) -> None:
    narrow = api.token("payments", "issue", ["**.pay.example.test"])
    assert_problem(api.get(EAB, token=narrow), 403, "admin is required")
    assert_problem(api.post(EAB, token=narrow, json={"team": "payments"}), 403, "admin is required")
    assert_problem(api.request("DELETE", f"{EAB}/kid-x", token=narrow), 403, "admin is required")
    assert_problem(api.post(RENEW, token=narrow, json={"all": True}), 403, "admin is required")
    assert stored_rows(api.platform, "acme_eab_keys") == 0


def test_create_shows_the_hmac_key_once_and_list_never(api: ApiClient, admin: str) -> None:
    created = api.post(
        EAB,
        token=admin,
        json={"team": "payments", "allow_names": ["**.Pay.example.test"], "description": "CI"},
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert len(b64decode(body["hmac_key"], "hmac")) == 32
    assert created.headers["location"].endswith(f"/eab-keys/{body['kid']}")
    assert body["key"]["allow_names"] == ["**.pay.example.test"]

    listed = api.get(EAB, token=admin)
    assert listed.status_code == 200
    assert listed.json() == [k.to_dict() for k in api.platform.acme.eab_keys()]
    assert listed.json() == [body["key"]]
    assert body["hmac_key"] not in listed.text

    assert_problem(
        api.post(EAB, token=admin, json={"team": "x", "allow_names": ["a*b"]}), 400, "bad name pattern"
    )
    assert_problem(api.post(EAB, token=admin, json={"team": ""}), 422, "team")


def test_revoke_withdraws_an_unbound_key_once(api: ApiClient, admin: str) -> None:
    kid = api.post(EAB, token=admin, json={"team": "payments"}).json()["kid"]
    revoked = api.request("DELETE", f"{EAB}/{kid}", token=admin)
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["kid"] == kid
    assert api.get(EAB, token=admin).json() == []
    assert_problem(
        api.request("DELETE", f"{EAB}/{kid}", token=admin), 404, f"no external account key {kid!r}"
    )
    actions = [e.action for e in api.platform.audit.entries()]
    assert actions[-2:] == ["acme.eab.created", "acme.eab.revoked"]


def test_a_bound_key_cannot_be_revoked(api: ApiClient, admin: str) -> None:
    kid = api.post(EAB, token=admin, json={"team": "payments"}).json()["kid"]
    with api.platform.database.engine.begin() as conn:
        from sqlalchemy import text

        conn.execute(
            text("UPDATE acme_eab_keys SET account_id = 'acct-1', hmac_key = NULL WHERE kid = :k"), {"k": kid}
        )
    assert_problem(api.request("DELETE", f"{EAB}/{kid}", token=admin), 409, "already bound to an account")
    assert stored_rows(api.platform, "acme_eab_keys") == 1


def test_renew_now_by_serial_and_by_selection(api: ApiClient, admin: str) -> None:
    mine = issue(api.platform, "a.example.test", team="payments")
    other = issue(api.platform, "b.example.test", team="web")
    by_serial = api.post(RENEW, token=admin, json={"serials": [mine, "abcdef"]})
    assert by_serial.status_code == 200, by_serial.text
    assert by_serial.json() == [
        {"serial": mine, "ok": True, "detail": "renewal window moved to now"},
        {"serial": "abcdef", "ok": False, "detail": "no certificate issued by certfleet has this serial"},
    ]
    by_team = api.post(RENEW, token=admin, json={"team": "web"})
    assert [o["serial"] for o in by_team.json()] == [other]

    assert_problem(api.post(RENEW, token=admin, json={}), 400, "give serials, a selector")
    assert_problem(
        api.post(RENEW, token=admin, json={"serials": [mine], "team": "web"}),
        400,
        "either serials or a selector",
    )


def test_overrides_are_listed_and_cleared(api: ApiClient, admin: str) -> None:
    serial = issue(api.platform, "c.example.test")
    assert api.get(RENEW, token=admin).json() == []
    api.post(RENEW, token=admin, json={"serials": [serial]})
    listed = api.get(RENEW, token=admin)
    assert listed.status_code == 200, listed.text
    assert [o["serial"] for o in listed.json()] == [serial]
    assert listed.json() == [o.to_dict() for o in api.platform.acme.renewal_overrides()]

    narrow = api.token("web", "read")
    assert_problem(api.get(RENEW, token=narrow), 403, "admin is required")
    assert_problem(api.request("DELETE", f"{RENEW}/{serial}", token=narrow), 403, "admin is required")

    cleared = api.request("DELETE", f"{RENEW}/{serial.upper()}", token=admin)
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["serial"] == serial
    assert api.get(RENEW, token=admin).json() == []
    assert_problem(api.request("DELETE", f"{RENEW}/{serial}", token=admin), 404, "no renewal override")
    assert [e.action for e in api.platform.audit.entries()][-1] == "acme.renewal.override_cleared"
