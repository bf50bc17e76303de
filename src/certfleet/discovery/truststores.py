"""Trust stores: which roots a host trusts, read from where its software looks.

A store is recognised by its path (the names distributions and runtimes give them), so a
directory walk meets them like any file, and a mounted image or a test's folder works as
well as ``/``: the well-known paths are matched by their ending. Kinds:

- ``system``: the Debian and RHEL bundles (``/etc/ssl/certs/ca-certificates.crt``,
  ``/etc/pki/tls/certs/ca-bundle.crt``, ``/etc/pki/ca-trust/extracted/...``), PEM;
- ``anchors``: one certificate per file in ``/usr/local/share/ca-certificates`` and
  ``/etc/pki/ca-trust/source/anchors`` (what ``update-ca-certificates`` adds);
- ``java``: a ``cacerts`` file, JKS (trusted-certificate entries, read without the
  password, as keytool lists them) or PKCS#12 (tried with no password, the empty one,
  ``changeit``, then the scan's passwords);
- ``nss``: a ``cert9.db`` database, read with ``certutil`` (see :mod:`._nss`);
- ``certifi``: Python's ``certifi/cacert.pem``.

Reading a store never raises for its content: a store that does not parse is a
:class:`StoreReading` with ``error`` set, precise enough to act on.
"""

from __future__ import annotations

import enum
import site
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12

from certfleet.discovery._lenient import lenient_parsing
from certfleet.discovery._nss import NssError, read_nss_database
from certfleet.discovery.keystores import JKS_MAGIC, looks_like_pkcs12
from certfleet.discovery.trust import load_pem_bundle

__all__ = [
    "JAVA_DEFAULT_PASSWORD",
    "StoreKind",
    "StoreReading",
    "classify",
    "read_store",
    "read_stores",
    "well_known_stores",
]

JAVA_DEFAULT_PASSWORD = b"changeit"
MAX_STORE_BYTES = 16 * 1024 * 1024

_SYSTEM_BUNDLES = (
    "etc/ssl/certs/ca-certificates.crt",
    "etc/pki/tls/certs/ca-bundle.crt",
    "etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "etc/pki/ca-trust/extracted/openssl/ca-bundle.trust.crt",
)
_ANCHOR_FOLDERS = ("usr/local/share/ca-certificates", "etc/pki/ca-trust/source/anchors")
_JAVA_STORES = (
    "etc/ssl/certs/java/cacerts",
    "etc/pki/ca-trust/extracted/java/cacerts",
    "etc/pki/java/cacerts",
)
_JAVA_GLOBS = ("usr/lib/jvm/*/lib/security/cacerts",)
_NSS_FOLDERS = (
    "etc/pki/nssdb",
    "root/.pki/nssdb",
    "home/*/.pki/nssdb",  # Chromium's
    "root/.mozilla/firefox/*",  # Firefox profiles
    "home/*/.mozilla/firefox/*",
)
_CERTIFI_GLOBS = (
    "usr/lib/python3*/site-packages/certifi/cacert.pem",
    "usr/lib/python3/dist-packages/certifi/cacert.pem",
    "usr/local/lib/python3*/site-packages/certifi/cacert.pem",
    "usr/local/lib/python3*/dist-packages/certifi/cacert.pem",
    "opt/*/lib/python3*/site-packages/certifi/cacert.pem",
    "opt/*/*/lib/python3*/site-packages/certifi/cacert.pem",
)


class StoreKind(enum.StrEnum):
    SYSTEM = "system"
    ANCHORS = "anchors"
    JAVA = "java"
    NSS = "nss"
    CERTIFI = "certifi"


@dataclass(frozen=True)
class StoreReading:
    """The roots one store trusts. ``path`` is the file (the folder for NSS); ``format``
    says how it was read (``pem``, ``der``, ``jks``, ``pkcs12``, ``nss``)."""

    kind: StoreKind
    path: str
    format: str = ""
    roots: tuple[x509.Certificate, ...] = ()
    error: str | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return self.error is None


def _ends_with(path: PurePosixPath, tail: str) -> bool:
    parts = PurePosixPath(tail).parts
    return path.parts[-len(parts) :] == parts


def classify(path: str | Path) -> tuple[StoreKind, Path] | None:
    """The kind of store ``path`` is and the path to read it by (an NSS database is read
    by its folder), or None when it is no trust store."""
    pure = PurePosixPath(str(path))
    if pure.name == "cert9.db":
        return StoreKind.NSS, Path(str(pure.parent))
    if pure.name == "cacerts" and (pure.parent.name in ("security", "java")):
        return StoreKind.JAVA, Path(str(pure))
    if pure.name == "cacert.pem" and pure.parent.name == "certifi":
        return StoreKind.CERTIFI, Path(str(pure))
    if any(_ends_with(pure, bundle) for bundle in _SYSTEM_BUNDLES):
        return StoreKind.SYSTEM, Path(str(pure))
    for folder in _ANCHOR_FOLDERS:
        folder_parts = PurePosixPath(folder).parts
        parents = pure.parts[:-1]
        for start in range(len(parents)):
            if parents[start : start + len(folder_parts)] == folder_parts:
                return StoreKind.ANCHORS, Path(str(pure))
    return None


def well_known_stores(root: Path = Path("/")) -> list[Path]:
    """The stores of a host (or of an image mounted at ``root``) that exist, in a stable
    order: files, anchor folders, and each NSS database by its ``cert9.db``."""
    found: list[Path] = []
    for tail in (*_SYSTEM_BUNDLES, *_ANCHOR_FOLDERS, *_JAVA_STORES):
        candidate = root / tail
        if candidate.exists():
            found.append(candidate)
    for pattern in (*_JAVA_GLOBS, *_CERTIFI_GLOBS):
        found.extend(sorted(root.glob(pattern)))
    for pattern in _NSS_FOLDERS:
        found.extend(p / "cert9.db" for p in sorted(root.glob(pattern)) if (p / "cert9.db").exists())
    if root == Path("/"):  # and the certifi of the Python running this (a virtualenv's too)
        for folder in dict.fromkeys([*site.getsitepackages(), site.getusersitepackages()]):
            candidate = Path(folder, "certifi", "cacert.pem")
            if candidate.is_file():
                found.append(candidate)
    unique: dict[str, Path] = {}
    for path in found:
        unique.setdefault(str(path.resolve()), path)
    return list(unique.values())


def _read_bytes(path: Path) -> bytes:
    with path.open("rb") as handle:
        data = handle.read(MAX_STORE_BYTES + 1)
    if len(data) > MAX_STORE_BYTES:
        raise ValueError(f"larger than {MAX_STORE_BYTES} bytes")
    return data


def _pem_roots(data: bytes, what: str) -> tuple[str, list[x509.Certificate]]:
    if b"-----BEGIN CERTIFICATE-----" in data or b"-----BEGIN TRUSTED CERTIFICATE-----" in data:
        certificates = load_pem_bundle(data.replace(b"TRUSTED CERTIFICATE", b"CERTIFICATE"))
        if not certificates:
            raise ValueError(f"{what}: no PEM certificate block parses")
        return "pem", certificates
    if data[:1] == b"\x30":
        try:
            return "der", [x509.load_der_x509_certificate(data)]
        except ValueError:
            raise ValueError(f"{what}: DER data that is no certificate") from None
    if not data.strip():
        raise ValueError(f"{what}: empty file")
    raise ValueError(f"{what}: neither a PEM certificate nor DER")


def read_java_cacerts(data: bytes, passwords: Iterable[bytes] = ()) -> tuple[str, list[x509.Certificate]]:
    """The trusted-certificate entries of a JKS/JCEKS store, or every certificate of a
    PKCS#12 one. Raises ValueError with the reason."""
    if data[:4] in JKS_MAGIC:
        import jks

        from certfleet.discovery.keystores import _keystore_errors

        try:
            store = jks.KeyStore.loads(data, None, try_decrypt_keys=False)
        except _keystore_errors() as exc:
            raise ValueError(f"JKS keystore does not parse: {exc}") from None
        roots: list[x509.Certificate] = []
        for alias, entry in sorted(store.certs.items()):
            try:
                roots.append(x509.load_der_x509_certificate(entry.cert))
            except ValueError:
                raise ValueError(f"JKS entry {alias!r} holds a certificate that does not parse") from None
        return "jks", roots
    if not looks_like_pkcs12(data):
        raise ValueError("neither a JKS nor a PKCS#12 keystore")
    candidates = [None, b"", JAVA_DEFAULT_PASSWORD, *passwords]
    for password in dict.fromkeys(candidates):
        try:
            bundle = pkcs12.load_pkcs12(data, password)
        except ValueError:
            continue
        certificates = [c.certificate for c in bundle.additional_certs]
        if bundle.cert is not None:
            certificates.insert(0, bundle.cert.certificate)
        return "pkcs12", certificates
    raise ValueError("PKCS#12 keystore: no password opens it (tried none, empty, changeit and the scan's)")


def read_store(kind: StoreKind, path: Path, passwords: Iterable[bytes] = ()) -> StoreReading:
    """One store's roots; a store that cannot be read gives its reason in ``error``."""
    text = str(path)
    try:
        with lenient_parsing():
            if kind is StoreKind.NSS:
                entries = read_nss_database(path)
                return StoreReading(kind, text, "nss", tuple(cert for _, cert in entries))
            data = _read_bytes(path)
            if kind is StoreKind.JAVA:
                fmt, roots = read_java_cacerts(data, passwords)
            else:
                fmt, roots = _pem_roots(data, kind.value)
    except NssError as exc:
        return StoreReading(kind, text, "nss", error=str(exc))
    except OSError as exc:
        return StoreReading(kind, text, error=f"cannot read: {exc.strerror or exc}")
    except ValueError as exc:
        return StoreReading(kind, text, error=str(exc))
    return StoreReading(kind, text, fmt, tuple(roots))


def read_stores(paths: Iterable[str | Path], passwords: Iterable[bytes] = ()) -> list[StoreReading]:
    """Each distinct store among ``paths`` (every path a walk met, or
    :func:`well_known_stores`; an anchors folder stands for the files in it), read once."""
    targets: dict[tuple[StoreKind, str], Path] = {}
    for raw in paths:
        path = Path(raw)
        found = classify(path)
        if found is not None:
            # Only the few paths named like a store are looked at again (a walk passes all).
            if found[0] is StoreKind.NSS or path.is_file():
                targets.setdefault((found[0], str(found[1])), found[1])
        elif classify(path / "member") is not None and path.is_dir():
            for member in sorted(p for p in path.iterdir() if p.is_file()):
                targets.setdefault((StoreKind.ANCHORS, str(member)), member)
    secrets = tuple(passwords)
    return [read_store(kind, path, secrets) for (kind, _), path in targets.items()]
