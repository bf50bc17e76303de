"""Serial numbers: 128 bits from the CSPRNG, positive, within RFC 5280's 20 octets."""

from __future__ import annotations

import pytest

from certfleet.ca import SERIAL_BITS, new_serial_number
from certfleet.x509 import KeyType
from tests.ca.conftest import ca_kit, leaf_key

SAMPLES = 2000


def _der_serial_octets(tbs: bytes) -> bytes:
    """The content octets of serialNumber in a DER TBSCertificate (RFC 5280 section 4.1):
    SEQUENCE { [0] EXPLICIT version, INTEGER serialNumber, ... }."""

    def header(offset: int) -> tuple[int, int, int]:
        tag, first = tbs[offset], tbs[offset + 1]
        if first < 0x80:
            return tag, offset + 2, first
        count = first & 0x7F
        return tag, offset + 2 + count, int.from_bytes(tbs[offset + 2 : offset + 2 + count], "big")

    tag, body, _ = header(0)
    assert tag == 0x30
    tag, start, length = header(body)
    assert tag == 0xA0  # version v3
    tag, start, length = header(start + length)
    assert tag == 0x02  # INTEGER
    return tbs[start : start + length]


def test_serials_have_128_random_bits() -> None:
    assert SERIAL_BITS == 128  # at least 64 (CA/B Forum BR 7.1), 128 chosen
    serials = [new_serial_number() for _ in range(SAMPLES)]
    assert len(set(serials)) == SAMPLES
    assert all(0 < s < 2**SERIAL_BITS for s in serials)
    # Uniform over 128 bits: about half have the top bit set. With 2000 samples the count is
    # 1000 +- 22 (one standard deviation); the bounds below are nine deviations wide.
    top_bit = sum(1 for s in serials if s.bit_length() == SERIAL_BITS)
    assert 800 < top_bit < 1200
    # Far above the 64-bit floor: one sample below 2**96 has odds 2**-32 (2000 * 2**-32 overall).
    assert min(s.bit_length() for s in serials) > 96


@pytest.mark.parametrize(
    "serial_number",
    [1, 0x7F, 0x80, 2**64 + 1, 2**127, 2**128 - 1, new_serial_number()],
    ids=["one", "7f", "80", "64bit", "top-bit", "max", "random"],
)
def test_encoded_serial_is_positive_and_within_20_octets(serial_number: int) -> None:
    cert = (
        ca_kit(KeyType.EC_P256)
        .issue("tls-server", leaf_key(KeyType.EC_P256), serial_number=serial_number)
        .certificate
    )
    assert cert.serial_number == serial_number
    octets = _der_serial_octets(cert.tbs_certificate_bytes)
    assert len(octets) <= 20
    assert octets[0] < 0x80  # positive: a set top bit would make the INTEGER negative
    assert int.from_bytes(octets, "big") == serial_number
    if serial_number >= 2**127:
        assert len(octets) == 17  # a leading zero octet keeps 128-bit serials positive
