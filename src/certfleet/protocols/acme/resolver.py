"""DNS look-ups for validation (A/AAAA, TXT, CAA) through an injected resolver, so tests and
private networks point validation at their own DNS server.

Answers are cached for their TTL and never longer (RFC 1035 section 3.2.1; a NODATA answer
for the negative TTL of RFC 2308 section 5, only when the authority section carries the
zone's SOA; NXDOMAIN and failures are not cached). CAA checking climbs from the name to the
root, so most certificates of a zone ask for the same parents' CAA RRsets: within their TTL
those cost nothing. What is cached is the answer, not a decision: the network policy still
checks every address an http-01 or tls-alpn-01 validation connects to.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.resolver

from certfleet.protocols.acme.problems import AcmeProblem

__all__ = ["CaaRecord", "DnsResolver", "Question", "Resolver", "address_questions"]

# A name and a record type ("A", "AAAA", "TXT", "CAA").
Question = tuple[str, str]
_ADDRESS_TYPES = ("A", "AAAA")


def address_questions(name: str) -> list[Question]:
    """The look-ups of :meth:`Resolver.addresses`."""
    return [(name, rdtype) for rdtype in _ADDRESS_TYPES]


# Enough for every parent of the names a busy server validates; the oldest entry goes first.
_CACHE_ENTRIES = 4096


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

    def __init__(
        self,
        nameserver: tuple[str, int] | None,
        timeout_seconds: float = 5.0,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._nameserver = nameserver
        self._timeout = timeout_seconds
        self._resolver: dns.resolver.Resolver | None = None
        # TTLs run on a monotonic clock (the platform's clock may be a test's frozen one).
        self._monotonic = monotonic
        self._cache: dict[tuple[str, str], tuple[float, dns.resolver.Answer]] = {}
        self._cache_lock = threading.Lock()
        # Answers asked together for the validation running on this thread (``together``).
        self._local = threading.local()
        self.queries = 0  # look-ups sent to the DNS server (tests observe the cache)

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

    @contextmanager
    def together(self, questions: Sequence[Question]) -> Iterator[None]:
        """Ask ``questions`` at once, over one UDP socket, and answer the look-ups of this
        thread from what came back until the block ends (one validation asks for A, AAAA and
        the CAA RRset of every parent: one after another, that was five sockets and five
        round trips). What has not come back, a truncated or failed answer (SERVFAIL,
        REFUSED, a malformed message) is asked again the usual way when the look-up is made,
        so every error is the one a look-up alone would report. The answers are reused
        within the block only (a TTL of 0 included: they are the validation's own look-ups,
        made concurrently), and in the cache for their TTL as always."""
        answers: dict[tuple[str, str], dns.resolver.Answer | None] = {}
        self._local.answers = answers
        try:
            self._ask_together(questions, answers)
            yield
        finally:
            self._local.answers = None

    def _ask_together(
        self, questions: Sequence[Question], answers: dict[tuple[str, str], dns.resolver.Answer | None]
    ) -> None:
        now = self._monotonic()
        with self._cache_lock:
            wanted = {
                key: question
                for key, question in ((_key(*q), q) for q in questions)
                if (cached := self._cache.get(key)) is None or cached[0] <= now
            }
        resolver = self._get()
        server = _udp_server(resolver)
        if len(wanted) < 2 or server is None:
            return  # nothing to win: each look-up goes its usual way
        pending: dict[int, tuple[tuple[str, str], dns.message.QueryMessage]] = {}
        for key, (name, rdtype) in wanted.items():
            request = dns.message.make_query(name, rdtype)
            request.use_edns(
                resolver.edns, resolver.ednsflags, resolver.payload, options=resolver.ednsoptions
            )
            if resolver.flags is not None:
                request.flags = resolver.flags
            while request.id in pending:
                request.id = (request.id + 1) & 0xFFFF
            pending[request.id] = (key, request)
        deadline = time.monotonic() + self._timeout
        try:
            with socket.socket(server[2], socket.SOCK_DGRAM) as sock:
                sock.connect(server[:2])
                for _, request in pending.values():
                    sock.send(request.to_wire())
                    self.queries += 1
                while pending and (remaining := deadline - time.monotonic()) > 0:
                    sock.settimeout(remaining)
                    wire = sock.recv(65535)
                    self._take(wire, pending, answers, server)
        except OSError:  # timeout, unreachable: what is missing is asked again, alone
            pass

    def _take(
        self,
        wire: bytes,
        pending: dict[int, tuple[tuple[str, str], dns.message.QueryMessage]],
        answers: dict[tuple[str, str], dns.resolver.Answer | None],
        server: tuple[str, int, socket.AddressFamily],
    ) -> None:
        """Keep one datagram's answer when it answers a pending question, as the resolver
        would (NOERROR: the answer; NXDOMAIN: none); anything else is left to the usual way."""
        try:
            response = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return
        entry = pending.get(response.id)
        if entry is None or not entry[1].is_response(response):
            return
        key, request = pending.pop(response.id)
        if response.flags & dns.flags.TC or not isinstance(response, dns.message.QueryMessage):
            return
        qname = request.question[0].name
        try:
            if response.rcode() == dns.rcode.NOERROR:
                rdtype = dns.rdatatype.from_text(key[1])
                answer = dns.resolver.Answer(qname, rdtype, dns.rdataclass.IN, response, server[0], server[1])
            elif response.rcode() == dns.rcode.NXDOMAIN:
                dns.resolver.Answer(qname, dns.rdatatype.ANY, dns.rdataclass.IN, response)
                answer = None
            else:
                return
        except Exception:  # noqa: BLE001 - an answer dnspython refuses: the usual way reports it
            return
        answers[key] = answer
        self._remember(key, answer, self._monotonic())

    def _query(self, name: str, rdtype: str) -> dns.resolver.Answer | None:
        key = _key(name, rdtype)
        together: dict[tuple[str, str], dns.resolver.Answer | None] | None = getattr(
            self._local, "answers", None
        )
        if together is not None and key in together:
            return together[key]
        now = self._monotonic()
        with self._cache_lock:
            cached = self._cache.get(key)
            if cached is not None and cached[0] > now:
                return cached[1]
        answer = self._resolve(name, rdtype)
        self._remember(key, answer, now)
        return answer

    def _remember(self, key: tuple[str, str], answer: dns.resolver.Answer | None, now: float) -> None:
        ttl = _cache_ttl(answer) if answer is not None else 0
        with self._cache_lock:
            if ttl > 0:
                if len(self._cache) >= _CACHE_ENTRIES:
                    self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
                    while len(self._cache) >= _CACHE_ENTRIES:
                        del self._cache[next(iter(self._cache))]
                self._cache[key] = (now + ttl, answer)  # type: ignore[assignment]
            else:
                self._cache.pop(key, None)

    def _resolve(self, name: str, rdtype: str) -> dns.resolver.Answer | None:
        self.queries += 1
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
        for rdtype in _ADDRESS_TYPES:
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


def _key(name: str, rdtype: str) -> tuple[str, str]:
    return name.lower().rstrip("."), rdtype


def _udp_server(resolver: dns.resolver.Resolver) -> tuple[str, int, socket.AddressFamily] | None:
    """The first nameserver as an address and port to send UDP to, or ``None`` when it is
    something else (DNS over HTTPS, TLS or QUIC): then look-ups go one at a time."""
    nameservers = resolver.nameservers
    if not nameservers or not isinstance(nameservers[0], str):
        return None
    try:
        address = ipaddress.ip_address(nameservers[0])
    except ValueError:
        return None
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    return str(address), resolver.nameserver_ports.get(str(address), resolver.port), family


def _cache_ttl(answer: dns.resolver.Answer) -> int:
    """Seconds this answer may be reused: the smallest TTL of its RRset and the CNAMEs that
    led to it; for NODATA the negative TTL of the zone's SOA (RFC 2308), or 0 without one."""
    chain = answer.chaining_result
    if chain.answer is not None:
        return max(0, int(chain.minimum_ttl))
    for rrset in answer.response.authority:
        if rrset.rdtype == dns.rdatatype.SOA and chain.canonical_name.is_subdomain(rrset.name):
            ttl = min([rrset.ttl, rrset[0].minimum, *(c.ttl for c in chain.cnames)])
            return max(0, int(ttl))
    return 0
