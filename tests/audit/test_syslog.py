"""Audit entries as RFC 5424 messages with structured data, as JSON lines, and the
octet-counting frame of syslog over TLS (RFC 5425)."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest

from certfleet.audit import GENESIS_HASH, AuditDraft, AuditEntry, extend_chain
from certfleet.audit._syslog import SD_ID, format_entry, format_json_line, format_rfc5424, octet_frame

BOM = b"\xef\xbb\xbf"


def _entry(actor: str = "alice", subject: str = "v3", details: dict[str, object] | None = None) -> AuditEntry:
    at = dt.datetime(2026, 12, 3, 10, 0, 0, 123456, tzinfo=dt.UTC)
    draft = AuditDraft(at, actor, "policy.applied", subject, details or {"rules": ["a"]})
    (entry,) = extend_chain((41, GENESIS_HASH), [draft])
    return entry


def test_the_message_has_the_rfc5424_header_structured_data_and_a_bom_before_utf8() -> None:
    entry = _entry()
    message = format_rfc5424(entry, hostname="node-1.example.test")
    head, _, body = message.partition(BOM)
    assert head.decode() == (
        "<110>1 2026-12-03T10:00:00.123456Z node-1.example.test certfleet - policy.applied "
        f'[{SD_ID} seq="42" actor="alice" action="policy.applied" subject="v3" '
        f'hash="{entry.hash}" prev_hash="{GENESIS_HASH}"] '
    )
    assert SD_ID == "certfleet@32473"
    assert json.loads(body) == {"rules": ["a"]}


@pytest.mark.parametrize(
    ("actor", "escaped"),
    [
        ('say "hi"', 'say \\"hi\\"'),
        ("back\\slash", "back\\\\slash"),
        ("close]bracket", "close\\]bracket"),
        ('all\\"]', 'all\\\\\\"\\]'),
        ("no [escape] for [", "no [escape\\] for ["),
    ],
)
def test_param_values_escape_quote_backslash_and_closing_bracket(actor: str, escaped: str) -> None:
    message = format_rfc5424(_entry(actor=actor), hostname="h").decode()
    assert f' actor="{escaped}" ' in message


def test_utf8_stays_utf8_in_params_and_message() -> None:
    entry = _entry(subject="zertifikat-für-müller", details={"note": "Größe ✓"})
    message = format_rfc5424(entry, hostname="h")
    assert 'subject="zertifikat-für-müller"'.encode() in message
    assert message.endswith(BOM + '{"note":"Größe ✓"}'.encode())
    message.decode("utf-8")  # valid UTF-8 as a whole


def test_header_fields_are_printable_ascii_and_msgid_at_most_32() -> None:
    draft = AuditDraft(dt.datetime(2026, 1, 1, tzinfo=dt.UTC), "a", "x" * 40, "s", {})
    (entry,) = extend_chain((0, GENESIS_HASH), [draft])
    message = format_rfc5424(entry, hostname="host with space").decode()
    assert re.match(r"<110>1 2026-01-01T00:00:00\.000000Z host_with_space certfleet - x{32} \[", message)
    assert format_rfc5424(entry, hostname="").decode().split(" ")[2] == "-"  # NILVALUE


def test_octet_counting_counts_bytes_not_characters() -> None:
    message = "ü]".encode()
    assert octet_frame(message) == b"3 \xc3\xbc]"
    framed = format_entry(_entry(subject="ü"), "rfc5424", hostname="h")
    length, _, rest = framed.partition(b" ")
    assert int(length) == len(rest)


def test_a_json_line_is_one_line_with_every_field_of_the_entry() -> None:
    entry = _entry(details={"text": "two\nlines"})
    line = format_json_line(entry, hostname="h")
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert json.loads(line) == {**entry.to_dict(), "host": "h"}
    assert format_entry(entry, "json", hostname="h") == line
