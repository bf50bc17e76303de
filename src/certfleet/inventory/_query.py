from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass

from certfleet.errors import InvalidInput
from certfleet.inventory._records import Status

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MAX_EXPIRING_DAYS",
    "MAX_PAGE_SIZE",
    "CertificateQuery",
    "decode_cursor",
    "encode_cursor",
]

DEFAULT_PAGE_SIZE = 100
# A century: anything beyond is a typo, and a much larger day count overflows timedelta.
MAX_EXPIRING_DAYS = 100 * 366
MAX_PAGE_SIZE = 1000


@dataclass(frozen=True)
class CertificateQuery:
    """Filters over the inventory. ``team`` narrows to one team; ``issuer`` matches a
    substring of the issuer DN or an exact CA id; ``san`` an exact name (``*.x`` literal)."""

    expiring_within: dt.timedelta | None = None
    status: Status | None = None
    issuer: str | None = None
    san: str | None = None
    team: str | None = None
    limit: int | None = None
    after_id: int | None = None

    def __post_init__(self) -> None:
        if self.limit is not None and not 1 <= self.limit <= MAX_PAGE_SIZE:
            raise InvalidInput(f"limit must be between 1 and {MAX_PAGE_SIZE}")
        if self.expiring_within is not None and self.expiring_within < dt.timedelta(0):
            raise InvalidInput("expiring must not be negative")


def encode_cursor(last_id: int) -> str:
    """Keyset pagination cursor: opaque to clients, the last row id to them is an accident."""
    return base64.urlsafe_b64encode(f"id:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, _, value = text.partition(":")
        if prefix != "id" or not value.isdigit():
            raise ValueError(text)
        return int(value)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput("malformed pagination cursor") from exc
