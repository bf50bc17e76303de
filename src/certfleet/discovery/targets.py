"""Scan targets: what the user types, expanded into the endpoints to probe.

A target is a host name, an IPv4 or IPv6 address, a CIDR range, ``host:port``
(``[v6]:port``), or ``@file`` naming a file with one such target per line (``#`` comments).
Ranges expand to their host addresses (RFC 3021: a /31 or /32 keeps every address).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from certfleet.discovery.errors import BadTarget

# certfleet.x509 (all of cryptography's key types) is imported by the two functions that
# check names: `scan net`'s scanner process uses Endpoint and never parses a target.

__all__ = [
    "DEFAULT_PORTS",
    "MAX_ENDPOINTS",
    "Endpoint",
    "Target",
    "expand_endpoints",
    "parse_ports",
    "parse_target",
    "read_targets",
]

DEFAULT_PORTS = (443,)
# A cap on one scan's size: a mistyped /8 should be refused, not become 16 million probes.
MAX_ENDPOINTS = 1 << 20
_MAX_TARGET_FILE_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True, order=True)
class Endpoint:
    """One TLS endpoint to probe: ``host`` is the address or name connected to, ``sni`` the
    server name sent (``None``: no SNI, as for a bare IP address)."""

    host: str
    port: int
    sni: str | None = None

    @property
    def address(self) -> str:
        """``host:port`` with IPv6 addresses in brackets: the inventory's location key."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def name(self) -> str:
        """The name this endpoint is expected to answer for: the SNI, else the host."""
        return self.sni or self.host

    def __str__(self) -> str:
        return self.address if self.sni is None or self.sni == self.host else f"{self.address} ({self.sni})"


@dataclass(frozen=True)
class Target:
    """One parsed target: a single host (name or address) or a network, with an optional port."""

    host: str | None = None
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None
    port: int | None = None

    @property
    def is_name(self) -> bool:
        if self.host is None:
            return False
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            return True
        return False

    @property
    def size(self) -> int:
        if self.network is None:
            return 1
        return max(self.network.num_addresses - (2 if self._skips_edges else 0), 1)

    @property
    def _skips_edges(self) -> bool:
        assert self.network is not None
        return self.network.version == 4 and self.network.prefixlen < 31

    def hosts(self) -> Iterator[str]:
        if self.network is None:
            assert self.host is not None
            yield self.host
            return
        if self.network.prefixlen == self.network.max_prefixlen:
            yield self.network.network_address.compressed
            return
        for address in self.network.hosts():
            yield address.compressed


def _port(text: str, raw: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise BadTarget(f"bad port in target {raw!r}: expected 1-65535")
    return int(text)


def parse_target(raw: str) -> Target:
    """Parse one target (not ``@file``). Raises :class:`BadTarget` with the reason."""
    text = raw.strip()
    if not text:
        raise BadTarget("empty target")
    if "/" in text:
        try:
            network = ipaddress.ip_network(text, strict=False)
        except ValueError as exc:
            raise BadTarget(f"bad network {raw!r}: {exc}") from None
        if network.num_addresses > MAX_ENDPOINTS:
            raise BadTarget(f"network {raw!r} has {network.num_addresses} addresses; at most {MAX_ENDPOINTS}")
        return Target(network=network)
    port: int | None = None
    host = text
    if text.startswith("["):
        inner, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise BadTarget(f"bad target {raw!r}: expected [IPv6] or [IPv6]:port")
        host = inner
        if rest:
            port = _port(rest[1:], raw)
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
        port = _port(port_text, raw)
    try:
        return Target(host=ipaddress.ip_address(host).compressed, port=port)
    except ValueError:
        if ":" in host:
            raise BadTarget(f"bad IPv6 address {host!r} in target {raw!r}") from None
    from certfleet.x509 import BadName, SubjectName

    try:
        name = SubjectName.parse(host)
    except BadName as exc:
        raise BadTarget(f"bad host name in target {raw!r}: {exc.detail}") from None
    if name.is_wildcard:
        raise BadTarget(f"a wildcard {raw!r} cannot be scanned: name a host")
    return Target(host=name.value, port=port)


def read_targets(
    raw_targets: Iterable[str], read_file: Callable[[Path], bytes] | None = None
) -> list[Target]:
    """Parse targets, expanding ``@file`` (one target per line; blank lines and ``#`` comments
    are skipped). A bad line is reported with its file and line number."""
    reader = read_file or _read_target_file
    targets: list[Target] = []
    for raw in raw_targets:
        if not raw.startswith("@"):
            targets.append(parse_target(raw))
            continue
        path = Path(raw[1:])
        try:
            text = reader(path).decode("utf-8")
        except OSError as exc:
            raise BadTarget(f"cannot read target file {path}: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise BadTarget(f"target file {path} is not UTF-8 text") from None
        for number, line in enumerate(text.splitlines(), start=1):
            entry = line.split("#", 1)[0].strip()
            if not entry:
                continue
            if entry.startswith("@"):
                raise BadTarget(f"{path}:{number}: nested @file targets are not allowed")
            try:
                targets.append(parse_target(entry))
            except BadTarget as exc:
                raise BadTarget(f"{path}:{number}: {exc.detail}") from None
    if not targets:
        raise BadTarget("no targets given")
    return targets


def _read_target_file(path: Path) -> bytes:
    with path.open("rb") as fh:
        data = fh.read(_MAX_TARGET_FILE_BYTES + 1)
    if len(data) > _MAX_TARGET_FILE_BYTES:
        raise BadTarget(f"target file {path} is larger than {_MAX_TARGET_FILE_BYTES} bytes")
    return data


def parse_ports(raw: str | Sequence[int] | None) -> tuple[int, ...]:
    """``"443,8443"`` (or a sequence of ints) to a de-duplicated tuple of ports."""
    if raw is None:
        return DEFAULT_PORTS
    items: list[str] = (
        [p.strip() for p in raw.split(",") if p.strip()] if isinstance(raw, str) else [str(p) for p in raw]
    )
    if not items:
        raise BadTarget("no ports given")
    ports: dict[int, None] = {}
    for item in items:
        if "-" in item:
            low, _, high = item.partition("-")
            first, last = _port(low, item), _port(high, item)
            if last < first:
                raise BadTarget(f"bad port range {item!r}")
            ports.update(dict.fromkeys(range(first, last + 1)))
        else:
            ports[_port(item, item)] = None
    return tuple(ports)


def _check_sni(raw: str) -> str:
    from certfleet.x509 import BadName, SubjectName

    try:
        name = SubjectName.parse(raw)
    except BadName as exc:
        raise BadTarget(f"bad --sni {raw!r}: {exc.detail}") from None
    if name.kind != "dns":
        raise BadTarget(f"--sni {raw!r} is an IP address: SNI carries host names only (RFC 6066 section 3)")
    return name.value


def expand_endpoints(
    targets: Sequence[Target], ports: Sequence[int], snis: Sequence[str] = ()
) -> list[Endpoint]:
    """Every endpoint to probe, interleaved across hosts so that the per-host limit of the
    scanner never leaves the global slots waiting on one busy host.

    A host name is sent as SNI unless ``snis`` are given; then each endpoint is probed once
    per SNI name (virtual hosts). A bare address sends no SNI (RFC 6066 forbids literal IPs).
    """
    sni_names = tuple(dict.fromkeys(_check_sni(s) for s in snis))
    total = sum(t.size * (1 if t.port else len(ports)) * max(len(sni_names), 1) for t in targets)
    if total > MAX_ENDPOINTS:
        raise BadTarget(f"{total} endpoints to probe; at most {MAX_ENDPOINTS} per scan")
    # Port-major order: the Nth port of every host before the (N+1)th of any.
    per_target: list[list[Endpoint]] = []
    for target in targets:
        names: tuple[str | None, ...]
        if sni_names:
            names = sni_names
        elif target.is_name:
            names = (target.host,)
        else:
            names = (None,)
        target_ports = (target.port,) if target.port else tuple(ports)
        per_target.append([Endpoint(h, p, n) for p in target_ports for n in names for h in target.hosts()])
    seen: set[Endpoint] = set()
    ordered: list[Endpoint] = []
    for index in range(max((len(e) for e in per_target), default=0)):
        for endpoints in per_target:
            if index < len(endpoints) and endpoints[index] not in seen:
                seen.add(endpoints[index])
                ordered.append(endpoints[index])
    return ordered
