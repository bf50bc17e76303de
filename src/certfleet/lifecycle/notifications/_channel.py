"""The channel role: what every notification channel plugin implements.

A channel type is a :class:`Channel` subclass with a ``type_name``, an options model it
validates from plain JSON (``parse_options``), and ``send``. A failure is data: it raises
:class:`DeliveryFailed` saying whether a retry can help, and the dispatcher decides when.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    import httpx

from certfleet.errors import InvalidInput

__all__ = ["Channel", "ChannelContext", "DeliveryFailed", "Notice", "reject_unknown"]


class DeliveryFailed(Exception):
    """``retryable``: the receiver may accept later (down, 5xx, 429); otherwise it refused
    for good (4xx, no STARTTLS). ``retry_after_seconds`` echoes a Retry-After header."""

    def __init__(self, reason: str, *, retryable: bool, retry_after_seconds: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.retry_after_seconds = retry_after_seconds


@dataclass(frozen=True)
class Notice:
    """One event for one channel. ``payload`` is the stored event document; ``body`` the
    exact bytes a JSON channel sends (the same on every retry, so a signature over it and a
    receiver's de-duplication by ``event_id`` both hold)."""

    event_id: int
    kind: str
    payload: Mapping[str, Any]
    delivery_id: int | None = None

    @property
    def document(self) -> dict[str, Any]:
        return {"id": self.event_id, **self.payload}

    @property
    def body(self) -> bytes:
        return json.dumps(self.document, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class ChannelContext:
    """What the dispatcher lends a channel: one HTTP client (connection reuse across a batch)
    and the time one attempt may take."""

    http: httpx.Client
    timeout_seconds: float = 10.0


def reject_unknown(raw: Mapping[str, Any], known: set[str], type_name: str) -> None:
    unknown = sorted(set(raw) - known)
    if unknown:
        raise InvalidInput(
            f"{type_name} channel: unknown option {unknown[0]!r} (known: {', '.join(sorted(known))})"
        )


class Channel(ABC):
    type_name: ClassVar[str]
    #: Whether the channel takes a secret (an HMAC key, an SMTP password).
    takes_secret: ClassVar[bool] = False

    def __init__(self, options: Mapping[str, Any], secret: str | None, context: ChannelContext) -> None:
        self.options = self.parse_options(options)
        self.secret = secret
        self.context = context

    @classmethod
    @abstractmethod
    def parse_options(cls, raw: Mapping[str, Any]) -> dict[str, Any]:
        """Validate and normalise options (plain JSON); raise InvalidInput naming the option."""

    @abstractmethod
    def send(self, notice: Notice) -> str:
        """Deliver; return a short outcome (``HTTP 204``). Raise :class:`DeliveryFailed`."""

    @classmethod
    def redacted(cls, options: Mapping[str, Any]) -> str:
        """Where it sends, for listings: never a secret."""
        return str(options.get("url", ""))
