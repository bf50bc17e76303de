"""A small authoritative DNS server over UDP for one test zone, with the TTLs a test sets.

pebble-challtestsrv answers every record with TTL 0 and its SOA from another zone, so
nothing it says may be cached; testing a cache that honours TTLs needs a server that gives
them. Records are (name, type) -> (ttl, [rdata text]); a name of the zone without the type
asked is NODATA with the zone's SOA in the authority section (negative TTL: the smaller of
the SOA's TTL and its minimum, RFC 2308); a name outside the zone is NODATA without an SOA,
as pebble-challtestsrv answers. Every query received is counted.
"""

from __future__ import annotations

import socket
import threading
from collections import Counter

import dns.flags
import dns.message
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rrset

__all__ = ["ZoneServer"]


class ZoneServer:
    def __init__(self, zone: str, *, soa_ttl: int = 60, negative_ttl: int = 60) -> None:
        self.zone = dns.name.from_text(zone)
        self.soa = dns.rrset.from_text(
            self.zone,
            soa_ttl,
            "IN",
            "SOA",
            f"ns.{zone}. hostmaster.{zone}. 1 3600 600 86400 {negative_ttl}",
        )
        self.records: dict[tuple[str, str], tuple[int, list[str]]] = {}
        self.queries: Counter[tuple[str, str]] = Counter()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self.port = int(self._sock.getsockname()[1])
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    def set(self, name: str, rdtype: str, ttl: int, *values: str) -> None:
        self.records[(name.rstrip(".").lower(), rdtype)] = (ttl, list(values))

    def _serve(self) -> None:
        while not self._stopped.is_set():
            try:
                wire, peer = self._sock.recvfrom(4096)
            except OSError:
                return
            if self._stopped.is_set():
                return
            query = dns.message.from_wire(wire)
            self._sock.sendto(self._answer(query).to_wire(), peer)

    def _answer(self, query: dns.message.Message) -> dns.message.Message:
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        question = query.question[0]
        name = question.name.to_text().rstrip(".").lower()
        rdtype = dns.rdatatype.to_text(question.rdtype)
        self.queries[(name, rdtype)] += 1
        if not question.name.is_subdomain(self.zone):
            return response  # outside the zone: NODATA without an SOA (no negative TTL)
        found = self.records.get((name, rdtype))
        if found is not None:
            ttl, values = found
            response.answer.append(dns.rrset.from_text(question.name, ttl, "IN", rdtype, *values))
        else:
            response.authority.append(self.soa)
        return response

    def stop(self) -> None:
        self._stopped.set()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as waker:
            waker.sendto(b"\0", self.address)  # wakes the blocked recvfrom
        self._thread.join(timeout=5)
        self._sock.close()
