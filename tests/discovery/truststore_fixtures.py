"""Real trust stores for tests, made by the tools that make them on hosts: ``keytool``
(JKS and PKCS#12 ``cacerts``) and ``certutil`` (an NSS ``cert9.db``)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from cryptography import x509

from tests.discovery.pki import pem

STORE_PASSWORD = "changeit"


def java_cacerts(path: Path, roots: dict[str, x509.Certificate], store_type: str = "JKS") -> Path:
    """A ``cacerts`` of ``store_type`` (JKS or PKCS12) holding ``roots`` by alias."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for alias, cert in roots.items():
        source = path.parent / f"{alias}.pem"
        source.write_bytes(pem(cert))
        subprocess.run(
            ["keytool", "-importcert", "-noprompt", "-keystore", str(path), "-storetype", store_type,
             "-storepass", STORE_PASSWORD, "-alias", alias, "-file", str(source)],
            check=True, capture_output=True,
        )  # fmt: skip
        source.unlink()
    return path


def nss_database(folder: Path, entries: dict[str, tuple[x509.Certificate, str]]) -> Path:
    """An NSS database in ``folder``; ``entries`` maps a nickname to its certificate and
    trust flags (``C,,`` trusted for servers, ``c,,`` a CA that anchors nothing)."""
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["certutil", "-N", "-d", f"sql:{folder}", "--empty-password"], check=True, capture_output=True
    )
    for nickname, (cert, flags) in entries.items():
        source = folder / "import.pem"
        source.write_bytes(pem(cert))
        subprocess.run(
            ["certutil", "-A", "-d", f"sql:{folder}", "-n", nickname, "-t", flags, "-i", str(source)],
            check=True, capture_output=True,
        )  # fmt: skip
        source.unlink()
    return folder
