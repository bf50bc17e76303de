from __future__ import annotations

import pytest
from cryptography import x509

from certfleet.revocation import RevocationReason, UnknownReason


@pytest.mark.parametrize(
    ("text", "reason", "code"),
    [
        ("unspecified", RevocationReason.UNSPECIFIED, 0),
        ("keyCompromise", RevocationReason.KEY_COMPROMISE, 1),
        ("keycompromise", RevocationReason.KEY_COMPROMISE, 1),  # certbot's spelling
        ("KEY_COMPROMISE", RevocationReason.KEY_COMPROMISE, 1),
        ("caCompromise", RevocationReason.CA_COMPROMISE, 2),
        ("affiliationChanged", RevocationReason.AFFILIATION_CHANGED, 3),
        ("superseded", RevocationReason.SUPERSEDED, 4),
        ("cessationOfOperation", RevocationReason.CESSATION_OF_OPERATION, 5),
        ("privilegeWithdrawn", RevocationReason.PRIVILEGE_WITHDRAWN, 9),
    ],
)
def test_names_parse_to_the_rfc_5280_codes(text: str, reason: RevocationReason, code: int) -> None:
    assert RevocationReason.parse(text) is reason
    assert reason.code == code
    assert RevocationReason.parse(code) is reason  # ACME sends the integer (RFC 8555 7.6)
    assert RevocationReason.parse(str(code)) is reason


def test_each_reason_maps_to_the_cryptography_flag_and_back() -> None:
    for reason in RevocationReason:
        assert RevocationReason.from_flag(reason.flag) is reason
    assert RevocationReason.CA_COMPROMISE.flag is x509.ReasonFlags.ca_compromise


@pytest.mark.parametrize(
    "value", ["certificateHold", "removeFromCRL", "aACompromise", "stolen", "", 6, 8, 10, 11, -1]
)
def test_holds_and_unknown_reasons_are_refused(value: str | int) -> None:
    with pytest.raises(UnknownReason, match="expected one of"):
        RevocationReason.parse(value)


def test_certificate_hold_flag_is_not_a_reason() -> None:
    with pytest.raises(UnknownReason):
        RevocationReason.from_flag(x509.ReasonFlags.certificate_hold)
