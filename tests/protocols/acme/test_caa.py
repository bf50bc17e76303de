"""CAA (RFC 8659, RFC 8657) against a hand-written fake resolver."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from certfleet.protocols.acme import AcmeProblem
from certfleet.protocols.acme.caa import CaaChecker
from certfleet.protocols.acme.resolver import CaaRecord


class FakeResolver:
    def __init__(self, records: dict[str, list[CaaRecord]], failing: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        self.records = records
        self.failing = failing
        self.asked: list[str] = []

    def addresses(self, name: str) -> Sequence[str]:
        return ["127.0.0.1"]

    def txt(self, name: str) -> Sequence[str]:
        return []

    def caa(self, name: str) -> Sequence[CaaRecord] | None:
        self.asked.append(name)
        if name in self.failing:
            raise AcmeProblem("dns", f"SERVFAIL for {name}")
        return self.records.get(name)


def issue(value: str, tag: str = "issue", flags: int = 0) -> CaaRecord:
    return CaaRecord(flags, tag, value)


ACCOUNT = "https://ca.test/acme/acct/1"


def check(
    records: dict[str, list[CaaRecord]],
    name: str,
    *,
    wildcard: bool = False,
    method: str = "http-01",
    failing: set[str] = frozenset(),
) -> FakeResolver:  # type: ignore[assignment]
    resolver = FakeResolver(records, failing)
    CaaChecker(resolver, ["certfleet"]).check(name, wildcard=wildcard, account_uri=ACCOUNT, method=method)
    return resolver


def refused(records: dict[str, list[CaaRecord]], name: str, **kwargs: object) -> AcmeProblem:
    with pytest.raises(AcmeProblem) as caught:
        check(records, name, **kwargs)  # type: ignore[arg-type]
    return caught.value


def test_no_records_anywhere_allows_and_climbs_to_the_top() -> None:
    resolver = check({}, "a.b.example.test")
    assert resolver.asked == ["a.b.example.test", "b.example.test", "example.test", "test"]


def test_the_closest_rrset_wins() -> None:
    records = {"example.test": [issue("otherca")], "b.example.test": [issue("certfleet")]}
    resolver = check(records, "a.b.example.test")
    assert resolver.asked == ["a.b.example.test", "b.example.test"]
    assert refused(records, "c.example.test").kind == "caa"


def test_issuewild_governs_wildcards_and_issue_otherwise() -> None:
    records = {"example.test": [issue("certfleet"), issue(";", "issuewild")]}
    check(records, "example.test")
    assert refused(records, "example.test", wildcard=True).kind == "caa"
    check({"example.test": [issue("certfleet")]}, "example.test", wildcard=True)


def test_empty_issue_forbids_every_ca() -> None:
    assert refused({"example.test": [issue(";")]}, "example.test").kind == "caa"


def test_only_iodef_does_not_restrict() -> None:
    check({"example.test": [issue("mailto:sec@example.test", "iodef")]}, "example.test")


def test_unknown_critical_property_refuses() -> None:
    records = {"example.test": [issue("certfleet"), issue("x", "tbs", flags=128)]}
    assert "critical" in refused(records, "example.test").detail


def test_account_and_method_parameters() -> None:
    check({"t": [issue(f"certfleet; accounturi={ACCOUNT}")]}, "x.t")
    assert refused({"t": [issue("certfleet; accounturi=https://ca.test/acme/acct/2")]}, "x.t").kind == "caa"
    check({"t": [issue("certfleet; validationmethods=dns-01,http-01")]}, "x.t")
    assert refused({"t": [issue("certfleet; validationmethods=dns-01")]}, "x.t").kind == "caa"


def test_a_failed_lookup_refuses() -> None:
    assert refused({}, "a.example.test", failing={"example.test"}).kind == "dns"
