"""A signed CRL or OCSP response ready to be served."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

__all__ = ["Published", "refresh_at"]


def refresh_at(this_update: dt.datetime, validity: dt.timedelta) -> dt.datetime:
    """When a CRL or response is replaced: once a third of its validity has passed, so it is
    always renewed before half its life even when a maintenance round runs late."""
    return this_update + validity / 3


@dataclass(frozen=True)
class Published:
    """The DER and what HTTP caching needs (RFC 5019 section 6.2). ``refresh_at`` is when a
    newer document will exist, so ``max-age`` ends there, never after ``next_update``.
    Error responses carry no times and are not cached; ``shared_cache`` is false for a
    response that echoes one client's nonce."""

    der: bytes
    this_update: dt.datetime | None = None
    next_update: dt.datetime | None = None
    refresh_at: dt.datetime | None = None
    number: int | None = None
    shared_cache: bool = True

    @property
    def etag(self) -> str:
        return '"' + hashlib.sha256(self.der).hexdigest()[:32] + '"'
