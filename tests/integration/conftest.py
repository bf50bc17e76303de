"""Session fixtures shared by several integration suites."""

from __future__ import annotations

from tests.integration.pg_cluster import pg_cluster
from tests.integration.scep_serve import scep_serve

__all__ = ["pg_cluster", "scep_serve"]
