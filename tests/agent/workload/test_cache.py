"""The SVID cache: which entries a workload's selectors match, and what a pass reissues."""

from __future__ import annotations

import asyncio
import datetime as dt

from certfleet.agent.workload.cache import BATCH, SvidCache
from tests.agent.workload.fakes import FakeSvidSource
from tests.conftest import FakeClock


def test_an_entry_matches_when_the_workload_has_all_its_selectors(clock: FakeClock) -> None:
    source = FakeSvidSource(clock)
    source.add("uid", "ns/uid", "unix:uid:1000")
    source.add("uid-and-path", "ns/app", "unix:uid:1000", "unix:path:/usr/bin/app")
    source.add("empty", "ns/anyone")  # no selectors: it would match every process
    cache = SvidCache(source, clock)
    asyncio.run(cache.refresh())
    assert [e.id for e in cache.matching(frozenset({"unix:uid:1000", "unix:path:/usr/bin/other"}))] == ["uid"]
    both = cache.matching(frozenset({"unix:uid:1000", "unix:path:/usr/bin/app", "unix:gid:5"}))
    assert sorted(e.id for e in both) == ["uid", "uid-and-path"]
    assert cache.matching(frozenset({"unix:uid:0"})) == []


def test_a_pass_reissues_only_what_is_due_and_drops_deleted_entries(clock: FakeClock) -> None:
    source = FakeSvidSource(clock)
    short = source.add("short", "ns/short", "unix:uid:1", ttl_seconds=600)
    long = source.add("long", "ns/long", "unix:uid:2", ttl_seconds=3600)
    cache = SvidCache(source, clock)
    asyncio.run(cache.refresh())
    assert source.issued == {"short": 1, "long": 1}
    assert cache.next_due(dt.timedelta(hours=1)) == cache.x509_svids([short])[0].rotate_at
    clock.advance(dt.timedelta(minutes=6))  # past half of 10 minutes, not of an hour
    asyncio.run(cache.refresh())
    assert source.issued == {"short": 2, "long": 1}
    source._entries.pop("long")
    source.revision += 1
    asyncio.run(cache.refresh())
    assert cache.x509_svids([long]) == [] and len(cache) == 1


def test_an_outage_half_way_through_keeps_the_batches_issued_before_it(clock: FakeClock) -> None:
    # Given 600 entries (two calls to the server) and a server that fails after the first
    source = FakeSvidSource(clock)
    for i in range(600):
        source.add(f"e{i}", f"ns/w{i}", f"unix:uid:{10_000 + i}")
    source.calls_before_down = 1
    cache = SvidCache(source, clock)
    asyncio.run(cache.refresh())
    # Then the first 500 are cached and served, and the next pass issues the other 100
    assert len(cache) == sum(source.issued.values()) == BATCH == 500
    assert cache.last_error is not None
    source.down, source.calls_before_down = False, None
    asyncio.run(cache.refresh())
    assert len(cache) == 600 and sum(source.issued.values()) == 600
