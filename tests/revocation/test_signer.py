"""Delegated OCSP responder certificates (RFC 6960 section 4.2.2.2)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

from certfleet.revocation import build_responder_certificate, rotation_due
from tests.revocation.conftest import Pki, pkilint_errors

LIFETIME = dt.timedelta(days=14)
RESPONSE_VALIDITY = dt.timedelta(days=4)


def _responder(pki: Pki, now: dt.datetime, lifetime: dt.timedelta = LIFETIME) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    return build_responder_certificate(
        ca=pki.issuing,
        ca_key=pki.issuing_key,
        public_key=key.public_key(),
        serial_number=1234,
        now=now,
        lifetime=lifetime,
    )


def test_responder_certificate_is_marked_for_ocsp_signing_only(pki: Pki, now: dt.datetime) -> None:
    cert = _responder(pki, now)
    ext = cert.extensions
    assert ext.get_extension_for_class(x509.ExtendedKeyUsage).value == x509.ExtendedKeyUsage(
        [ExtendedKeyUsageOID.OCSP_SIGNING]
    )
    assert ext.get_extension_for_class(x509.OCSPNoCheck).critical is False
    usage = ext.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature and not usage.value.key_cert_sign
    assert ext.get_extension_for_class(x509.BasicConstraints).value.ca is False
    cert.verify_directly_issued_by(pki.issuing.certificate)
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == LIFETIME
    assert "OCSP Responder" in cert.subject.rfc4514_string()


def test_responder_never_outlives_its_ca(pki: Pki, now: dt.datetime) -> None:
    cert = _responder(pki, now, lifetime=dt.timedelta(days=100_000))
    assert cert.not_valid_after_utc == pki.issuing.certificate.not_valid_after_utc


def test_rotation_is_due_at_half_life_or_before_a_response_could_outlive_it(
    pki: Pki, now: dt.datetime
) -> None:
    cert = _responder(pki, now)
    start = cert.not_valid_before_utc
    assert not rotation_due(cert, now, RESPONSE_VALIDITY)
    assert not rotation_due(cert, start + LIFETIME / 2 - dt.timedelta(seconds=1), RESPONSE_VALIDITY)
    assert rotation_due(cert, start + LIFETIME / 2, RESPONSE_VALIDITY)
    short = _responder(pki, now, lifetime=dt.timedelta(days=6))
    # Half of six days is three, but a four-day response would outlive it after day two.
    assert rotation_due(short, short.not_valid_before_utc + dt.timedelta(days=2, hours=1), RESPONSE_VALIDITY)


def test_pkilint_finds_no_error_in_the_responder_certificate(
    pki: Pki, now: dt.datetime, tmp_path: Path
) -> None:
    path = tmp_path / "responder.pem"
    path.write_bytes(_responder(pki, now).public_bytes(Encoding.PEM))
    assert pkilint_errors("lint_pkix_cert", path) == []
