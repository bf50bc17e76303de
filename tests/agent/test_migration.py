"""The agent's part of a migration to the post-quantum hierarchy (issue 17), against a fake
server and real files: it renews with the profile and key type its instruction names, keeps
them afterwards (agent.yaml unchanged does not switch back; agent.yaml changed does), tells a
certificate of the second hierarchy as certfleet's from the anchors it learned, and reports
an endpoint that cannot present the new key as that target's outcome."""

from __future__ import annotations

import datetime as dt
import stat
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import mldsa, rsa

from certfleet.agent import AgentState, Runner
from certfleet.agent.config import AgentConfig, CertificateSpec
from certfleet.x509 import KeyType, fingerprint_sha256, load_certificates, to_pem
from tests.agent.fakes import FakeServer, enrolled_state
from tests.agent.material import ThrowawayCa, sign_csr, spec_for
from tests.conftest import FakeClock

PQ_PROFILE = "internal-mtls-pq"


class CampaignServer(FakeServer):
    """A fake server with a second hierarchy (the PQ one) that issues under PQ_PROFILE, and
    instructions that may name a campaign's profile and key type."""

    def __init__(self, ca: ThrowawayCa, pq: ThrowawayCa) -> None:
        super().__init__(ca)
        self.pq = pq
        self.moving: dict[str, tuple[str, str]] = {}
        self.profiles: list[str] = []

    def issue(self, name: str, csr_pem: str, profile: str, validity_days: int | None) -> dict[str, Any]:
        self._check()
        self.issued.append((name, csr_pem))
        self.profiles.append(profile)
        issuer = self.pq if profile == PQ_PROFILE else self.ca
        return {"fullchain_pem": to_pem([sign_csr(issuer, csr_pem, self.lifetime), issuer.certificate])}

    def instructions(self) -> dict[str, Any]:
        body = super().instructions()
        for entry in body["certificates"]:
            if entry["name"] in self.moving:
                entry["profile"], entry["key_type"] = self.moving[entry["name"]]
        return body

    def trust_anchors(self) -> dict[str, Any]:
        self._check()
        return {"roots": [{"certificate_pem": to_pem([c.certificate])} for c in (self.ca, self.pq)]}


@pytest.fixture
def server() -> CampaignServer:
    return CampaignServer(ThrowawayCa(), ThrowawayCa())


@pytest.fixture
def state(tmp_path: Path, server: CampaignServer) -> AgentState:
    state = AgentState(tmp_path / "state")
    enrolled_state(state, server.ca)
    return state


def agent_for(
    tmp_path: Path, state: AgentState, clock: FakeClock, server: FakeServer, **changes: Any
) -> Runner:
    tls = tmp_path / "tls"
    tls.mkdir(exist_ok=True)
    spec = spec_for(tls)
    spec = CertificateSpec(**{**spec.__dict__, "key_type": KeyType.RSA_2048, "reload": ("true",), **changes})
    config = AgentConfig("agent.yaml", "https://certfleet.test", (tls,), (spec,))
    return Runner(config, state, clock, client=server)  # type: ignore[arg-type]


def deployed(tmp_path: Path) -> tuple[x509.Certificate, object]:
    cert = load_certificates((tmp_path / "tls" / "www.crt").read_bytes())[0]
    key = serialization.load_pem_private_key((tmp_path / "tls" / "www.key").read_bytes(), None)
    assert key.public_key() == cert.public_key()
    assert stat.S_IMODE((tmp_path / "tls" / "www.key").stat().st_mode) == 0o600
    return cert, key


def campaign_starts(server: CampaignServer, fingerprint: str | None, clock: FakeClock) -> None:
    """As the server does for a ``--to-profile`` campaign: the window moved to now."""
    assert fingerprint is not None
    now = clock.now()
    server.windows["www"] = (fingerprint, now - dt.timedelta(hours=1), now - dt.timedelta(minutes=1))
    server.moving["www"] = (PQ_PROFILE, "ml-dsa-65")


def campaign_ends(server: CampaignServer) -> None:
    server.windows.clear()
    server.moving.clear()


def test_the_instruction_moves_the_certificate_to_ml_dsa_and_it_stays_there(
    tmp_path: Path, state: AgentState, clock: FakeClock, server: CampaignServer
) -> None:
    # Given an agent serving an RSA-2048 certificate, as agent.yaml says
    agent = agent_for(tmp_path, state, clock, server)
    [first] = agent.run_once()
    assert isinstance(deployed(tmp_path)[1], rsa.RSAPrivateKey)
    # When a campaign tells it to renew under internal-mtls-pq with an ML-DSA-65 key
    campaign_starts(server, first.fingerprint, clock)
    [moved] = agent.run_once()
    # Then it renews with a new ML-DSA-65 key of its own (0600), its CSR signed by that key
    assert moved.status == "deployed", moved.detail
    _cert, key = deployed(tmp_path)
    assert isinstance(key, mldsa.MLDSA65PrivateKey)
    csr = x509.load_pem_x509_csr(server.issued[-1][1].encode())
    assert csr.is_signature_valid and isinstance(csr.public_key(), mldsa.MLDSA65PublicKey)
    assert server.profiles[-1] == PQ_PROFILE and server.reports[-1]["status"] == "deployed"
    # And the certificate from the second hierarchy is certfleet's (its root came over the
    # authenticated channel): the next runs leave it alone
    campaign_ends(server)
    assert [o.status for o in agent.run_once()] == ["unchanged"]
    # When its ordinary renewal comes, agent.yaml still saying rsa-2048
    clock.advance(dt.timedelta(days=80))
    [renewed] = agent.run_once()
    # Then it renews under the migration's profile and key type, not back to RSA
    assert renewed.status == "deployed" and "local schedule" in renewed.detail
    assert isinstance(deployed(tmp_path)[1], mldsa.MLDSA65PrivateKey)
    assert server.profiles == ["tls-server", PQ_PROFILE, PQ_PROFILE]


def test_an_edited_agent_yaml_replaces_a_completed_migration(
    tmp_path: Path, state: AgentState, clock: FakeClock, server: CampaignServer
) -> None:
    [first] = agent_for(tmp_path, state, clock, server).run_once()
    campaign_starts(server, first.fingerprint, clock)
    agent_for(tmp_path, state, clock, server).run_once()
    campaign_ends(server)
    # When the operator later names another key type in agent.yaml, the operator spoke last
    edited = agent_for(tmp_path, state, clock, server, key_type=KeyType.EC_P384)
    [changed] = edited.run_once()
    assert changed.status == "deployed" and changed.detail == "key type changed"
    assert server.profiles[-1] == "tls-server"
    assert [o.status for o in edited.run_once()] == ["unchanged"]


# nginx on Debian 12 (OpenSSL 3.0) refusing an ML-DSA certificate, as its reload says it
_NGINX = """
import sys
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import mldsa
cert = x509.load_pem_x509_certificate(open(sys.argv[1], 'rb').read())
if isinstance(cert.public_key(), mldsa.MLDSA65PublicKey):
    print('nginx: [emerg] cannot load certificate "' + sys.argv[1] + '": PEM_read_bio_X509_AUX() failed'
          ' (SSL: error:0680006D:asn1 encoding routines::unsupported public key type)', file=sys.stderr)
    print('nginx: configuration file /etc/nginx/nginx.conf test failed', file=sys.stderr)
    sys.exit(1)
"""


def test_an_endpoint_that_cannot_present_ml_dsa_is_the_targets_outcome(
    tmp_path: Path, state: AgentState, clock: FakeClock, server: CampaignServer
) -> None:
    reload = (sys.executable, "-c", _NGINX, str(tmp_path / "tls" / "www.crt"))
    agent = agent_for(tmp_path, state, clock, server, reload=reload)
    [first] = agent.run_once()
    # When the campaign asks for ML-DSA-65 and the service's reload refuses it
    campaign_starts(server, first.fingerprint, clock)
    [failed] = agent.run_once()
    # Then the RSA certificate is back, and the report names the endpoint's limit and its line
    assert failed.status == "rolled_back"
    assert failed.detail.startswith(
        'endpoint cannot present ml-dsa-65: nginx: [emerg] cannot load certificate "'
    ), failed.detail
    assert "unsupported public key type" in failed.detail
    assert fingerprint_sha256(deployed(tmp_path)[0]) == first.fingerprint
    assert server.reports[-1]["status"] == "rolled_back"
    assert server.reports[-1]["detail"] == failed.detail
    # And once the campaign moved on, the agent does not retry the refused certificate nor
    # issue a stray RSA one in its place
    campaign_ends(server)
    issued = len(server.issued)
    clock.advance(dt.timedelta(hours=2))
    assert [o.status for o in agent.run_once()] == ["unchanged"]
    assert len(server.issued) == issued
