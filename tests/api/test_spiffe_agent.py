"""The agent-facing SPIFFE endpoints (issue 15 contract): an enrolled agent lists the entries
it parents, gets X509-SVIDs and JWT-SVIDs for them (and only for them) and the bundle."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from certfleet.app import Platform
from certfleet.inventory import CertificateQuery, Source
from tests.api.conftest import assert_problem, stored_rows
from tests.api.spiffe_fixtures import TD, AgentClient, enrol, svid_csr
from tests.conftest import FakeClock

AGENT = "/api/v1/agent/spiffe"


@pytest.fixture
def spiffe_platform(platform: Platform) -> Platform:
    platform.spiffe.initialize(TD, actor="test")
    return platform


@pytest.fixture
def agent(spiffe_platform: Platform) -> Iterator[AgentClient]:
    client = AgentClient(spiffe_platform, enrol(spiffe_platform, "host1"))
    yield client
    client.close()


def _entry(platform: Platform, path: str = "ns/app", parent: str = "host1", **kw: object) -> str:
    entry = platform.spiffe.entries.create(
        f"spiffe://{TD}/{path}",
        f"spiffe://{TD}/agent/{parent}",
        ["unix:uid:1000"],
        actor="test",
        **kw,  # type: ignore[arg-type]
    )
    return entry.id


def test_entries_lists_only_what_this_agent_parents(spiffe_platform: Platform, agent: AgentClient) -> None:
    mine = _entry(spiffe_platform)
    _entry(spiffe_platform, "ns/other", parent="host2")
    body = agent.get(f"{AGENT}/entries").json()
    assert body["trust_domain"] == TD
    assert body["agent_id"] == f"spiffe://{TD}/agent/host1"
    assert [e["id"] for e in body["entries"]] == [mine]
    assert body["entries"][0] == {
        "id": mine,
        "spiffe_id": f"spiffe://{TD}/ns/app",
        "parent_id": f"spiffe://{TD}/agent/host1",
        "selectors": ["unix:uid:1000"],
        "ttl_seconds": 3600,
        "dns_names": [],
    }


def test_revision_changes_when_the_entry_set_changes(spiffe_platform: Platform, agent: AgentClient) -> None:
    before = agent.get(f"{AGENT}/entries").json()["revision"]
    entry_id = _entry(spiffe_platform)
    added = agent.get(f"{AGENT}/entries").json()["revision"]
    spiffe_platform.spiffe.entries.delete(entry_id, actor="test")
    deleted = agent.get(f"{AGENT}/entries").json()["revision"]
    assert before < added < deleted


def test_x509_svid_carries_the_entry_identity_not_the_csr_names(
    spiffe_platform: Platform, agent: AgentClient
) -> None:
    entry_id = _entry(spiffe_platform, dns_names=["app.example.org"])
    key = ec.generate_private_key(ec.SECP256R1())
    response = agent.post(
        f"{AGENT}/x509-svids", {"requests": [{"entry_id": entry_id, "csr": svid_csr(key, ("evil.example",))}]}
    )
    assert response.status_code == 200, response.text
    (svid,) = response.json()["svids"]
    assert svid["entry_id"] == entry_id and svid["spiffe_id"] == f"spiffe://{TD}/ns/app"
    cert = x509.load_pem_x509_certificate(svid["certificate"].encode())
    assert cert.public_key() == key.public_key()
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [f"spiffe://{TD}/ns/app"]
    assert san.get_values_for_type(x509.DNSName) == ["app.example.org"]
    assert cert.not_valid_after_utc - cert.not_valid_before_utc <= dt.timedelta(hours=1, minutes=5)
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    (issuer,) = x509.load_pem_x509_certificates(svid["chain"].encode())
    cert.verify_directly_issued_by(issuer)
    assert (
        issuer.subject.rfc4514_string().endswith("SPIFFE CA 1")
        or "SPIFFE CA 1" in issuer.subject.rfc4514_string()
    )


def test_an_agent_is_refused_an_entry_it_does_not_parent(
    spiffe_platform: Platform, agent: AgentClient
) -> None:
    other = _entry(spiffe_platform, "ns/other", parent="host2")
    before = stored_rows(spiffe_platform, "serials")
    response = agent.post(f"{AGENT}/x509-svids", {"requests": [{"entry_id": other, "csr": svid_csr()}]})
    assert_problem(response, 403, "not parented by this agent")
    assert_problem(
        agent.post(f"{AGENT}/jwt-svids", {"entry_id": other, "audience": ["a"]}),
        403,
        "not parented by this agent",
    )
    assert stored_rows(spiffe_platform, "serials") == before


def test_inventory_keeps_one_record_per_entry_with_counts(
    spiffe_platform: Platform, agent: AgentClient
) -> None:
    entry_id = _entry(spiffe_platform)
    serials = []
    for _ in range(3):
        response = agent.post(
            f"{AGENT}/x509-svids", {"requests": [{"entry_id": entry_id, "csr": svid_csr()}]}
        )
        cert = x509.load_pem_x509_certificate(response.json()["svids"][0]["certificate"].encode())
        serials.append(format(cert.serial_number, "x"))
    record = spiffe_platform.spiffe.entries.record(entry_id)
    assert record.svids_issued == 3 and record.live_svids == 3
    everything = spiffe_platform.inventory.query(CertificateQuery())
    spiffe_rows = [r for r in everything if r.source is Source.SPIFFE]
    assert len(spiffe_rows) == 1
    assert spiffe_rows[0].id == record.certificate_id
    assert spiffe_rows[0].sans[0] == f"spiffe://{TD}/ns/app"
    assert spiffe_rows[0].serial == serials[-1]  # the live SVID
    assert spiffe_rows[0].tags == (f"spiffe-entry:{entry_id}", "selector:unix:uid:1000")
    # Found by its SPIFFE ID, as any name.
    assert [r.id for r in spiffe_platform.inventory.query(CertificateQuery(san=f"spiffe://{TD}/ns/app"))] == [
        record.certificate_id
    ]
    assert stored_rows(spiffe_platform, "spiffe_svids") == 3


def test_bundle_for_the_agent(spiffe_platform: Platform, agent: AgentClient) -> None:
    body = agent.get(f"{AGENT}/bundle").json()
    assert body["trust_domain"] == TD
    (root_pem,) = body["x509_authorities"]
    root = x509.load_pem_x509_certificate(root_pem.encode())
    assert root.subject == root.issuer
    (jwk,) = body["jwt_authorities"]["keys"]
    assert jwk["kty"] == "EC" and jwk["crv"] == "P-256" and jwk["use"] == "jwt-svid" and jwk["kid"]
    assert body["refresh_hint_seconds"] == 300


def test_entries_is_404_before_spiffe_init(platform: Platform) -> None:
    client = AgentClient(platform, enrol(platform, "host1"))
    try:
        assert_problem(client.get(f"{AGENT}/entries"), 404, "not initialised")
    finally:
        client.close()


def test_a_batch_for_one_entry_still_leaves_one_record(spiffe_platform: Platform, agent: AgentClient) -> None:
    """Concurrent requests share issuance's batches: several SVIDs of one entry recorded in
    one transaction still leave one inventory record, the last one, and count each."""
    entry_id = _entry(spiffe_platform)
    other = _entry(spiffe_platform, "ns/two")
    requests = [{"entry_id": entry_id, "csr": svid_csr()} for _ in range(12)]
    requests += [{"entry_id": other, "csr": svid_csr()} for _ in range(3)]
    response = agent.post(f"{AGENT}/x509-svids", {"requests": requests})
    assert response.status_code == 200, response.text
    assert [s["entry_id"] for s in response.json()["svids"]] == [r["entry_id"] for r in requests]
    records = {r.entry.id: r for r in spiffe_platform.spiffe.entries.records()}
    assert (records[entry_id].svids_issued, records[entry_id].live_svids) == (12, 12)
    assert (records[other].svids_issued, records[other].live_svids) == (3, 3)
    spiffe_rows = [
        r for r in spiffe_platform.inventory.query(CertificateQuery()) if r.source is Source.SPIFFE
    ]
    assert sorted(r.id for r in spiffe_rows) == sorted(
        [records[entry_id].certificate_id, records[other].certificate_id]
    )
    assert stored_rows(spiffe_platform, "serials") >= 15  # every SVID's serial stays known to the CA


def test_bad_svid_requests_are_refused_before_anything_is_signed(
    spiffe_platform: Platform, agent: AgentClient
) -> None:
    entry_id = _entry(spiffe_platform)
    before = stored_rows(spiffe_platform, "serials")
    bad_csr = {"requests": [{"entry_id": entry_id, "csr": svid_csr()}, {"entry_id": entry_id, "csr": "junk"}]}
    assert_problem(agent.post(f"{AGENT}/x509-svids", bad_csr), 400, "malformed CSR")
    too_many = {"requests": [{"entry_id": entry_id, "csr": "x"}] * 501}
    assert agent.post(f"{AGENT}/x509-svids", too_many).status_code == 422
    assert agent.post(f"{AGENT}/x509-svids", {"requests": []}).status_code == 422
    assert stored_rows(spiffe_platform, "serials") == before


def test_a_policy_rule_added_later_stops_the_svids_of_an_entry_outside_it(
    spiffe_platform: Platform, agent: AgentClient
) -> None:
    """The prefix rule is judged again at each issuance (every rule runs there), so an entry
    registered before the rule gets no more SVIDs."""
    entry_id = _entry(spiffe_platform, team="payments")
    spiffe_platform.policy.apply(
        f"rules:\n  - name: pay\n    team: payments\n    spiffe_id_prefixes: [spiffe://{TD}/ns/payments]\n",
        source="test",
        actor="test",
    )
    response = agent.post(f"{AGENT}/x509-svids", {"requests": [{"entry_id": entry_id, "csr": svid_csr()}]})
    assert_problem(response, 403, "refused by policy rule 'pay'")


def test_expired_svids_leave_the_count_and_the_table(
    spiffe_platform: Platform, agent: AgentClient, clock: FakeClock
) -> None:
    """Valid counts follow the clock; expired SVIDs are pruned as new ones are recorded, so
    the table holds about one row per live SVID however long the fleet runs."""
    entry_id = _entry(spiffe_platform)
    for _ in range(2):
        agent.post(f"{AGENT}/x509-svids", {"requests": [{"entry_id": entry_id, "csr": svid_csr()}]})
    clock.advance(dt.timedelta(hours=2))
    record = spiffe_platform.spiffe.entries.record(entry_id)
    assert (record.svids_issued, record.live_svids) == (2, 0)
    agent.post(f"{AGENT}/x509-svids", {"requests": [{"entry_id": entry_id, "csr": svid_csr()}]})
    record = spiffe_platform.spiffe.entries.record(entry_id)
    assert (record.svids_issued, record.live_svids) == (3, 1)
    assert stored_rows(spiffe_platform, "spiffe_svids") == 1
