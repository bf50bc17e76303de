"""Inventory records and queries as values: derived status, the JSON form, query limits."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from certfleet.clock import iso
from certfleet.errors import InvalidInput
from certfleet.inventory import (
    MAX_PAGE_SIZE,
    CertificateQuery,
    CertificateRecord,
    Source,
    Status,
    decode_cursor,
    encode_cursor,
)

T0 = dt.datetime(2026, 3, 1, 8, 30, 15, 999_999, tzinfo=dt.UTC)
# The fields issue 2 promises in every JSON certificate object (CLI and REST API).
JSON_FIELDS = (
    "serial",
    "fingerprint_sha256",
    "subject",
    "sans",
    "issuer",
    "not_before",
    "not_after",
    "status",
    "source",
    "team",
)
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def _record(status: Status = Status.ACTIVE, **changes: object) -> CertificateRecord:
    values: dict[str, object] = {
        "serial": "abc",
        "fingerprint_sha256": "f" * 64,
        "subject": "CN=www.example.com",
        "common_name": "www.example.com",
        "sans": ("www.example.com",),
        "issuer": "CN=Issuing CA",
        "not_before": T0,
        "not_after": T0 + dt.timedelta(days=90),
        "key_algorithm": "ec",
        "key_size": 256,
        "signature_algorithm": "ecdsa-with-SHA256",
        "source": Source.ISSUED,
        "status": status,
        "first_seen": T0,
        "last_seen": T0,
        "der": b"\x30",
        "team": "web",
    }
    values.update(changes)
    return CertificateRecord(**values)  # type: ignore[arg-type]


def test_expired_is_derived_from_the_clock() -> None:
    record = _record()
    assert record.effective_status(T0) is Status.ACTIVE
    # RFC 5280 section 4.1.2.5: valid from notBefore through notAfter, both inclusive.
    assert record.effective_status(record.not_after) is Status.ACTIVE
    assert record.effective_status(record.not_after + dt.timedelta(microseconds=1)) is Status.EXPIRED
    assert record.effective_status(record.not_after + dt.timedelta(days=1)) is Status.EXPIRED


@pytest.mark.parametrize("status", [Status.REVOKED, Status.SUPERSEDED])
def test_revoked_and_superseded_stay_so_after_expiry(status: Status) -> None:
    record = _record(status)
    assert record.effective_status(record.not_after + dt.timedelta(days=1)) is status


def test_json_form_carries_the_documented_fields_in_utc_with_z() -> None:
    data = _record(revoked_at=None).to_dict(T0)
    for field in JSON_FIELDS:
        assert field in data
    assert data["not_before"] == "2026-03-01T08:30:15Z"
    assert ISO_Z.match(data["not_after"])
    assert data["sans"] == ["www.example.com"]
    assert (data["status"], data["source"], data["team"]) == ("active", "issued", "web")
    assert data["revoked_at"] is None
    assert "der" not in data


def test_iso_converts_other_zones_to_utc() -> None:
    plus_two = dt.timezone(dt.timedelta(hours=2))
    assert iso(dt.datetime(2026, 3, 1, 10, 0, tzinfo=plus_two)) == "2026-03-01T08:00:00Z"
    assert iso(None) is None


@pytest.mark.parametrize("limit", [0, -1, MAX_PAGE_SIZE + 1])
def test_query_limit_bounds(limit: int) -> None:
    with pytest.raises(InvalidInput, match="limit must be between 1 and"):
        CertificateQuery(limit=limit)


def test_negative_expiry_window_is_refused() -> None:
    with pytest.raises(InvalidInput, match="expiring must not be negative"):
        CertificateQuery(expiring_within=dt.timedelta(days=-1))


@pytest.mark.parametrize("last_id", [1, 99, 2**40])
def test_cursor_round_trip(last_id: int) -> None:
    cursor = encode_cursor(last_id)
    assert str(last_id) not in cursor  # opaque to clients
    assert decode_cursor(cursor) == last_id


@pytest.mark.parametrize("cursor", ["", "!!!", "aWQ6LTE", "eDox", "aWQ6"])
def test_malformed_cursor(cursor: str) -> None:
    with pytest.raises(InvalidInput, match="malformed pagination cursor"):
        decode_cursor(cursor)
