"""Selectors: the facts about a workload that registration entries are matched against.

A selector is written ``type:key:value`` (``unix:uid:1000``, ``unix:path:/usr/bin/app``,
``unix:sha256:<hex>``), as SPIRE writes them; the value may itself contain ``:``. The ``unix``
type is checked strictly because the agent's attestor produces exactly those keys from the
socket peer (SO_PEERCRED); other types are kept as written so a registry of later attestors
needs no change here.
"""

from __future__ import annotations

import string
from collections.abc import Iterable
from dataclasses import dataclass

from certfleet.spiffe.errors import InvalidSelector

__all__ = ["UNIX_KEYS", "Selector", "entry_matches", "parse_selectors"]

# The keys the agent's unix attestor emits; uid and gid are decimal, sha256 is the executable's
# digest in lower-case hex, path is the executable's absolute path.
UNIX_KEYS = frozenset({"uid", "gid", "user", "group", "path", "sha256"})
_TYPE_CHARS = frozenset(string.ascii_lowercase + string.digits + "_-")
_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True, order=True)
class Selector:
    type: str
    key: str
    value: str

    def __post_init__(self) -> None:
        if not self.type or set(self.type) - _TYPE_CHARS:
            raise InvalidSelector(f"selector type {self.type!r} must be [a-z0-9_-]+")
        if not self.key or ":" in self.key:
            raise InvalidSelector(f"selector {self.type}:{self.key}: the key must be non-empty")
        if not self.value:
            raise InvalidSelector(f"selector {self.type}:{self.key}: the value is empty")
        if any(ch.isspace() and ch != " " for ch in self.value) or self.value != self.value.strip():
            raise InvalidSelector(f"selector {self}: the value has stray whitespace")
        if self.type == "unix":
            _check_unix(self.key, self.value)

    @classmethod
    def parse(cls, text: str) -> Selector:
        parts = text.split(":", 2)
        if len(parts) != 3:
            raise InvalidSelector(
                f"selector {text!r} is not a type, key and value joined by colons, e.g. unix:uid:1000"
            )
        return cls(parts[0], parts[1], parts[2])

    def __str__(self) -> str:
        return f"{self.type}:{self.key}:{self.value}"


def _check_unix(key: str, value: str) -> None:
    if key not in UNIX_KEYS:
        raise InvalidSelector(f"selector unix:{key}: unknown key (known: {', '.join(sorted(UNIX_KEYS))})")
    if key in ("uid", "gid") and not (value.isascii() and value.isdigit()):
        raise InvalidSelector(f"selector unix:{key}:{value}: {key} must be a decimal number")
    if key == "path" and not value.startswith("/"):
        raise InvalidSelector(f"selector unix:path:{value}: the path must be absolute")
    if key == "sha256" and (len(value) != 64 or set(value) - _HEX):
        raise InvalidSelector(f"selector unix:sha256:{value}: expected 64 lower-case hexadecimal digits")


def parse_selectors(texts: Iterable[str]) -> tuple[Selector, ...]:
    """Parse, de-duplicate and sort selectors (an entry's selector set has one canonical form)."""
    return tuple(sorted({Selector.parse(text) for text in texts}))


def entry_matches(
    entry_selectors: Iterable[Selector | str], workload_selectors: Iterable[Selector | str]
) -> bool:
    """True when every selector of the entry is among the workload's (SPIRE's subset match).

    An entry without selectors matches nothing: an empty set would otherwise be a subset of
    every workload's selectors and hand its identity to any process on the host."""
    wanted = {_as_selector(s) for s in entry_selectors}
    if not wanted:
        return False
    return wanted <= {_as_selector(s) for s in workload_selectors}


def _as_selector(selector: Selector | str) -> Selector:
    return selector if isinstance(selector, Selector) else Selector.parse(selector)
