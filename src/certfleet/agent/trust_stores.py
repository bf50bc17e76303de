"""The host's trust stores, as the agent sees them: read each run with discovery's readers
(the same well-known places ``certfleet scan files --trust-stores`` reads) and reported to
the server, which records them under the agent's host.

The report sends each distinct root once (its DER, by SHA-256) and each store as the list
of the roots it trusts, so a host whose system bundle, Java ``cacerts`` and certifi share
150 roots sends 150 certificates, not 450 (about 200 KB, under the API's body limit). A
report identical to the last one accepted is not sent again: the stores rarely change, and
a fleet of agents would otherwise post megabytes every interval to say so.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.serialization import Encoding

from certfleet.discovery import fingerprint
from certfleet.discovery.truststores import StoreReading, read_stores, well_known_stores
from certfleet.fs import write_atomic

__all__ = ["LAST_REPORT_FILE", "TrustStoreReporter", "stores_body"]

LAST_REPORT_FILE = "trust-stores.sha256"


def stores_body(readings: Sequence[StoreReading]) -> dict[str, Any]:
    """The ``POST /api/v1/agent/trust-stores`` body for ``readings``."""
    roots: dict[str, str] = {}
    stores: list[dict[str, Any]] = []
    for reading in readings:
        listed = []
        for cert in reading.roots:
            fp = fingerprint(cert)
            roots.setdefault(fp, base64.b64encode(cert.public_bytes(Encoding.DER)).decode())
            listed.append(fp)
        stores.append(
            {
                "kind": reading.kind.value,
                "path": reading.path,
                "format": reading.format,
                "error": reading.error,
                "roots": listed,
            }
        )
    return {"roots": roots, "stores": stores}


class TrustStoreReporter:
    """``root``: where the host's file system starts (``/``; a test's folder)."""

    def __init__(self, state_dir: Path, root: Path = Path("/")) -> None:
        self._last = state_dir / LAST_REPORT_FILE
        self._root = root

    def pending(self) -> tuple[dict[str, Any], str] | None:
        """The body to send and its digest, or None when it is the one sent last."""
        body = stores_body(read_stores(well_known_stores(self._root)))
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        try:
            if self._last.read_text().strip() == digest:
                return None
        except OSError:
            pass
        return body, digest

    def sent(self, digest: str) -> None:
        write_atomic(self._last, (digest + "\n").encode(), mode=0o600)
