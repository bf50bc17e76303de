"""The policy as stored: one immutable version per apply, and the storage port for them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from certfleet.clock import iso

__all__ = ["PolicyRepository", "PolicyVersion"]


@dataclass(frozen=True)
class PolicyVersion:
    version: int
    created_at: dt.datetime
    actor: str
    sha256: str
    rule_count: int
    document: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "created_at": iso(self.created_at),
            "actor": self.actor,
            "sha256": self.sha256,
            "rules": self.rule_count,
        }


class PolicyRepository(Protocol):
    def latest_version(self) -> int | None: ...

    def get(self, version: int) -> PolicyVersion | None: ...

    def add(self, version: PolicyVersion) -> None:
        """Insert; raises Conflict when that version number was taken meanwhile."""
        ...

    def history(self, limit: int) -> Sequence[PolicyVersion]:
        """Newest first."""
        ...
