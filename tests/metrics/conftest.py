"""The dashboard's in-process browser serves the metrics tests too."""

from __future__ import annotations

from tests.web.conftest import browser

__all__ = ["browser"]
