"""The X509-SVID and its CA against the X509-SVID spec: exactly one URI SAN (the SPIFFE ID),
leaf only (CA:false), digitalSignature, serverAuth and clientAuth, an hour by default; checked
with cryptography and with pkilint's RFC 5280 linter (no ERROR or FATAL finding)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import urllib.parse
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

from certfleet.ca import (
    SPIFFE_ROLE,
    Authority,
    CaCertificate,
    CaUrls,
    IssuanceRequest,
    IssuedCertificate,
    ValidityTooLong,
    build_root,
    build_spiffe_ca,
    ca_id_for,
)
from certfleet.spiffe import SpiffeId
from certfleet.x509 import BadName, KeyType, generate_private_key
from tests.ca.conftest import blocking, pkilint
from tests.conftest import FakeClock

APP = "spiffe://example.org/ns/app"


@functools.cache
def _authority() -> Authority:
    clock = FakeClock(dt.datetime.now(dt.UTC).replace(microsecond=0))
    urls = CaUrls("http://pki.example.com")
    root_key = generate_private_key(KeyType.EC_P256)
    root_cert = build_root("Example", root_key, clock.now())
    root_id = ca_id_for(root_cert)
    key = generate_private_key(KeyType.EC_P256)
    cert = build_spiffe_ca("Example", "example.org", key, root_cert, root_key, root_id, urls, clock.now())
    ca = CaCertificate(ca_id_for(cert), "Example SPIFFE CA 1", SPIFFE_ROLE, root_id, cert, "test", "s", True)
    return Authority(ca, key, (cert,), urls, clock)


def _svid(
    uris: tuple[str, ...] = (APP,), names: tuple[str, ...] = (), lifetime: dt.timedelta | None = None
) -> IssuedCertificate:
    key = ec.generate_private_key(ec.SECP256R1())
    request = IssuanceRequest("x509-svid", key.public_key(), names, uris=uris, lifetime=lifetime)
    authority = _authority()
    return authority.sign(authority.validate(request), 0x5EED_1234_5678_9ABC_DEF0_1234_5678_9ABC)


@pytest.mark.parametrize("names", [(), ("app.example.org",)])
def test_svid_shape_follows_the_x509_svid_spec(names: tuple[str, ...]) -> None:
    cert = _svid(names=names).certificate
    ext = cert.extensions
    san = ext.get_extension_for_class(x509.SubjectAlternativeName)
    # Section 2: exactly one URI SAN, the SPIFFE ID; other SAN types may accompany it.
    assert san.value.get_values_for_type(x509.UniformResourceIdentifier) == [APP]
    assert san.value.get_values_for_type(x509.DNSName) == list(names)
    assert cert.subject == x509.Name([]) and san.critical  # no CN needed; RFC 5280 4.2.1.6
    # Section 4.1-4.3: a leaf, digitalSignature, no certificate or CRL signing.
    basic = ext.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical and basic.value.ca is False
    usage = ext.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature
    assert not usage.value.key_cert_sign and not usage.value.crl_sign
    assert set(ext.get_extension_for_class(x509.ExtendedKeyUsage).value) == {
        ExtendedKeyUsageOID.SERVER_AUTH,
        ExtendedKeyUsageOID.CLIENT_AUTH,
    }
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert dt.timedelta(hours=1) <= lifetime <= dt.timedelta(hours=1, minutes=5)  # 1 h plus backdating
    cert.verify_directly_issued_by(_authority().issuer.certificate)


def test_entry_ttl_sets_the_lifetime() -> None:
    cert = _svid(lifetime=dt.timedelta(minutes=30)).certificate
    assert cert.not_valid_after_utc - cert.not_valid_before_utc <= dt.timedelta(minutes=35)


def test_pkilint_finds_no_error_in_the_svid_or_its_ca(tmp_path: Path) -> None:
    svid = tmp_path / "svid.pem"
    svid.write_bytes(_svid(names=("app.example.org",)).certificate.public_bytes(Encoding.PEM))
    # pkilint 0.13 checks a URI SAN with validators.url, which knows nine schemes (http, ftp,
    # ssh...) and not RFC 3986's general syntax, so it calls every SPIFFE ID invalid. That
    # finding, on that one name, is the only one allowed; the ID itself passes the SPIFFE-ID
    # grammar (certfleet.spiffe) and RFC 3986 parsing.
    findings = blocking(pkilint("lint_pkix_cert", svid))
    assert [(f.code, f.message) for f in findings] == [
        ("pkix.invalid_uri_syntax", f'Invalid URI syntax: "{APP}"')
    ]
    assert str(SpiffeId.parse(APP)) == APP
    parsed = urllib.parse.urlsplit(APP)
    assert (parsed.scheme, parsed.netloc, parsed.path) == ("spiffe", "example.org", "/ns/app")
    ca = tmp_path / "spiffe-ca.pem"
    ca.write_bytes(_authority().issuer.certificate.public_bytes(Encoding.PEM))
    assert blocking(pkilint("lint_pkix_cert", ca)) == []


def test_spiffe_ca_is_constrained_to_its_trust_domain() -> None:
    ca = _authority().issuer.certificate
    constraints = ca.extensions.get_extension_for_class(x509.NameConstraints)
    assert constraints.critical
    assert constraints.value.permitted_subtrees == [x509.UniformResourceIdentifier("example.org")]
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length == 0


@pytest.mark.parametrize(
    ("change", "error", "reason"),
    [
        ({"uris": ()}, BadName, "exactly one spiffe:// URI"),
        ({"uris": (APP, "spiffe://example.org/ns/two")}, BadName, "exactly one spiffe:// URI"),
        ({"uris": ("https://example.org/app",)}, BadName, "exactly one spiffe:// URI"),
        ({"common_name": "app"}, BadName, "takes no common name"),
        ({"lifetime": dt.timedelta(days=2)}, ValidityTooLong, "exceeds profile x509-svid's maximum"),
        ({"lifetime": dt.timedelta(hours=1), "validity_days": 1}, ValidityTooLong, "not both"),
    ],
)
def test_the_svid_profile_refuses(change: dict[str, object], error: type[Exception], reason: str) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    request = dataclasses.replace(IssuanceRequest("x509-svid", key.public_key(), uris=(APP,)), **change)  # type: ignore[arg-type]
    with pytest.raises(error, match=reason):
        _authority().validate(request)


def test_other_profiles_take_no_uri() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(BadName, match="profile tls-server takes no URI names"):
        _authority().validate(
            IssuanceRequest("tls-server", key.public_key(), ("a.example.org",), uris=(APP,))
        )
