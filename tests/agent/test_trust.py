"""What an agent trusts: the pinned root and only the CAs it signed; for the server, only a
server-identity CA (the in-process half; tests/integration/test_agent_trust.py runs a real
server, a man in the middle and an impostor)."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes

from certfleet.agent.errors import UntrustedServer
from certfleet.agent.trust import verify_bundle
from certfleet.app import Platform
from certfleet.ca import (
    IssuanceRequest,
    build_root,
    build_server_identity_ca,
    ca_id_for,
    is_server_identity_ca,
)
from certfleet.ca._hierarchy import CaUrls
from certfleet.x509 import KeyType, fingerprint_sha256, generate_private_key


def _bundle(platform: Platform) -> list[x509.Certificate]:
    """What GET /api/v1/agent/ca.pem serves once serve has started."""
    server_ca = platform.authorities.ensure_server_identity_ca(actor="test")
    root = platform.authorities.root().certificate
    return [root, *platform.authorities.issuing_authority().chain, server_ca.certificate]


def _foreign_root() -> tuple[x509.Certificate, CertificateIssuerPrivateKeyTypes]:
    key = generate_private_key(KeyType.EC_P256)
    return build_root("Mallory", key, dt.datetime.now(dt.UTC)), key


def test_the_real_bundle_verifies_and_names_exactly_the_server_identity_ca(platform: Platform) -> None:
    bundle = _bundle(platform)
    root, issuing, server_ca = bundle

    trust = verify_bundle(bundle, fingerprint_sha256(root))

    assert trust.root == root
    assert set(trust.intermediates) == {issuing, server_ca}
    assert trust.server_cas == (server_ca,)


def test_a_second_root_beside_the_pinned_one_refuses_the_whole_bundle(platform: Platform) -> None:
    bundle = _bundle(platform)
    mallory, _ = _foreign_root()

    with pytest.raises(UntrustedServer, match=r"1 certificate\(s\) the pinned root did not sign.*Mallory"):
        verify_bundle([*bundle, mallory], fingerprint_sha256(bundle[0]))


def test_a_leaf_in_the_bundle_is_refused_even_when_the_root_signed_its_chain(platform: Platform) -> None:
    bundle = _bundle(platform)
    key = generate_private_key(KeyType.EC_P256)
    leaf = platform.issuance.issue(
        IssuanceRequest("tls-server", key.public_key(), ("127.0.0.1",)), actor="test"
    ).issued.certificate

    with pytest.raises(UntrustedServer, match="did not sign"):
        verify_bundle([*bundle, leaf], fingerprint_sha256(bundle[0]))


def test_only_a_root_signed_ca_with_the_mark_is_a_server_identity_ca(platform: Platform) -> None:
    root, issuing, server_ca = _bundle(platform)
    mallory, mallory_key = _foreign_root()
    # Mallory marks her own CA exactly as certfleet does; it is not signed by the pinned root.
    forged = build_server_identity_ca(
        "Test", generate_private_key(KeyType.EC_P256), mallory, mallory_key,
        ca_id_for(mallory), CaUrls("http://mallory.test"), dt.datetime.now(dt.UTC),
    )  # fmt: skip
    key = generate_private_key(KeyType.EC_P256)
    leaf = platform.issuance.issue(
        IssuanceRequest("tls-server", key.public_key(), ("localhost",)), actor="test"
    ).issued.certificate

    assert is_server_identity_ca(server_ca, root)
    assert not is_server_identity_ca(issuing, root)  # the issuing CA: root-signed, no mark
    assert not is_server_identity_ca(forged, root)
    assert not is_server_identity_ca(leaf, root)
    assert not is_server_identity_ca(root, root)
