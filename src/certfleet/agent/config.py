"""The agent's configuration file (YAML), parsed once into frozen values.

Every error names the file and the place in it (``certificates[0].files.key: ...``). Paths
are checked lexically here (absolute, inside ``allowed_dirs``); the deployment checks them
again on the real file system, where symlinks can change between runs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from certfleet.agent._trust_config import TRUST_KEYS, TrustSettings, parse_trust
from certfleet.agent._yaml_fields import (
    Where,
    absolute,
    argv,
    endpoint,
    file_mode,
    mapping,
    number,
    string,
)
from certfleet.agent.errors import AgentConfigError
from certfleet.errors import CertfleetError
from certfleet.spiffe import TrustDomain
from certfleet.x509 import KeyType, parse_names

__all__ = [
    "KEY_BEARING",
    "TARGET_KINDS",
    "AcmeIssuer",
    "AgentConfig",
    "CertificateSpec",
    "FileTarget",
    "HealthCheck",
    "SpiffeEndpoint",
    "load_config",
    "parse_config",
]

# What each target holds. Those with the private key default to mode 0600.
TARGET_KINDS = ("key", "cert", "chain", "fullchain", "combined", "pkcs12", "jks")
KEY_BEARING = frozenset({"key", "combined", "pkcs12", "jks"})
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
DEFAULT_INTERVAL_SECONDS = 3600
DEFAULT_RELOAD_TIMEOUT_SECONDS = 60.0
DEFAULT_HEALTH_TIMEOUT_SECONDS = 15.0
DEFAULT_WORKLOAD_SOCKET = Path("/run/certfleet/agent.sock")
WORKLOAD_ATTESTORS = ("unix",)


@dataclass(frozen=True)
class FileTarget:
    kind: str
    path: Path
    mode: int
    owner: str | None = None
    group: str | None = None
    password: bytes | None = None  # PKCS#12 and JKS only

    @property
    def holds_key(self) -> bool:
        return self.kind in KEY_BEARING


@dataclass(frozen=True)
class HealthCheck:
    """A TLS handshake to ``host:port`` (with ``sni``) must present the new certificate."""

    host: str
    port: int
    sni: str | None
    timeout_seconds: float = DEFAULT_HEALTH_TIMEOUT_SECONDS

    @property
    def endpoint(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class AcmeIssuer:
    """An external ACME directory. Exactly one of ``http01_listen`` (a standalone listener),
    ``webroot`` or ``dns01_hook`` answers the challenges."""

    directory: str
    email: str | None = None
    ca_bundle: Path | None = None  # trust for the directory's TLS (default: the system's)
    http01_listen: tuple[str, int] | None = None
    webroot: Path | None = None
    dns01_hook: tuple[str, ...] | None = None

    @property
    def challenge(self) -> str:
        return "dns-01" if self.dns01_hook else "http-01"


@dataclass(frozen=True)
class CertificateSpec:
    name: str
    names: tuple[str, ...]
    profile: str
    key_type: KeyType
    files: tuple[FileTarget, ...]
    acme: AcmeIssuer | None = None  # None: the certfleet server issues
    reload: tuple[str, ...] | None = None
    reload_timeout_seconds: float = DEFAULT_RELOAD_TIMEOUT_SECONDS
    health_check: HealthCheck | None = None
    validity_days: int | None = None

    @property
    def issuer(self) -> str:
        return "acme" if self.acme else "certfleet"

    def file(self, kind: str) -> FileTarget | None:
        return next((f for f in self.files if f.kind == kind), None)


@dataclass(frozen=True)
class SpiffeEndpoint:
    """The ``spiffe:`` section: where the Workload API listens, for which trust domain, and
    which workload attestors run (``unix``: SO_PEERCRED uid, gid, path and SHA-256)."""

    trust_domain: str
    socket: Path = DEFAULT_WORKLOAD_SOCKET
    attestors: tuple[str, ...] = WORKLOAD_ATTESTORS


@dataclass(frozen=True)
class AgentConfig:
    source: str
    server: str | None
    allowed_dirs: tuple[Path, ...]
    certificates: tuple[CertificateSpec, ...]
    state_dir: Path | None = None
    interval_seconds: int = DEFAULT_INTERVAL_SECONDS
    spiffe: SpiffeEndpoint | None = None
    trust: TrustSettings = field(default_factory=TrustSettings)


def _inside(path: Path, roots: tuple[Path, ...]) -> bool:
    return any(path.parent == root or root in path.parents for root in roots)


def _password(spec: Mapping[str, Any], where: Where) -> bytes:
    if "password" in spec and "password_file" in spec:
        raise where.error("give password or password_file, not both")
    if "password_file" in spec:
        path = absolute(spec["password_file"], where / "password_file")
        try:
            secret = path.read_bytes().strip()
        except OSError as exc:
            raise (where / "password_file").error(f"cannot read {path}: {exc.strerror}") from exc
    elif "password" in spec:
        secret = string(spec["password"], where / "password").encode()
    else:
        raise where.error("a keystore needs a password or a password_file")
    if not secret:
        raise where.error("the keystore password is empty")
    return secret


def _file(
    kind: str, value: object, where: Where, roots: tuple[Path, ...], owner: str | None, group: str | None
) -> FileTarget:
    spec: Mapping[str, Any]
    if isinstance(value, str):
        spec = {"path": value}
    else:
        spec = mapping(value, where, {"path", "mode", "owner", "group", "password", "password_file"})
    if "path" not in spec:
        raise where.error("needs a path")
    path = absolute(spec["path"], where / "path" if not isinstance(value, str) else where)
    if not _inside(path, roots):
        raise where.error(f"{path} is outside the allowed_dirs ({', '.join(str(r) for r in roots)})")
    mode = (
        file_mode(spec["mode"], where / "mode")
        if "mode" in spec
        else (0o600 if kind in KEY_BEARING else 0o644)
    )
    password = _password(spec, where) if kind in ("pkcs12", "jks") else None
    if kind not in ("pkcs12", "jks") and ("password" in spec or "password_file" in spec):
        raise where.error(f"a {kind} file takes no password (only pkcs12 and jks do)")
    return FileTarget(
        kind,
        path,
        mode,
        string(spec["owner"], where / "owner") if "owner" in spec else owner,
        string(spec["group"], where / "group") if "group" in spec else group,
        password,
    )


def _acme(value: object, where: Where) -> AcmeIssuer:
    spec = mapping(value, where, {"directory", "email", "ca_bundle", "http01", "webroot", "dns01"})
    if "directory" not in spec:
        raise where.error("needs the directory URL")
    directory = string(spec["directory"], where / "directory")
    if urlsplit(directory).scheme not in ("https", "http") or not urlsplit(directory).netloc:
        raise (where / "directory").error(f"{directory!r} is not an http(s) URL")
    answers = [k for k in ("http01", "webroot", "dns01") if k in spec]
    if len(answers) != 1:
        raise where.error("choose exactly one of http01 (standalone listener), webroot or dns01 (hook)")
    listen = webroot = hook = None
    if "http01" in spec:
        http01 = mapping(spec["http01"], where / "http01", {"listen"})
        listen = endpoint(http01.get("listen", "0.0.0.0:80"), where / "http01" / "listen")
    elif "webroot" in spec:
        webroot = absolute(spec["webroot"], where / "webroot")
    else:
        dns01 = mapping(spec["dns01"], where / "dns01", {"hook"})
        hook = argv(dns01.get("hook"), where / "dns01" / "hook")
    return AcmeIssuer(
        directory=directory,
        email=string(spec["email"], where / "email") if "email" in spec else None,
        ca_bundle=absolute(spec["ca_bundle"], where / "ca_bundle") if "ca_bundle" in spec else None,
        http01_listen=listen,
        webroot=webroot,
        dns01_hook=hook,
    )


def _health(value: object, where: Where) -> HealthCheck:
    spec = mapping(value, where, {"connect", "sni", "timeout_seconds"})
    if "connect" not in spec:
        raise where.error("needs connect: HOST:PORT")
    host, port = endpoint(spec["connect"], where / "connect")
    sni = string(spec["sni"], where / "sni") if "sni" in spec else None
    timeout = number(
        spec.get("timeout_seconds", DEFAULT_HEALTH_TIMEOUT_SECONDS), where / "timeout_seconds", 1, 600
    )
    return HealthCheck(host, port, sni, timeout)


_CERT_KEYS = {
    "name", "names", "profile", "key_type", "issuer", "files", "owner", "group", "reload",
    "reload_timeout_seconds", "health_check", "validity_days",
}  # fmt: skip


def _certificate(value: object, where: Where, roots: tuple[Path, ...]) -> CertificateSpec:
    spec = mapping(value, where, _CERT_KEYS)
    name = string(spec.get("name"), where / "name")
    if not _NAME.match(name):
        raise (where / "name").error(f"{name[:70]!r} must be 1 to 64 letters, digits, '.', '_' or '-'")
    raw_names = spec.get("names")
    if not isinstance(raw_names, list) or not raw_names or not all(isinstance(n, str) for n in raw_names):
        raise (where / "names").error("must be a non-empty list of DNS names or IP addresses")
    try:
        names = tuple(n.value for n in parse_names(raw_names))
        key_type = KeyType.parse(str(spec.get("key_type", "ec-p256")))
    except CertfleetError as exc:
        raise where.error(exc.detail) from exc
    issuer = spec.get("issuer", "certfleet")
    acme: AcmeIssuer | None = None
    if isinstance(issuer, dict):
        acme = _acme(mapping(issuer, where / "issuer", {"acme"}).get("acme"), where / "issuer" / "acme")
    elif issuer != "certfleet":
        raise (where / "issuer").error("must be certfleet or a mapping {acme: {directory: URL, ...}}")
    owner = string(spec["owner"], where / "owner") if "owner" in spec else None
    group = string(spec["group"], where / "group") if "group" in spec else None
    files_raw = mapping(spec.get("files"), where / "files", set(TARGET_KINDS))
    if not files_raw:
        raise (where / "files").error(f"needs at least one of {', '.join(TARGET_KINDS)}")
    files = tuple(_file(k, v, where / "files" / k, roots, owner, group) for k, v in files_raw.items())
    if len({f.path for f in files}) != len(files):
        raise (where / "files").error("two targets have the same path")
    validity = spec.get("validity_days")
    return CertificateSpec(
        name=name,
        names=names,
        profile=string(spec.get("profile", "tls-server"), where / "profile"),
        key_type=key_type,
        files=files,
        acme=acme,
        reload=argv(spec["reload"], where / "reload") if "reload" in spec else None,
        reload_timeout_seconds=number(
            spec.get("reload_timeout_seconds", DEFAULT_RELOAD_TIMEOUT_SECONDS),
            where / "reload_timeout_seconds",
            1,
            3600,
        ),
        health_check=_health(spec["health_check"], where / "health_check")
        if "health_check" in spec
        else None,
        validity_days=int(number(validity, where / "validity_days", 1, 398))
        if validity is not None
        else None,
    )


def _spiffe(value: object, where: Where) -> SpiffeEndpoint:
    spec = mapping(value, where, {"socket", "trust_domain", "attestors"})
    named = string(spec.get("trust_domain"), where / "trust_domain")
    try:
        trust_domain = TrustDomain.parse(named).name
    except CertfleetError as exc:
        raise (where / "trust_domain").error(exc.detail) from exc
    attestors = spec.get("attestors", list(WORKLOAD_ATTESTORS))
    if not isinstance(attestors, list) or not attestors or set(attestors) - set(WORKLOAD_ATTESTORS):
        raise (where / "attestors").error(f"must be a list of: {', '.join(WORKLOAD_ATTESTORS)}")
    socket = absolute(spec.get("socket", str(DEFAULT_WORKLOAD_SOCKET)), where / "socket")
    return SpiffeEndpoint(trust_domain, socket, tuple(dict.fromkeys(attestors)))


def parse_config(data: object, source: str) -> AgentConfig:
    top = Where(source)
    keys = {"server", "allowed_dirs", "certificates", "state_dir", "interval_seconds", "spiffe", *TRUST_KEYS}
    spec = mapping(data, top, keys)
    trust = parse_trust(spec, lambda key, message: (top / key).error(message))
    spiffe = _spiffe(spec["spiffe"], top / "spiffe") if "spiffe" in spec else None
    server = None
    if "server" in spec:
        server = string(spec["server"], top / "server").rstrip("/")
        if urlsplit(server).scheme != "https" or not urlsplit(server).netloc:
            raise (top / "server").error(f"{server!r} must be an https:// URL")
    only_spiffe = spiffe is not None and not spec.get("certificates")
    dirs_raw = spec.get("allowed_dirs", [] if only_spiffe else None)
    if not isinstance(dirs_raw, list) or (not dirs_raw and not only_spiffe):
        raise (top / "allowed_dirs").error("must be a non-empty list of directories the agent may write in")
    roots = tuple(absolute(d, top / "allowed_dirs" / i) for i, d in enumerate(dirs_raw))
    if any(root == Path("/") for root in roots):
        raise (top / "allowed_dirs").error("/ is not an acceptable allowed directory")
    # An agent that only serves the Workload API may have no certificate of its own to keep.
    certs_raw = spec.get("certificates", [] if spiffe is not None else None)
    if not isinstance(certs_raw, list) or (not certs_raw and spiffe is None):
        raise (top / "certificates").error("must be a non-empty list")
    certificates = tuple(_certificate(c, top / "certificates" / i, roots) for i, c in enumerate(certs_raw))
    seen: dict[str, str] = {}
    for index, cert in enumerate(certificates):
        if cert.name in seen:
            raise (top / "certificates" / index / "name").error(f"{cert.name!r} is used twice")
        seen[cert.name] = cert.name
        if cert.acme is None and server is None:
            raise (top / "certificates" / index).error("issuer certfleet needs the top-level server URL")
    paths = [f.path for c in certificates for f in c.files]
    if len(set(paths)) != len(paths):
        raise (top / "certificates").error("two certificates write the same file")
    return AgentConfig(
        source=source,
        server=server,
        allowed_dirs=roots,
        certificates=certificates,
        state_dir=absolute(spec["state_dir"], top / "state_dir") if "state_dir" in spec else None,
        spiffe=spiffe,
        trust=trust,
        interval_seconds=int(
            number(
                spec.get("interval_seconds", DEFAULT_INTERVAL_SECONDS), top / "interval_seconds", 10, 86400
            )
        ),
    )


def load_config(path: Path) -> AgentConfig:
    try:
        text = path.read_text()
    except OSError as exc:
        raise AgentConfigError(f"cannot read {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise AgentConfigError(f"{path}: not UTF-8 text") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise AgentConfigError(f"{path}:{where}: not valid YAML: {problem}") from exc
    return parse_config(data, str(path))
