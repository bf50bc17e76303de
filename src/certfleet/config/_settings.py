"""``Settings``: every section of ``config.toml``, read and checked once by
:func:`load_settings`; each component receives only its own section."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from certfleet.config._acme import AcmeSettings, parse_acme_section
from certfleet.config._addresses import parse_bind
from certfleet.config._keys import KeySettings
from certfleet.config._lifecycle import LifecycleSettings
from certfleet.config._metrics import MetricsSettings
from certfleet.config._oidc import WebSettings, parse_web_section
from certfleet.config._revocation import RevocationSettings
from certfleet.config._siem import AuditSettings, parse_audit_section
from certfleet.config._table import parse_table, refuse_unknown, toml
from certfleet.errors import ConfigurationError

CONFIG_FILE_NAME = "config.toml"
# More serving processes than this only adds memory: each holds the whole application.
MAX_WORKERS = 64
# Keys of config.toml outside any section.
TOP_LEVEL_KEYS = ("database_url", "ca_passphrase_file", "public_base_url")


def default_data_dir(env: Mapping[str, str]) -> Path:
    """``$CERTFLEET_HOME``, else ``$XDG_DATA_HOME/certfleet``, else ``~/.local/share/certfleet``."""
    if env.get("CERTFLEET_HOME"):
        return Path(env["CERTFLEET_HOME"])
    xdg = env.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return base / "certfleet"


@dataclass(frozen=True)
class DataDir:
    """The layout of a data directory."""

    root: Path

    @property
    def config_file(self) -> Path:
        return self.root / CONFIG_FILE_NAME

    @property
    def database(self) -> Path:
        return self.root / "certfleet.db"

    @property
    def keys(self) -> Path:
        return self.root / "keys"

    @property
    def tls(self) -> Path:
        return self.root / "tls"

    @property
    def passphrase_file(self) -> Path:
        return self.root / "ca-passphrase"


@dataclass(frozen=True)
class ServerSettings:
    """The ``[server]`` section: where ``serve`` listens (``https`` and ``http``,
    ``"HOST:PORT"``) and under which names."""

    https_bind: tuple[str, int] = field(default=("127.0.0.1", 8443), metadata=toml("https", parse=parse_bind))
    http_bind: tuple[str, int] = field(default=("127.0.0.1", 8080), metadata=toml("http", parse=parse_bind))
    server_names: tuple[str, ...] = ()
    # Largest request body any listener accepts (routes that take only a CSR accept less).
    max_body_bytes: int = 1024 * 1024
    # Serving processes; 0 means one per CPU core (``serve --workers`` overrides it).
    workers: int = 0
    # How long a write on a SQLite data directory waits for another writer (another serving
    # process, the CLI, a backup tool holding the file) before it fails as "database
    # unavailable" (503 on the API, one line on the CLI). Every process reading this
    # config.toml uses it.
    sqlite_lock_wait_seconds: float = 30.0

    def __post_init__(self) -> None:
        if not 1024 <= self.max_body_bytes <= 2**31:
            raise ConfigurationError(f"server.max_body_bytes must be an integer from 1024 to {2**31}")
        if not 0 <= self.workers <= MAX_WORKERS:
            raise ConfigurationError(f"server.workers must be an integer from 0 to {MAX_WORKERS}")
        if not 0.1 <= self.sqlite_lock_wait_seconds <= 3600:
            raise ConfigurationError("server.sqlite_lock_wait_seconds must be a number from 0.1 to 3600")

    def worker_count(self) -> int:
        """The serving processes to run: ``workers``, or one per CPU core when it is 0."""
        return self.workers or max(1, min(os.cpu_count() or 1, MAX_WORKERS))


# Every section of config.toml. [acme] has values of its own (CIDR ranges, a resolver
# address) and its own reader, which refuses unknown keys the same way; the others go
# through the one table parser.
SECTION_NAMES = ("server", "acme", "revocation", "lifecycle", "metrics", "web", "keys", "audit")


@dataclass(frozen=True)
class Settings:
    data_dir: DataDir
    database_url: str
    passphrase_file: Path
    public_base_url: str
    server: ServerSettings = field(default_factory=ServerSettings)
    acme: AcmeSettings = field(default_factory=AcmeSettings)
    revocation: RevocationSettings = field(default_factory=RevocationSettings)
    lifecycle: LifecycleSettings = field(default_factory=LifecycleSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    keys: KeySettings = field(default_factory=KeySettings)  # [keys]: software files or an HSM
    web: WebSettings = field(default_factory=WebSettings)  # [web.oidc]: dashboard single sign-on
    audit: AuditSettings = field(default_factory=AuditSettings)  # [audit.siem]: the SIEM stream

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def _read_file(path: Path) -> dict[str, object]:
    if not path.exists():
        return {}
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(f"cannot read config file {path}: {exc}") from exc


def _str(table: Mapping[str, object], key: str, where: str) -> str | None:
    value = table.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigurationError(f"{where}: {key} must be a string")
    return value


def load_settings(
    env: Mapping[str, str],
    data_dir: Path | None = None,
    database_url: str | None = None,
) -> Settings:
    """Resolve settings in precedence order: flags, environment, config file, defaults."""
    root = (data_dir or default_data_dir(env)).expanduser().resolve()
    layout = DataDir(root)
    raw = _read_file(layout.config_file)
    where = str(layout.config_file)
    refuse_unknown(raw, TOP_LEVEL_KEYS + SECTION_NAMES, where, None)
    server = parse_table(ServerSettings, raw.get("server"), where, "server")
    db = database_url or env.get("CERTFLEET_DB") or _str(raw, "database_url", where)
    if not db:
        db = f"sqlite:///{layout.database}"
    passphrase = env.get("CERTFLEET_CA_PASSPHRASE_FILE") or _str(raw, "ca_passphrase_file", where)
    host, port = server.http_bind
    public = _str(raw, "public_base_url", where) or f"http://{_host_for_url(host)}:{port}"
    return Settings(
        data_dir=layout,
        database_url=db,
        passphrase_file=Path(passphrase) if passphrase else layout.passphrase_file,
        public_base_url=public.rstrip("/"),
        server=server,
        acme=parse_acme_section(raw.get("acme"), where),
        revocation=parse_table(RevocationSettings, raw.get("revocation"), where, "revocation"),
        lifecycle=parse_table(LifecycleSettings, raw.get("lifecycle"), where, "lifecycle"),
        metrics=parse_table(MetricsSettings, raw.get("metrics"), where, "metrics"),
        keys=parse_table(KeySettings, raw.get("keys"), where, "keys"),
        audit=parse_audit_section(raw.get("audit"), where),
        web=parse_web_section(raw.get("web"), where),
    )


def _host_for_url(host: str) -> str:
    return f"[{host}]" if ":" in host else host
