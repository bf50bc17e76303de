"""Building CRLs: the fields RFC 5280 section 5 requires, entries, and delta CRLs."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from certfleet.revocation import RevocationReason, RevokedEntry, build_crl
from tests.revocation.conftest import Pki, pkilint_errors

WEEK = dt.timedelta(days=7)


def _crl(
    pki: Pki, now: dt.datetime, entries: list[RevokedEntry], **kwargs: object
) -> x509.CertificateRevocationList:
    der = build_crl(
        issuer=pki.issuing.certificate,
        key=pki.issuing_key,
        entries=iter(entries),
        number=kwargs.pop("number", 7),  # type: ignore[arg-type]
        this_update=now,
        next_update=now + WEEK,
        **kwargs,  # type: ignore[arg-type]
    )
    return x509.load_der_x509_crl(der)


def test_complete_crl_has_the_required_fields(pki: Pki, now: dt.datetime) -> None:
    crl = _crl(pki, now, [], number=42, freshest_crl_url="http://crl.example.test/crl/x-delta.crl")
    issuing = pki.issuing.certificate
    assert crl.issuer == issuing.subject
    assert crl.last_update_utc == now
    assert crl.next_update_utc == now + WEEK
    assert crl.is_signature_valid(issuing.public_key())  # type: ignore[arg-type]
    aki = crl.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
    ski = issuing.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.value.key_identifier == ski.digest and not aki.critical
    number = crl.extensions.get_extension_for_class(x509.CRLNumber)
    assert number.value.crl_number == 42 and not number.critical
    freshest = crl.extensions.get_extension_for_class(x509.FreshestCRL)
    assert not freshest.critical  # RFC 5280 5.2.6
    assert freshest.value[0].full_name == [
        x509.UniformResourceIdentifier("http://crl.example.test/crl/x-delta.crl")
    ]
    with pytest.raises(x509.ExtensionNotFound):
        crl.extensions.get_extension_for_class(x509.DeltaCRLIndicator)


def test_entries_carry_reason_codes_and_invalidity_dates(pki: Pki, now: dt.datetime) -> None:
    compromised = now - dt.timedelta(days=2)
    entries = [
        RevokedEntry(11, now - dt.timedelta(hours=1), RevocationReason.KEY_COMPROMISE, compromised),
        RevokedEntry(12, now - dt.timedelta(hours=2), RevocationReason.SUPERSEDED),
        RevokedEntry(13, now - dt.timedelta(hours=3), RevocationReason.UNSPECIFIED),
    ]
    crl = _crl(pki, now, entries)
    assert len(crl) == 3
    first = crl.get_revoked_certificate_by_serial_number(11)
    assert first is not None
    assert first.revocation_date_utc == now - dt.timedelta(hours=1)
    reason = first.extensions.get_extension_for_class(x509.CRLReason)
    assert reason.value.reason is x509.ReasonFlags.key_compromise and not reason.critical
    invalidity = first.extensions.get_extension_for_class(x509.InvalidityDate)
    assert invalidity.value.invalidity_date_utc == compromised
    second = crl.get_revoked_certificate_by_serial_number(12)
    assert second is not None
    assert (
        second.extensions.get_extension_for_class(x509.CRLReason).value.reason is x509.ReasonFlags.superseded
    )
    with pytest.raises(x509.ExtensionNotFound):
        second.extensions.get_extension_for_class(x509.InvalidityDate)
    third = crl.get_revoked_certificate_by_serial_number(13)
    assert third is not None
    # RFC 5280 5.3.1: "unspecified" SHOULD be absent (the Baseline Requirements forbid it).
    assert len(third.extensions) == 0


def test_delta_crl_names_its_base_in_a_critical_indicator(pki: Pki, now: dt.datetime) -> None:
    entries = [RevokedEntry(99, now, RevocationReason.CESSATION_OF_OPERATION)]
    delta = _crl(pki, now, entries, number=9, base_number=5)
    indicator = delta.extensions.get_extension_for_class(x509.DeltaCRLIndicator)
    assert indicator.critical  # RFC 5280 5.2.4
    assert indicator.value.crl_number == 5
    assert delta.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 9
    assert [r.serial_number for r in delta] == [99]


def test_entries_are_consumed_once_from_an_iterator(pki: Pki, now: dt.datetime) -> None:
    consumed: list[int] = []

    def stream() -> object:
        for serial in range(1, 1001):
            consumed.append(serial)
            yield RevokedEntry(serial, now, RevocationReason.SUPERSEDED)

    der = build_crl(
        issuer=pki.issuing.certificate,
        key=pki.issuing_key,
        entries=stream(),  # type: ignore[arg-type]
        number=1,
        this_update=now,
        next_update=now + WEEK,
    )
    assert consumed == list(range(1, 1001))
    assert {r.serial_number for r in x509.load_der_x509_crl(der)} == set(range(1, 1001))


@pytest.mark.parametrize(
    ("number", "next_update", "message"),
    [
        (1, dt.timedelta(0), "later than thisUpdate"),
        (-1, WEEK, "at most 20 octets"),
        (1 << 160, WEEK, "at most 20 octets"),
    ],
)
def test_impossible_crls_are_refused(
    pki: Pki, now: dt.datetime, number: int, next_update: dt.timedelta, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        build_crl(
            issuer=pki.issuing.certificate,
            key=pki.issuing_key,
            entries=[],
            number=number,
            this_update=now,
            next_update=now + next_update,
        )


def test_a_root_signs_its_crl_with_its_own_key(pki: Pki, now: dt.datetime) -> None:
    entry = RevokedEntry(pki.issuing.certificate.serial_number, now, RevocationReason.CA_COMPROMISE)
    der = build_crl(
        issuer=pki.root.certificate,
        key=pki.root_key,
        entries=[entry],
        number=1,
        this_update=now,
        next_update=now + WEEK,
    )
    crl = x509.load_der_x509_crl(der)
    assert crl.is_signature_valid(pki.root.certificate.public_key())  # type: ignore[arg-type]
    assert not crl.is_signature_valid(ec.generate_private_key(ec.SECP256R1()).public_key())


@pytest.mark.parametrize("profile", ["PKIX", "BR"])
def test_pkilint_finds_no_error_in_complete_or_delta_crls(
    pki: Pki, now: dt.datetime, tmp_path: Path, profile: str
) -> None:
    entries = [
        RevokedEntry(11, now, RevocationReason.KEY_COMPROMISE, now - dt.timedelta(days=1)),
        RevokedEntry(12, now, RevocationReason.UNSPECIFIED),
    ]
    for name, kwargs in {
        "full": {"freshest_crl_url": "http://crl.example.test/x-delta.crl"},
        "delta": {"base_number": 3},
        "empty": {},
    }.items():
        crl = _crl(pki, now, [] if name == "empty" else entries, **kwargs)
        path = tmp_path / f"{name}.der"
        path.write_bytes(crl.public_bytes(Encoding.DER))
        assert pkilint_errors("lint_crl", path, "-t", "CRL", "-p", profile) == [], name
