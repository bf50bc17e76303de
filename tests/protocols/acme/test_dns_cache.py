"""DNS answers are reused for their TTL and never longer, against a real DNS server over UDP
(tests/protocols/acme/dns_zone.py) whose TTLs the test sets; TTLs run on an injected
monotonic clock, so the test advances time instead of waiting. One validation's look-ups (A,
AAAA, the CAA RRset of every parent) are asked at once over one socket: those answers serve
that validation only, a TTL of 0 included, and the cache as always."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

import pytest

from certfleet.protocols.acme import AcmeProblem
from certfleet.protocols.acme.caa import CaaChecker
from certfleet.protocols.acme.challenges import Http01Validator
from certfleet.protocols.acme.identifiers import Identifier
from certfleet.protocols.acme.networks import NetworkPolicy
from certfleet.protocols.acme.resolver import DnsResolver, address_questions
from tests.ports import free_port
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


def _validate(resolver: DnsResolver, name: str) -> list[str]:
    """What a validation looks up: the addresses, then CAA climbing from the name."""
    addresses = list(resolver.addresses(name))
    CaaChecker(resolver, ["certfleet"]).check(name, wildcard=False, account_uri=ACCOUNT, method="http-01")
    return addresses


def test_a_validations_questions_are_asked_once_together_even_with_ttl_zero(
    zone: ZoneServer, resolver: DnsResolver
) -> None:
    # Given a name whose records all say TTL 0 (nothing may be cached)
    zone.set("www.a.tog.cache.test", "A", 0, "192.0.2.7")
    zone.set("a.tog.cache.test", "CAA", 0, '0 issue "certfleet"')
    questions = [*address_questions("www.a.tog.cache.test")]
    questions += CaaChecker(resolver, ["certfleet"]).questions("www.a.tog.cache.test")
    # When a validation asks them together and then looks them up
    with resolver.together(questions):
        assert _validate(resolver, "www.a.tog.cache.test") == ["192.0.2.7"]
        assert _validate(resolver, "www.a.tog.cache.test") == ["192.0.2.7"]
    # Then each was sent once, parents the climb did not reach included
    assert resolver.queries == len(questions) == 7
    assert all(zone.queries[(name, rdtype)] == 1 for name, rdtype in questions), zone.queries
    # And outside the block, TTL 0 means asked again
    _validate(resolver, "www.a.tog.cache.test")
    assert zone.queries[("www.a.tog.cache.test", "A")] == 2
    assert zone.queries[("a.tog.cache.test", "CAA")] == 2


def test_answers_asked_together_are_cached_for_their_ttl(zone: ZoneServer, resolver: DnsResolver) -> None:
    zone.set("ttl.tog.cache.test", "A", 300, "192.0.2.8")
    zone.set("ttl.tog.cache.test", "CAA", 300, '0 issue "certfleet"')
    with resolver.together([*address_questions("ttl.tog.cache.test"), ("ttl.tog.cache.test", "CAA")]):
        _validate(resolver, "ttl.tog.cache.test")
    _validate(resolver, "ttl.tog.cache.test")
    assert zone.queries[("ttl.tog.cache.test", "A")] == 1
    assert zone.queries[("ttl.tog.cache.test", "CAA")] == 1
    # A question already cached is not asked again when asked together
    with resolver.together([("ttl.tog.cache.test", "A"), ("ttl.tog.cache.test", "CAA")]):
        _validate(resolver, "ttl.tog.cache.test")
    assert zone.queries[("ttl.tog.cache.test", "A")] == 1


def test_a_refused_caa_look_up_still_refuses_issuance(zone: ZoneServer, resolver: DnsResolver) -> None:
    # Given a CAA record that forbids this CA, asked together with everything else
    zone.set("deny.tog.cache.test", "A", 0, "192.0.2.9")
    zone.set("deny.tog.cache.test", "CAA", 0, '0 issue "otherca.example"')
    questions = [*address_questions("deny.tog.cache.test"), ("deny.tog.cache.test", "CAA")]
    with resolver.together(questions), pytest.raises(AcmeProblem) as refused:
        _validate(resolver, "deny.tog.cache.test")
    assert refused.value.kind == "caa"


def test_without_answers_each_look_up_fails_as_it_would_alone() -> None:
    # Given a nameserver address where nothing listens (the port is refused)
    port = free_port()
    resolver = DnsResolver(("127.0.0.1", port), 1.0)
    alone = DnsResolver(("127.0.0.1", port), 1.0)
    with pytest.raises(AcmeProblem) as expected:
        alone.caa("gone.tog.cache.test")
    # When a validation asks together and looks up
    questions = [("gone.tog.cache.test", "CAA"), ("tog.cache.test", "CAA")]
    with resolver.together(questions), pytest.raises(AcmeProblem) as failed:
        resolver.caa("gone.tog.cache.test")
    # Then the look-up was made again alone and failed with the same problem
    assert failed.value.kind == expected.value.kind == "dns"
    assert failed.value.detail == expected.value.detail
