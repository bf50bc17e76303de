from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from certfleet.config._acme import AcmeSettings, parse_acme_section
from certfleet.errors import ConfigurationError

CONFIG_FILE_NAME = "config.toml"
DEFAULT_HTTPS = "127.0.0.1:8443"
DEFAULT_HTTP = "127.0.0.1:8080"


def default_data_dir(env: Mapping[str, str]) -> Path:
    """``$CERTFLEET_HOME``, else ``$XDG_DATA_HOME/certfleet``, else ``~/.local/share/certfleet``."""
    if env.get("CERTFLEET_HOME"):
        return Path(env["CERTFLEET_HOME"])
    xdg = env.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return base / "certfleet"


def parse_bind(value: str) -> tuple[str, int]:
    """Parse ``HOST:PORT`` or ``[IPv6]:PORT``."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigurationError(f"bad listen address {value!r}: expected HOST:PORT")
    return host.strip("[]"), int(port)


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
    https_bind: tuple[str, int] = ("127.0.0.1", 8443)
    http_bind: tuple[str, int] = ("127.0.0.1", 8080)
    server_names: tuple[str, ...] = ()
    # Largest request body any listener accepts (routes that take only a CSR accept less).
    max_body_bytes: int = 1024 * 1024


@dataclass(frozen=True)
class Settings:
    data_dir: DataDir
    database_url: str
    passphrase_file: Path
    public_base_url: str
    server: ServerSettings = field(default_factory=ServerSettings)
    acme: AcmeSettings = field(default_factory=AcmeSettings)

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


def read_section(config_file: Path, section: str) -> tuple[dict[str, object], str]:
    """The ``[section]`` table of ``config_file`` (empty when the file or table is absent)
    and a label naming both, for error messages. Each component parses its own slice."""
    where = f"{config_file} [{section}]"
    table = _read_file(config_file).get(section, {})
    if not isinstance(table, dict):
        raise ConfigurationError(f"{config_file}: [{section}] must be a table")
    return table, where


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
    server_raw = raw.get("server", {})
    if not isinstance(server_raw, dict):
        raise ConfigurationError(f"{where}: [server] must be a table")
    db = database_url or env.get("CERTFLEET_DB") or _str(raw, "database_url", where)
    if not db:
        db = f"sqlite:///{layout.database}"
    passphrase = env.get("CERTFLEET_CA_PASSPHRASE_FILE") or _str(raw, "ca_passphrase_file", where)
    https = parse_bind(_str(server_raw, "https", where) or DEFAULT_HTTPS)
    http = parse_bind(_str(server_raw, "http", where) or DEFAULT_HTTP)
    names_raw = server_raw.get("server_names", [])
    if not isinstance(names_raw, list) or not all(isinstance(n, str) for n in names_raw):
        raise ConfigurationError(f"{where}: server.server_names must be a list of strings")
    public = _str(raw, "public_base_url", where) or f"http://{_host_for_url(http[0])}:{http[1]}"
    return Settings(
        data_dir=layout,
        database_url=db,
        passphrase_file=Path(passphrase) if passphrase else layout.passphrase_file,
        public_base_url=public.rstrip("/"),
        server=ServerSettings(
            https_bind=https,
            http_bind=http,
            server_names=tuple(names_raw),
            max_body_bytes=_max_body_bytes(server_raw.get("max_body_bytes", 1024 * 1024), where),
        ),
        acme=parse_acme_section(raw.get("acme"), where),
    )


def _max_body_bytes(value: object, where: str) -> int:
    # bool is an int in Python: refuse it explicitly.
    if not isinstance(value, int) or isinstance(value, bool) or not 1024 <= value <= 2**31:
        raise ConfigurationError(f"{where}: server.max_body_bytes must be an integer from 1024 to {2**31}")
    return value


def _host_for_url(host: str) -> str:
    return f"[{host}]" if ":" in host else host
