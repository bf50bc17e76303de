"""Audit entries as the messages a SIEM collector reads: RFC 5424 syslog with structured
data, or one JSON object a line; and the octet-counting frame of syslog over TLS.

An RFC 5424 message::

    <110>1 2026-12-03T10:00:00.123456Z host certfleet - policy.applied
      [certfleet@32473 seq="42" actor="alice" action="policy.applied" subject="v3"
      hash="..." prev_hash="..."] BOM{"rules": ["strong-keys"], ...}

* PRI 110: facility 13 "log audit", severity 6 "informational" (RFC 5424 section 6.2.1).
* SD-ID ``certfleet@32473``: an enterprise-specific SD-ID needs a private enterprise number
  (section 7.2.2); 32473 is the one RFC 5612 reserves for documentation, until certfleet has
  its own. The parameters carry what a collector needs to check the chain: seq and hashes.
* PARAM-VALUE escapes ``"``, ``\\`` and ``]`` with a backslash (section 6.3.3) and is UTF-8.
* MSG is the entry's details as JSON, UTF-8 after a byte order mark (section 6.4).
* MSGID is the action, limited to 32 printable US-ASCII characters (section 6.2.7).
"""

from __future__ import annotations

import json
from typing import Literal

from certfleet.audit._chain import AuditEntry

__all__ = [
    "SD_ID",
    "SiemFormat",
    "format_entry",
    "format_json_line",
    "format_rfc5424",
    "octet_frame",
]

SiemFormat = Literal["rfc5424", "json"]
DOCUMENTATION_PEN = 32473  # RFC 5612
SD_ID = f"certfleet@{DOCUMENTATION_PEN}"
_PRI = 13 * 8 + 6  # log audit, informational
_BOM = b"\xef\xbb\xbf"
_NILVALUE = "-"


def _printable(value: str, limit: int) -> str:
    """A header field (HOSTNAME, APP-NAME, MSGID): PRINTUSASCII (33-126) only, or NILVALUE."""
    kept = "".join(c if 33 <= ord(c) <= 126 else "_" for c in value)[:limit]
    return kept or _NILVALUE


def _param(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def _timestamp(entry: AuditEntry) -> str:
    # RFC 3339 with at most 6 fractional digits (section 6.2.3), as the chain hashes it.
    return str(entry.to_dict()["at"])


def format_rfc5424(entry: AuditEntry, *, hostname: str, app_name: str = "certfleet") -> bytes:
    """One RFC 5424 message (without framing)."""
    params = {
        "seq": str(entry.seq),
        "actor": entry.actor,
        "action": entry.action,
        "subject": entry.subject,
        "hash": entry.hash,
        "prev_hash": entry.prev_hash,
    }
    data = " ".join(f'{name}="{_param(value)}"' for name, value in params.items())
    header = " ".join(
        [
            f"<{_PRI}>1",
            _timestamp(entry),
            _printable(hostname, 255),
            _printable(app_name, 48),
            _NILVALUE,
            _printable(entry.action, 32),
        ]
    )
    details = json.dumps(dict(entry.details), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return f"{header} [{SD_ID} {data}] ".encode() + _BOM + details.encode()


def format_json_line(entry: AuditEntry, *, hostname: str) -> bytes:
    """The entry as one JSON object and a newline (JSON escapes every newline inside)."""
    body = {**entry.to_dict(), "host": hostname}
    return json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def octet_frame(message: bytes) -> bytes:
    """RFC 5425 section 4.3 (and RFC 6587 section 3.4.1): ``MSG-LEN SP SYSLOG-MSG``."""
    return str(len(message)).encode() + b" " + message


def format_entry(entry: AuditEntry, fmt: SiemFormat, *, hostname: str) -> bytes:
    """What goes on the wire for one entry: an octet-counted RFC 5424 frame, or a JSON line."""
    if fmt == "json":
        return format_json_line(entry, hostname=hostname)
    return octet_frame(format_rfc5424(entry, hostname=hostname))
