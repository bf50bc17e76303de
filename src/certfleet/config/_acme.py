"""The ``[acme]`` section of ``config.toml``: the ACME server's knobs, parsed once."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass, field

from certfleet.config._table import parse_table, toml
from certfleet.errors import ConfigurationError

__all__ = ["AcmeSettings", "IpNetwork", "parse_acme_section"]

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_resolver(value: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[IPv6]:PORT``; a bare host means port 53."""
    host, sep, port = value.rpartition(":")
    if not sep or "]" in port or (host.count(":") and not host.startswith("[")):
        return value.strip("[]"), 53
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigurationError(f"bad resolver address {value!r}: expected HOST:PORT")
    return host.strip("[]"), int(port)


def _network(value: str) -> IpNetwork:
    """A CIDR range (``"10.0.0.0/8"``, ``"fd00::/8"``); a bare address is one host."""
    try:
        return ipaddress.ip_network(value.strip())
    except ValueError as exc:
        raise ConfigurationError(
            f"{value!r} is not a CIDR range like 10.0.0.0/8 or fd00::/8 ({exc})"
        ) from exc


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
    resolver: tuple[str, int] | None = field(default=None, metadata=toml(parse=parse_resolver))
    http01_port: int = 80
    tlsalpn01_port: int = 443
    terms_of_service: str | None = None
    website: str | None = None
    caa_identities: tuple[str, ...] = ("certfleet",)
    authz_reuse: dt.timedelta = field(
        default=dt.timedelta(days=30), metadata=toml("authz_reuse_days", unit=dt.timedelta(days=1))
    )
    caa_recheck: dt.timedelta = field(
        default=dt.timedelta(hours=8), metadata=toml("caa_recheck_hours", unit=dt.timedelta(hours=1))
    )
    nonce_lifetime: dt.timedelta = field(
        default=dt.timedelta(minutes=30),
        metadata=toml("nonce_lifetime_seconds", unit=dt.timedelta(seconds=1)),
    )
    validation_timeout_seconds: float = 10.0
    validation_workers: int = 4
    # An order or challenge still ``processing`` after this was left by a dead process (a
    # live finalize or validation takes seconds): ``protocols.acme.recovery`` resolves it.
    stalled_after: dt.timedelta = field(
        default=dt.timedelta(minutes=5),
        metadata=toml("stalled_after_seconds", unit=dt.timedelta(seconds=1)),
    )
    ari_retry_after: dt.timedelta = field(
        default=dt.timedelta(hours=6),
        metadata=toml("ari_retry_after_seconds", unit=dt.timedelta(seconds=1), zero=True),
    )
    deny_networks: tuple[IpNetwork, ...] = field(default=(), metadata=toml(each=_network))
    # Not a config key: the profile an order gets when it names none.
    profile: str = field(default="tls-server", init=False)

    def __post_init__(self) -> None:
        for key in ("http01_port", "tlsalpn01_port"):
            if not 0 < getattr(self, key) < 65536:
                raise ConfigurationError(f"acme.{key} must be a port number (1-65535)")
        if not all(self.caa_identities):
            raise ConfigurationError("acme.caa_identities must be a list of domain names")
        # CAA issuer domain names compare case-insensitively, without the root's dot.
        object.__setattr__(self, "caa_identities", tuple(i.lower().rstrip(".") for i in self.caa_identities))
        if self.validation_timeout_seconds <= 0:
            raise ConfigurationError("acme.validation_timeout_seconds must be a positive number")
        if not 1 <= self.validation_workers <= 64:
            raise ConfigurationError("acme.validation_workers must be between 1 and 64")


def parse_acme_section(raw: object, where: str) -> AcmeSettings:
    """Parse ``[acme]`` with the one table parser; unknown keys are refused so a typo never
    silently does nothing."""
    return parse_table(AcmeSettings, raw, where, "acme")
