"""DNS answers are reused for their TTL and never longer, against a real DNS server over UDP
(tests/protocols/acme/dns_zone.py) whose TTLs the test sets; TTLs run on an injected
monotonic clock, so the test advances time instead of waiting."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

import pytest

from certfleet.protocols.acme import AcmeProblem
from certfleet.protocols.acme.caa import CaaChecker
from certfleet.protocols.acme.challenges import Http01Validator
from certfleet.protocols.acme.identifiers import Identifier
from certfleet.protocols.acme.networks import NetworkPolicy
from certfleet.protocols.acme.resolver import DnsResolver
from tests.protocols.acme.dns_zone import ZoneServer

ACCOUNT = "https://ca.test/acme/acct/1"


class Ticks:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def zone() -> Iterator[ZoneServer]:
    server = ZoneServer("cache.test", soa_ttl=300, negative_ttl=60)
    yield server
    server.stop()


@pytest.fixture
def ticks() -> Ticks:
    return Ticks()


@pytest.fixture
def resolver(zone: ZoneServer, ticks: Ticks) -> DnsResolver:
    zone.queries.clear()
    return DnsResolver(zone.address, 2.0, monotonic=ticks)


def _check(resolver: DnsResolver, name: str) -> None:
    CaaChecker(resolver, ["certfleet"]).check(name, wildcard=False, account_uri=ACCOUNT, method="http-01")


def test_caa_answer_is_reused_within_its_ttl_and_asked_again_after(
    zone: ZoneServer, resolver: DnsResolver, ticks: Ticks
) -> None:
    zone.set("ttl.cache.test", "CAA", 120, '0 issue "certfleet"')
    _check(resolver, "ttl.cache.test")
    assert zone.queries[("ttl.cache.test", "CAA")] == 1

    ticks.now += 119
    _check(resolver, "ttl.cache.test")
    assert zone.queries[("ttl.cache.test", "CAA")] == 1  # from the cache

    ticks.now += 2  # 121 s after the answer: its TTL has run out
    _check(resolver, "ttl.cache.test")
    assert zone.queries[("ttl.cache.test", "CAA")] == 2


def test_a_changed_record_is_seen_once_the_cached_ttl_is_over(
    zone: ZoneServer, resolver: DnsResolver, ticks: Ticks
) -> None:
    zone.set("change.cache.test", "CAA", 30, '0 issue "certfleet"')
    _check(resolver, "change.cache.test")
    zone.set("change.cache.test", "CAA", 30, '0 issue "otherca.example"')
    _check(resolver, "change.cache.test")  # still the cached answer: within its TTL
    ticks.now += 31
    with pytest.raises(AcmeProblem) as refused:
        _check(resolver, "change.cache.test")
    assert refused.value.kind == "caa"


def test_parents_climbed_for_caa_are_asked_once_per_negative_ttl(
    zone: ZoneServer, resolver: DnsResolver, ticks: Ticks
) -> None:
    # No CAA anywhere: each parent's NODATA carries the zone's SOA (negative TTL 60 s).
    _check(resolver, "a.climb.cache.test")
    _check(resolver, "b.climb.cache.test")
    assert zone.queries[("climb.cache.test", "CAA")] == 1
    assert zone.queries[("cache.test", "CAA")] == 1
    assert zone.queries[("a.climb.cache.test", "CAA")] == 1
    assert zone.queries[("b.climb.cache.test", "CAA")] == 1
    ticks.now += 61
    _check(resolver, "c.climb.cache.test")
    assert zone.queries[("climb.cache.test", "CAA")] == 2


def test_ttl_zero_and_nodata_without_soa_are_never_cached(
    zone: ZoneServer, resolver: DnsResolver, ticks: Ticks
) -> None:
    zone.set("zero.cache.test", "CAA", 0, '0 issue "certfleet"')
    _check(resolver, "zero.cache.test")
    _check(resolver, "zero.cache.test")
    assert zone.queries[("zero.cache.test", "CAA")] == 2
    # "example." is outside the zone: NODATA without an SOA has no negative TTL.
    assert resolver.caa("example") == []
    assert resolver.caa("example") == []
    assert zone.queries[("example", "CAA")] == 2


def test_a_cached_address_is_still_checked_against_the_network_policy(
    zone: ZoneServer, resolver: DnsResolver
) -> None:
    zone.set("denied.cache.test", "A", 300, "127.0.0.1")
    validator = Http01Validator(resolver, 9, 1.0, NetworkPolicy([ipaddress.ip_network("127.0.0.0/8")]))
    for _ in range(2):
        with pytest.raises(AcmeProblem) as refused:
            validator.validate(Identifier("dns", "denied.cache.test"), "token", "token.thumb")
        assert "127.0.0.1" in refused.value.detail
    assert zone.queries[("denied.cache.test", "A")] == 1  # the second look-up was cached
