"""DNS look-ups for validation (A/AAAA, TXT, CAA) through an injected resolver, so tests and
private networks point validation at their own DNS server."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rdatatype
import dns.resolver

from certfleet.protocols.acme.problems import AcmeProblem

__all__ = ["CaaRecord", "DnsResolver", "Resolver"]


@dataclass(frozen=True)
class CaaRecord:
    flags: int
    tag: str
    value: str


class Resolver(Protocol):
    def addresses(self, name: str) -> Sequence[str]:
        """A and AAAA addresses; raise ``dns`` when there are none or the look-up fails."""
        ...

    def txt(self, name: str) -> Sequence[str]:
        """TXT strings (each record's strings joined); empty when the name has none."""
        ...

    def caa(self, name: str) -> Sequence[CaaRecord] | None:
        """The CAA RRset at exactly ``name``: empty when the name exists without CAA, ``None``
        when the name does not exist; raise ``dns`` when the look-up fails (RFC 8659 section
        3 forbids issuing on a failed look-up)."""
        ...


class DnsResolver:
    """dnspython over one nameserver (``HOST:PORT``), or the system's resolvers."""

    def __init__(self, nameserver: tuple[str, int] | None, timeout_seconds: float = 5.0) -> None:
        self._nameserver = nameserver
        self._timeout = timeout_seconds
        self._resolver: dns.resolver.Resolver | None = None

    def _get(self) -> dns.resolver.Resolver:
        # Built on first use: reading /etc/resolv.conf must not be a condition for every CLI
        # command that merely opens the platform.
        if self._resolver is None:
            try:
                resolver = dns.resolver.Resolver(configure=self._nameserver is None)
            except dns.exception.DNSException as exc:
                raise AcmeProblem("dns", f"no DNS resolver configured: {exc}") from exc
            if self._nameserver is not None:
                resolver.nameservers = [self._nameserver[0]]
                resolver.port = self._nameserver[1]
            resolver.lifetime = self._timeout
            resolver.timeout = self._timeout
            resolver.cache = None
            self._resolver = resolver
        return self._resolver

    def _query(self, name: str, rdtype: str) -> dns.resolver.Answer | None:
        try:
            return self._get().resolve(name, rdtype, raise_on_no_answer=False)
        except dns.resolver.NXDOMAIN:
            return None
        except dns.resolver.NoNameservers as exc:
            raise AcmeProblem("dns", f"DNS servers failed (SERVFAIL) looking up {rdtype} for {name}") from exc
        except dns.exception.Timeout as exc:
            raise AcmeProblem("dns", f"DNS timeout looking up {rdtype} for {name}") from exc
        except dns.exception.DNSException as exc:
            raise AcmeProblem("dns", f"DNS error looking up {rdtype} for {name}: {exc}") from exc

    def addresses(self, name: str) -> Sequence[str]:
        found: list[str] = []
        nxdomain = True
        for rdtype in ("A", "AAAA"):
            answer = self._query(name, rdtype)
            if answer is None:
                continue
            nxdomain = False
            if answer.rrset is not None:
                found.extend(r.address for r in answer.rrset)
        if not found:
            why = "does not exist (NXDOMAIN)" if nxdomain else "has no A or AAAA record"
            raise AcmeProblem("dns", f"{name} {why}")
        return found

    def txt(self, name: str) -> Sequence[str]:
        answer = self._query(name, "TXT")
        if answer is None or answer.rrset is None:
            return []
        return [b"".join(r.strings).decode(errors="replace") for r in answer.rrset]

    def caa(self, name: str) -> Sequence[CaaRecord] | None:
        answer = self._query(name, "CAA")
        if answer is None:
            return None
        if answer.rrset is None:
            return []
        return [
            CaaRecord(r.flags, r.tag.decode(errors="replace").lower(), r.value.decode(errors="replace"))
            for r in answer.rrset
            if r.rdtype == dns.rdatatype.CAA
        ]
