"""SPIFFE IDs follow the SPIFFE-ID spec: what parses, what is refused, and why."""

from __future__ import annotations

import pytest

from certfleet.errors import InvalidInput
from certfleet.spiffe import InvalidSpiffeId, SpiffeId, TrustDomain


@pytest.mark.parametrize(
    ("text", "trust_domain", "path"),
    [
        ("spiffe://example.org", "example.org", ""),
        ("spiffe://example.org/ns/app", "example.org", "/ns/app"),
        ("spiffe://td-1_x.io/A.b-c_D/9", "td-1_x.io", "/A.b-c_D/9"),
        ("spiffe://example.org/agent/host-1", "example.org", "/agent/host-1"),
    ],
)
def test_valid_ids_parse_and_round_trip(text: str, trust_domain: str, path: str) -> None:
    spiffe_id = SpiffeId.parse(text)
    assert spiffe_id.trust_domain == TrustDomain(trust_domain)
    assert spiffe_id.path == path
    assert str(spiffe_id) == text


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("http://example.org/app", "spiffe://"),
        ("SPIFFE://example.org/app", "spiffe://"),
        ("spiffe://Example.org/app", "[a-z0-9._-]"),
        ("spiffe:///app", "trust domain is empty"),
        ("spiffe://example.org:8080/app", "port"),
        ("spiffe://user@example.org/app", "user info"),
        ("spiffe://example.org/app?x=1", "query"),
        ("spiffe://example.org/app#frag", "fragment"),
        ("spiffe://example.org/", "must not end with '/'"),
        ("spiffe://example.org/app/", "must not end with '/'"),
        ("spiffe://example.org//app", "empty segment"),
        ("spiffe://example.org/./app", "relative segment"),
        ("spiffe://example.org/a/../b", "relative segment"),
        ("spiffe://example.org/a b", "characters outside"),
        ("spiffe://example.org/caf%C3%A9", "characters outside"),
        ("spiffe://example.org/" + "a" * 2100, "longer than 2048"),
    ],
)
def test_invalid_ids_are_refused_with_the_reason(text: str, reason: str) -> None:
    with pytest.raises(InvalidSpiffeId) as caught:
        SpiffeId.parse(text)
    assert reason in caught.value.detail
    # A bad ID is bad input: HTTP 400, CLI exit 2.
    assert isinstance(caught.value, InvalidInput)


def test_prefix_is_by_whole_segments_within_one_trust_domain() -> None:
    app = SpiffeId.parse("spiffe://example.org/ns/payments/app")
    assert app.has_prefix(SpiffeId.parse("spiffe://example.org/ns/payments"))
    assert app.has_prefix(SpiffeId.parse("spiffe://example.org"))
    assert app.has_prefix(app)
    assert not app.has_prefix(SpiffeId.parse("spiffe://example.org/ns/pay"))
    assert not app.has_prefix(SpiffeId.parse("spiffe://other.org/ns/payments"))


def test_trust_domain_parses_a_name_or_its_spiffe_id() -> None:
    assert TrustDomain.parse("example.org") == TrustDomain("example.org")
    assert TrustDomain.parse("spiffe://example.org") == TrustDomain("example.org")
    assert str(TrustDomain("example.org").id()) == "spiffe://example.org"
    with pytest.raises(InvalidSpiffeId, match="names a workload"):
        TrustDomain.parse("spiffe://example.org/app")
    with pytest.raises(InvalidSpiffeId):
        TrustDomain.parse("example.org/app")


def test_segments_and_construction_from_segments() -> None:
    td = TrustDomain("example.org")
    agent = SpiffeId.from_segments(td, "agent", "host1")
    assert str(agent) == "spiffe://example.org/agent/host1"
    assert agent.segments == ("agent", "host1")
    assert td.id().segments == ()
