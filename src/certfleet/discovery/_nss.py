"""NSS databases (``cert9.db``, the SQL format): read with ``certutil`` from NSS's tools.

``certutil -L -d sql:DIR`` lists each nickname with its trust flags, three comma-separated
fields (SSL, S/MIME, code signing). Only ``C`` (trusted CA for servers) and ``T`` (trusted
CA for clients) make a certificate a trust anchor; lower-case ``c`` means "valid CA", which
an imported intermediate gets and which anchors nothing. Each anchor is then exported with
``certutil -L -a -n NICK``. The old format (``cert8.db``, Berkeley DB) is not read.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from certfleet.discovery.trust import load_pem_bundle

__all__ = ["CERTUTIL_TIMEOUT_SECONDS", "NssEntry", "NssError", "parse_listing", "read_nss_database"]

CERTUTIL_TIMEOUT_SECONDS = 20.0
_FLAGS = re.compile(r"^(?P<nick>.+?)\s+(?P<flags>[A-Za-z]*,[A-Za-z]*,[A-Za-z]*)\s*$")
_TRUSTED = frozenset("CT")


class NssError(Exception):
    """An NSS database that cannot be read, and why (one line)."""


@dataclass(frozen=True)
class NssEntry:
    nickname: str
    flags: str

    @property
    def trusted(self) -> bool:
        """``C`` or ``T`` in any of the three fields (SSL, S/MIME, code signing)."""
        return any(ch in _TRUSTED for ch in self.flags)


def parse_listing(text: str) -> list[NssEntry]:
    """The entries of ``certutil -L`` output. Its header (a blank line, the column titles,
    the ``SSL,S/MIME,JAR/XPI`` legend, a blank line) is skipped; any other line that has no
    trust-flag field is an error, naming the line."""
    entries: list[NssEntry] = []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("Certificate Nickname") or stripped == "SSL,S/MIME,JAR/XPI":
            continue
        match = _FLAGS.match(stripped)
        if match is None:
            raise NssError(f"certutil listing line {number} has no trust flags: {stripped[:80]!r}")
        entries.append(NssEntry(match.group("nick"), match.group("flags")))
    return entries


def _certutil(args: list[str], directory: Path) -> str:
    binary = shutil.which("certutil")
    if binary is None:
        raise NssError("certutil is not installed (Debian: libnss3-tools)")
    try:
        done = subprocess.run(
            [binary, *args, "-d", f"sql:{directory}"],
            capture_output=True,
            timeout=CERTUTIL_TIMEOUT_SECONDS,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise NssError(f"certutil took more than {CERTUTIL_TIMEOUT_SECONDS:g} s") from None
    except OSError as exc:
        raise NssError(f"certutil cannot run: {exc.strerror or exc}") from None
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise NssError(f"certutil failed: {message[-1] if message else f'exit {done.returncode}'}")
    return done.stdout.decode("utf-8", "replace")


def read_nss_database(directory: Path) -> list[tuple[NssEntry, x509.Certificate]]:
    """Every trusted entry of the database in ``directory`` with its certificate."""
    anchors: list[tuple[NssEntry, x509.Certificate]] = []
    for entry in parse_listing(_certutil(["-L"], directory)):
        if not entry.trusted:
            continue
        pem = _certutil(["-L", "-a", "-n", entry.nickname], directory)
        certificates = load_pem_bundle(pem.encode())
        if not certificates:
            raise NssError(f"certutil exported no certificate for {entry.nickname!r}")
        anchors.append((entry, certificates[0]))
    return anchors
