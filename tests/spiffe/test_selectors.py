"""Selectors are ``type:key:value``; entries match a workload when all of theirs are present."""

from __future__ import annotations

import pytest

from certfleet.spiffe import InvalidSelector, Selector, entry_matches, parse_selectors

SHA = "a" * 64


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("unix:uid:1000", ("unix", "uid", "1000")),
        ("unix:gid:0", ("unix", "gid", "0")),
        ("unix:path:/usr/bin/app", ("unix", "path", "/usr/bin/app")),
        (f"unix:sha256:{SHA}", ("unix", "sha256", SHA)),
        ("k8s:pod-label:app:web", ("k8s", "pod-label", "app:web")),
    ],
)
def test_selectors_parse_into_type_key_value(text: str, expected: tuple[str, str, str]) -> None:
    selector = Selector.parse(text)
    assert (selector.type, selector.key, selector.value) == expected
    assert str(selector) == text


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("unix", "joined by colons"),
        ("unix:uid", "joined by colons"),
        ("unix:uid:", "value is empty"),
        ("Unix:uid:1", "[a-z0-9_-]"),
        ("unix:uid:abc", "decimal"),
        ("unix:uid:-1", "decimal"),
        ("unix:path:usr/bin/app", "absolute"),
        ("unix:sha256:ABC", "64 lower-case"),
        (f"unix:sha256:{'A' * 64}", "64 lower-case"),
        ("unix:shoe:1", "unknown key"),
        ("unix:uid: 1000", "whitespace"),
    ],
)
def test_bad_selectors_are_refused_with_the_reason(text: str, reason: str) -> None:
    with pytest.raises(InvalidSelector) as caught:
        Selector.parse(text)
    assert reason in caught.value.detail


def test_entry_matches_when_all_its_selectors_are_among_the_workloads() -> None:
    workload = ["unix:uid:1000", "unix:gid:1000", "unix:path:/usr/bin/app", f"unix:sha256:{SHA}"]
    assert entry_matches(["unix:uid:1000"], workload)
    assert entry_matches(["unix:uid:1000", "unix:path:/usr/bin/app"], workload)
    assert entry_matches([Selector.parse("unix:uid:1000")], workload)
    assert not entry_matches(["unix:uid:1000", "unix:path:/usr/bin/other"], workload)
    assert not entry_matches(["unix:uid:1001"], workload)


def test_an_entry_without_selectors_matches_no_workload() -> None:
    assert not entry_matches([], ["unix:uid:1000"])


def test_parse_selectors_gives_one_canonical_sorted_set() -> None:
    parsed = parse_selectors(["unix:uid:1000", "unix:gid:5", "unix:uid:1000"])
    assert [str(s) for s in parsed] == ["unix:gid:5", "unix:uid:1000"]
