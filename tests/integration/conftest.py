"""Session fixtures shared by several integration suites."""

from __future__ import annotations

from tests.integration.scep_serve import scep_serve

__all__ = ["scep_serve"]
