from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from certfleet.ca._hierarchy import CaCertificate

__all__ = ["CaRepository"]


class CaRepository(Protocol):
    """Storage of the CA hierarchy; ``certfleet.store`` implements it."""

    def add(self, ca: CaCertificate) -> None: ...

    def list(self) -> Sequence[CaCertificate]: ...

    def get(self, ca_id: str) -> CaCertificate | None: ...
