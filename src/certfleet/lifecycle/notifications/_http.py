"""POSTing to a receiver, and the rule for which failures are worth a retry."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx

from certfleet.errors import InvalidInput
from certfleet.lifecycle.notifications._channel import ChannelContext, DeliveryFailed

__all__ = ["check_url", "post"]

# RFC 9110 section 15.5.9 (408), RFC 8470 (425), RFC 6585 section 4 (429): the receiver
# asks to try again; every 5xx is the receiver's own trouble. Other 4xx will not change.
_RETRYABLE_STATUS = {408, 425, 429}
_MAX_RETRY_AFTER = 3600.0


def check_url(raw: Any, type_name: str) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidInput(f"{type_name} channel needs a url")
    url = raw.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(f"{type_name} channel: url {url!r} must be http:// or https:// with a host")
    return url


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    if value.isdigit():  # the delta-seconds form (RFC 9110 section 10.2.3); dates are ignored
        return min(float(value), _MAX_RETRY_AFTER)
    return None


def post(context: ChannelContext, url: str, body: bytes, headers: Mapping[str, str]) -> str:
    try:
        response = context.http.post(
            url,
            content=body,
            headers={"Content-Type": "application/json", **headers},
            timeout=context.timeout_seconds,
        )
    except httpx.TimeoutException as exc:
        raise DeliveryFailed(
            f"timed out after {context.timeout_seconds:g} s ({type(exc).__name__})", retryable=True
        ) from exc
    except httpx.TransportError as exc:
        raise DeliveryFailed(
            f"cannot reach {urlsplit(url).netloc}: {exc or type(exc).__name__}", retryable=True
        ) from exc
    status = response.status_code
    if 200 <= status < 300:
        return f"HTTP {status}"
    retryable = status >= 500 or status in _RETRYABLE_STATUS
    reason = f"HTTP {status} {response.reason_phrase}".strip()
    if 300 <= status < 400:
        reason += f" (redirect to {response.headers.get('location', '?')}: update the channel's url)"
    raise DeliveryFailed(reason, retryable=retryable, retry_after_seconds=_retry_after(response))
