"""The authority's checks against a profile, and what it signs."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from certfleet.ca import PROFILES, IssuanceRequest, UnknownProfile, ValidityTooLong, get_profile
from certfleet.ca._hierarchy import BACKDATE
from certfleet.ca._profiles import CABF_DOMAIN_VALIDATED
from certfleet.x509 import BadKey, BadName, KeyType
from tests.ca.conftest import ca_kit, leaf_key

EC = KeyType.EC_P256


def _validate(
    profile: str,
    names: tuple[str, ...] = (),
    cn: str | None = None,
    days: int | None = None,
    key_type: KeyType = EC,
) -> object:
    request = IssuanceRequest(profile, leaf_key(key_type).public_key(), names, cn, days)
    return ca_kit(EC).authority.validate(request)


TLS_PROFILES = ["tls-server", "tls-client", "tls-server-client"]  # x509-svid: tests/spiffe


def test_profiles_and_their_limits() -> None:
    assert set(PROFILES) == {"tls-server", "tls-client", "tls-server-client", "x509-svid", "internal-mtls-pq"}
    for name in TLS_PROFILES:
        assert PROFILES[name].default_validity == dt.timedelta(days=90)
        assert PROFILES[name].max_validity == dt.timedelta(days=398)
    # X509-SVIDs: an hour by default (SPIRE's), a day at most.
    assert PROFILES["x509-svid"].default_validity == dt.timedelta(hours=1)
    assert PROFILES["x509-svid"].max_validity == dt.timedelta(days=1)


def test_unknown_profile_lists_the_known_ones() -> None:
    with pytest.raises(UnknownProfile, match="unknown profile 'code-signing': expected one of tls-server"):
        get_profile("code-signing")
    with pytest.raises(UnknownProfile):
        _validate("code-signing", ("www.example.com",))


@pytest.mark.parametrize("profile", TLS_PROFILES)
def test_default_and_maximum_validity(profile: str) -> None:
    kit = ca_kit(EC)
    default = kit.issue(profile, leaf_key(EC)).certificate
    assert default.not_valid_before_utc == kit.clock.now() - BACKDATE  # absorbs client clock skew
    assert default.not_valid_after_utc - default.not_valid_before_utc == dt.timedelta(days=90)
    longest = kit.issue(profile, leaf_key(EC), days=398).certificate
    assert longest.not_valid_after_utc - longest.not_valid_before_utc == dt.timedelta(days=398)


@pytest.mark.parametrize(
    ("days", "reason"),
    [
        (399, "exceeds profile .*398 days"),
        (0, "at least 1 day"),
        (-5, "at least 1 day"),
        (100_000, "exceeds"),
    ],
)
def test_validity_out_of_range_is_refused(days: int, reason: str) -> None:
    with pytest.raises(ValidityTooLong, match=reason):
        _validate("tls-server", ("www.example.com",), days=days)


def test_leaf_never_outlives_its_issuer() -> None:
    kit = ca_kit(EC)
    issuer_end = kit.intermediate.certificate.not_valid_after_utc
    saved = kit.clock.now()
    kit.clock.set(issuer_end - dt.timedelta(days=10))
    try:
        cert = kit.issue("tls-server", leaf_key(EC)).certificate
    finally:
        kit.clock.set(saved)
    assert cert.not_valid_after_utc == issuer_end


def test_common_name_must_be_one_of_the_sans() -> None:
    with pytest.raises(BadName, match=r"common name 'other\.example\.com' is not one of"):
        _validate("tls-server", ("www.example.com",), cn="other.example.com")


@pytest.mark.parametrize("profile", TLS_PROFILES)
def test_common_name_alone_becomes_the_san(profile: str) -> None:
    cert = ca_kit(EC).issue(profile, leaf_key(EC), names=(), cn="WWW.Example.com").certificate
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "www.example.com"
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["www.example.com"]


@pytest.mark.parametrize("profile", ["tls-server", "tls-server-client"])
def test_server_profiles_need_a_name(profile: str) -> None:
    with pytest.raises(BadName, match=f"profile {profile} requires at least one DNS name"):
        _validate(profile)


def test_client_profile_needs_some_name() -> None:
    with pytest.raises(BadName, match="needs a common name or at least one subject alternative name"):
        _validate("tls-client")


def test_common_name_over_64_characters_is_refused() -> None:
    long_name = "a" * 60 + ".example.com"
    with pytest.raises(BadName, match="longer than 64"):
        _validate("tls-server", (long_name,), cn=long_name)


@pytest.mark.parametrize("profile", ["tls-server", "tls-server-client"])
def test_ed25519_leaf_keys_are_for_clients_only(profile: str) -> None:
    with pytest.raises(BadKey, match="Ed25519 keys are not allowed"):
        _validate(profile, ("www.example.com",), key_type=KeyType.ED25519)
    assert _validate("tls-client", ("www.example.com",), key_type=KeyType.ED25519)


def test_bad_names_are_refused_before_signing() -> None:
    with pytest.raises(BadName, match="empty label"):
        _validate("tls-server", ("ok.example.com", "bad..example.com"))
    with pytest.raises(BadName, match="101 subject alternative names"):
        _validate("tls-server", tuple(f"h{i}.example.com" for i in range(101)))


def test_server_certificates_carry_the_domain_validated_policy() -> None:
    kit = ca_kit(EC)
    server = kit.issue("tls-server", leaf_key(EC)).certificate
    policies = server.extensions.get_extension_for_class(x509.CertificatePolicies).value
    assert [p.policy_identifier for p in policies] == [CABF_DOMAIN_VALIDATED]
    client = kit.issue("tls-client", leaf_key(EC)).certificate
    with pytest.raises(x509.ExtensionNotFound):
        client.extensions.get_extension_for_class(x509.CertificatePolicies)
