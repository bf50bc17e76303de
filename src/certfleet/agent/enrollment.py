"""Enrolment with a one-time token and a pinned root, and renewal of the agent identity.

The agent first fetches the CA bundle from the server without trusting it and keeps it only
if it holds the root whose SHA-256 the operator gave and nothing but CAs that root signed
(certfleet.agent.trust). The token is then sent only over TLS that verified the server
through its server-identity CA. The identity key is generated here and never leaves the host.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import re
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import NameOID

from certfleet.agent.client import ServerClient, fetch_unverified
from certfleet.agent.errors import UntrustedServer
from certfleet.agent.state import AgentState, Enrolment
from certfleet.agent.trust import verify_bundle
from certfleet.errors import InvalidInput
from certfleet.x509 import KeyType, generate_private_key, load_certificates, signature_hash_for

__all__ = ["build_csr", "enroll", "identity_due", "parse_fingerprint", "renew_identity"]

_log = logging.getLogger("certfleet.agent")


def parse_fingerprint(raw: str) -> str:
    """SHA-256 as 64 hex digits, with or without colons (as ``openssl x509 -fingerprint``
    prints it) and an optional ``sha256:`` prefix."""
    text = re.sub(r"^sha-?256[:=]", "", raw.strip().lower()).replace(":", "")
    if not re.fullmatch(r"[0-9a-f]{64}", text):
        raise InvalidInput("--ca-fingerprint must be the root's SHA-256: 64 hex digits (colons allowed)")
    return text


def build_csr(key: CertificateIssuerPrivateKeyTypes, names: Sequence[str]) -> str:
    """A CSR naming ``names`` in its SAN and the first one as CN."""
    general: list[x509.GeneralName] = []
    for name in names:
        try:
            general.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            general.append(x509.DNSName(name))
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    )
    builder = builder.add_extension(x509.SubjectAlternativeName(general), critical=False)
    # EdDSA and ML-DSA sign the message itself (no hash): a campaign to internal-mtls-pq
    # asks the agent for an ML-DSA-65 key.
    csr = builder.sign(key, signature_hash_for(key))  # type: ignore[arg-type]
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def _chain_from(response: dict[str, object]) -> list[x509.Certificate]:
    pem = f"{response['certificate_pem']}{response.get('chain_pem') or ''}"
    return load_certificates(pem.encode())


def enroll(server: str, token: str, ca_fingerprint: str, state: AgentState) -> Enrolment:
    pin = parse_fingerprint(ca_fingerprint)
    server = server.rstrip("/")
    if not server.startswith("https://"):
        raise InvalidInput("--server must be the https:// URL of the certfleet API")
    bundle = verify_bundle(
        load_certificates(fetch_unverified(f"{server}/api/v1/agent/ca.pem"), source="the server's CA bundle"),
        pin,
    )
    if not bundle.server_cas:
        raise UntrustedServer(
            "the server offers no server-identity CA signed by the pinned root: upgrade the certfleet "
            "server (serve creates that CA at start-up), then enrol again"
        )
    state.ensure()
    state.save_trust(bundle)
    key = generate_private_key(KeyType.EC_P256)
    # The token goes only over TLS that verified the server through its server-identity CA.
    client = ServerClient(server, state.ca_file)
    try:
        response = client.enroll(token, build_csr(key, ["certfleet-agent"]))
    finally:
        client.close()
    state.save_identity(key, _chain_from(response))
    enrolment = Enrolment(server, str(response["host"]), response.get("team"))
    state.save_enrolment(enrolment)
    _log.info("enrolled as %s with %s", enrolment.host, server)
    return enrolment


def identity_due(certificate: x509.Certificate, now: dt.datetime) -> bool:
    """In the last third of its lifetime (the rule for every renewal certfleet makes)."""
    lifetime = certificate.not_valid_after_utc - certificate.not_valid_before_utc
    return now >= certificate.not_valid_after_utc - lifetime / 3


def renew_identity(client: ServerClient, state: AgentState) -> x509.Certificate:
    """Ask for a new identity for a new key, authenticated by the current one; the new key
    and certificate replace the old in one atomic write."""
    key = generate_private_key(KeyType.EC_P256)
    response = client.renew_identity(build_csr(key, ["certfleet-agent"]))
    chain = _chain_from(response)
    state.save_identity(key, chain)
    _log.info("renewed the agent identity (valid until %s)", chain[0].not_valid_after_utc.isoformat())
    return chain[0]
