from __future__ import annotations

import secrets

__all__ = ["SERIAL_BITS", "new_serial_number"]

SERIAL_BITS = 128


def new_serial_number() -> int:
    """A positive serial with 128 bits from the OS CSPRNG.

    RFC 5280 section 4.1.2.2 caps serials at 20 octets and requires them positive; the CA/B
    Forum asks for at least 64 random bits. 128 random bits encode in at most 17 DER octets.
    Uniqueness is finally enforced by the database constraint on the serials table.
    """
    while True:
        value = secrets.randbits(SERIAL_BITS)
        if value:
            return value
