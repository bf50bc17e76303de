"""The ``[acme]`` section of ``config.toml``: the ACME server's knobs, parsed once."""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass

from certfleet.config._table import refuse_unknown
from certfleet.errors import ConfigurationError

__all__ = ["AcmeSettings", "IpNetwork", "parse_acme_section"]

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class AcmeSettings:
    """How the ACME server behaves.

    ``http01_port`` and ``tlsalpn01_port`` are where validation connects (RFC 8555 8.3 and
    RFC 8737 fix 80 and 443; tests and private networks move them). ``resolver`` is the DNS
    server for A/AAAA/TXT/CAA look-ups (``None``: the system resolver). ``authz_reuse`` is how
    long a valid authorization is reused for new orders of the same account; ``caa_recheck``
    how old a CAA check may be at finalize before it is repeated (the CA/Browser Forum
    Baseline Requirements 3.2.2.8 allow 8 hours).

    ``deny_networks`` are address ranges validation never connects to (an administrator's
    internal networks, say). They are added to ranges that are always denied, whatever this
    says: link-local (``169.254.0.0/16`` with the cloud metadata address ``169.254.169.254``,
    ``fe80::/10``), ``0.0.0.0/8`` and ``::`` (see ``certfleet.protocols.acme.networks``).
    Loopback and private ranges are allowed unless listed here: tests and private networks
    validate there.
    """

    require_eab: bool = False
    resolver: tuple[str, int] | None = None
    http01_port: int = 80
    tlsalpn01_port: int = 443
    terms_of_service: str | None = None
    website: str | None = None
    caa_identities: tuple[str, ...] = ("certfleet",)
    authz_reuse: dt.timedelta = dt.timedelta(days=30)
    caa_recheck: dt.timedelta = dt.timedelta(hours=8)
    nonce_lifetime: dt.timedelta = dt.timedelta(minutes=30)
    validation_timeout_seconds: float = 10.0
    validation_workers: int = 4
    ari_retry_after: dt.timedelta = dt.timedelta(hours=6)
    profile: str = "tls-server"
    deny_networks: tuple[IpNetwork, ...] = ()


def _port(value: object, key: str, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 65536:
        raise ConfigurationError(f"{where}: acme.{key} must be a port number (1-65535)")
    return value


def parse_resolver(value: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[IPv6]:PORT``; a bare host means port 53."""
    host, sep, port = value.rpartition(":")
    if not sep or "]" in port or (host.count(":") and not host.startswith("[")):
        return value.strip("[]"), 53
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigurationError(f"bad resolver address {value!r}: expected HOST:PORT")
    return host.strip("[]"), int(port)


def _resolver(value: str, where: str) -> tuple[str, int]:
    try:
        return parse_resolver(value)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{where}: acme.resolver: {exc.detail}") from exc


def _networks(value: object, where: str) -> tuple[IpNetwork, ...]:
    """A list of CIDR ranges (``"10.0.0.0/8"``, ``"fd00::/8"``); a bare address is one host."""
    if not isinstance(value, list):
        raise ConfigurationError(f'{where}: acme.deny_networks must be a list of CIDR ranges ("10.0.0.0/8")')
    found: list[IpNetwork] = []
    for item in value:
        if not isinstance(item, str):
            raise ConfigurationError(f"{where}: acme.deny_networks: {item!r} is not a string CIDR range")
        try:
            found.append(ipaddress.ip_network(item.strip()))
        except ValueError as exc:
            example = "like 10.0.0.0/8 or fd00::/8"
            raise ConfigurationError(
                f"{where}: acme.deny_networks: {item!r} is not a CIDR range {example} ({exc})"
            ) from exc
    return tuple(found)


def _positive(value: object, key: str, where: str) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
        raise ConfigurationError(f"{where}: acme.{key} must be a positive number")
    return float(value)


def _non_negative(value: object, key: str, where: str) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
        raise ConfigurationError(f"{where}: acme.{key} must be zero or a positive number")
    return float(value)


def _optional_str(value: object, key: str, where: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise ConfigurationError(f"{where}: acme.{key} must be a string")


def parse_acme_section(raw: object, where: str) -> AcmeSettings:
    """Parse ``[acme]``; unknown keys are refused so a typo never silently does nothing."""
    if raw is None:
        return AcmeSettings()
    if not isinstance(raw, Mapping):
        raise ConfigurationError(f"{where}: [acme] must be a table")
    known = {
        "require_eab",
        "resolver",
        "http01_port",
        "tlsalpn01_port",
        "terms_of_service",
        "website",
        "caa_identities",
        "authz_reuse_days",
        "caa_recheck_hours",
        "nonce_lifetime_seconds",
        "validation_timeout_seconds",
        "validation_workers",
        "ari_retry_after_seconds",
        "deny_networks",
    }
    refuse_unknown(raw, known, where, "acme")
    defaults = AcmeSettings()
    require_eab = raw.get("require_eab", False)
    if not isinstance(require_eab, bool):
        raise ConfigurationError(f"{where}: acme.require_eab must be true or false")
    resolver = raw.get("resolver")
    if resolver is not None and not isinstance(resolver, str):
        raise ConfigurationError(f"{where}: acme.resolver must be a string HOST:PORT")
    identities = raw.get("caa_identities", list(defaults.caa_identities))
    if not isinstance(identities, list) or not all(isinstance(i, str) and i for i in identities):
        raise ConfigurationError(f"{where}: acme.caa_identities must be a list of domain names")
    workers = raw.get("validation_workers", defaults.validation_workers)
    if not isinstance(workers, int) or isinstance(workers, bool) or not 1 <= workers <= 64:
        raise ConfigurationError(f"{where}: acme.validation_workers must be between 1 and 64")
    return AcmeSettings(
        require_eab=require_eab,
        resolver=_resolver(resolver, where) if resolver else None,
        http01_port=_port(raw.get("http01_port", defaults.http01_port), "http01_port", where),
        tlsalpn01_port=_port(raw.get("tlsalpn01_port", defaults.tlsalpn01_port), "tlsalpn01_port", where),
        terms_of_service=_optional_str(raw.get("terms_of_service"), "terms_of_service", where),
        website=_optional_str(raw.get("website"), "website", where),
        caa_identities=tuple(i.lower().rstrip(".") for i in identities),
        authz_reuse=dt.timedelta(days=_positive(raw.get("authz_reuse_days", 30), "authz_reuse_days", where)),
        caa_recheck=dt.timedelta(
            hours=_positive(raw.get("caa_recheck_hours", 8), "caa_recheck_hours", where)
        ),
        nonce_lifetime=dt.timedelta(
            seconds=_positive(raw.get("nonce_lifetime_seconds", 1800), "nonce_lifetime_seconds", where)
        ),
        validation_timeout_seconds=_positive(
            raw.get("validation_timeout_seconds", 10), "validation_timeout_seconds", where
        ),
        validation_workers=workers,
        ari_retry_after=dt.timedelta(
            seconds=_non_negative(raw.get("ari_retry_after_seconds", 21600), "ari_retry_after_seconds", where)
        ),
        deny_networks=_networks(raw.get("deny_networks", []), where),
    )
