"""certfleet's other roots, as the agent takes them from ``GET /api/v1/agent/trust-anchors``:
only self-signed CA certificates, a bad list refused whole with the certificate named, the
previous anchors kept, and with ``trust_store: system`` each anchor in the anchors folder
before the run deploys anything."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from certfleet.agent import AgentState, Runner
from certfleet.agent._trust_config import TrustSettings
from certfleet.agent.config import AgentConfig, CertificateSpec
from certfleet.agent.trust_anchors import TrustAnchors, UntrustedAnchor, parse_anchors
from certfleet.x509 import fingerprint_sha256, load_certificates, to_pem
from tests.agent.fakes import FakeServer, enrolled_state
from tests.agent.material import ThrowawayCa, spec_for
from tests.conftest import FakeClock
from tests.discovery.pki import Pki


def _answer(*certificates: x509.Certificate) -> dict[str, Any]:
    return {"roots": [{"certificate_pem": to_pem([c])} for c in certificates]}


def _self_signed_leaf() -> x509.Certificate:
    pki = Pki("Leafy")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "leaf.test")])
    return pki._build(name, name, key.public_key(), key, days=30, ca=False)


def _forged_root() -> x509.Certificate:
    """Names itself as its issuer, but another key signed it."""
    pki, other = Pki("Forged"), ec.generate_private_key(ec.SECP256R1())
    subject = pki.root.cert.subject
    return pki._build(subject, subject, pki.root.key.public_key(), other, days=30, ca=True)


def test_roots_are_taken_once_each() -> None:
    old, new = Pki("Old"), Pki("New")
    assert parse_anchors(_answer(old.root.cert, new.root.cert, old.root.cert)) == (
        old.root.cert,
        new.root.cert,
    )


@pytest.mark.parametrize(
    ("make", "why"),
    [
        (_self_signed_leaf, "is not a CA certificate (no basicConstraints cA)"),
        (lambda: Pki("Mid").intermediate.cert, "is not self-signed (issuer CN=Mid Root)"),
        (_forged_root, "is not self-signed (issuer CN=Forged Root)"),
    ],
    ids=["not-a-ca", "intermediate", "forged-signature"],
)
def test_anything_but_a_self_signed_ca_refuses_the_whole_list(make: Any, why: str) -> None:
    bad = make()
    with pytest.raises(UntrustedAnchor) as refused:
        parse_anchors(_answer(Pki("Good").root.cert, bad))
    assert refused.value.detail == (
        f"trust anchor {bad.subject.rfc4514_string()} sha256 {fingerprint_sha256(bad)} {why}: "
        "refusing the server's trust anchors, the previous ones are kept"
    )


class _Server(FakeServer):
    def __init__(self, ca: ThrowawayCa) -> None:
        super().__init__(ca)
        self.anchors: list[x509.Certificate] = [ca.certificate]

    def trust_anchors(self) -> dict[str, Any]:
        return _answer(*self.anchors)


def test_the_run_puts_every_anchor_in_the_system_store_before_deploying(
    tmp_path: Path, clock: FakeClock
) -> None:
    ca, pq = ThrowawayCa(), Pki("PQ")
    state = AgentState(tmp_path / "state")
    enrolled_state(state, ca)
    server = _Server(ca)
    server.anchors.append(pq.root.cert)
    tls, anchors = tmp_path / "tls", tmp_path / "anchors"
    tls.mkdir()
    # The reload command sees the anchors folder as it is when the certificate is deployed
    seen = tmp_path / "seen"
    spec = CertificateSpec(**{**spec_for(tls).__dict__, "reload": ("sh", "-c", f"ls {anchors} > {seen}")})
    trust = TrustSettings(system=True, anchors_dir=anchors, update_command=("true",))
    config = AgentConfig("agent.yaml", "https://certfleet.test", (tls,), (spec,), trust=trust)
    agent = Runner(config, state, clock, client=server)  # type: ignore[arg-type]

    assert [o.status for o in agent.run_once()] == ["deployed"]
    expected = sorted(f"certfleet-{fingerprint_sha256(c)[:16]}.crt" for c in (ca.certificate, pq.root.cert))
    assert seen.read_text().split() == expected
    assert TrustAnchors(state.root).load() == (ca.certificate, pq.root.cert)
    assert load_certificates(state.ca_file.read_bytes()) == [ca.certificate]  # never the server's trust

    # When the server's list turns hostile, the previous anchors stay (and so does the store)
    server.anchors.append(Pki("Mid").intermediate.cert)
    agent.run_once()
    assert TrustAnchors(state.root).load() == (ca.certificate, pq.root.cert)
    assert sorted(p.name for p in anchors.iterdir()) == expected
