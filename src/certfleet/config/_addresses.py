"""``HOST:PORT`` as config.toml and the command line write a listening address."""

from __future__ import annotations

from certfleet.errors import ConfigurationError

__all__ = ["parse_bind"]


def parse_bind(value: str) -> tuple[str, int]:
    """Parse ``HOST:PORT`` or ``[IPv6]:PORT``."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigurationError(f"bad listen address {value!r}: expected HOST:PORT")
    return host.strip("[]"), int(port)
