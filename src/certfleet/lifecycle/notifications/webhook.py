"""Webhook: the event document as JSON, signed with HMAC-SHA256 over the exact body.

Headers: ``X-Certfleet-Signature: sha256=<hex>`` (when the channel has a secret; a receiver
recomputes it over the raw body and compares in constant time), ``X-Certfleet-Event`` (the
kind) and ``X-Certfleet-Delivery`` (the delivery id). The body's ``id`` is the event id: a
receiver that de-duplicates by it is safe even from a dispatcher that crashed between the
receiver's 2xx and recording it.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from certfleet.lifecycle.notifications._channel import Channel, Notice, reject_unknown
from certfleet.lifecycle.notifications._http import check_url, post
from certfleet.lifecycle.notifications.registry import register

__all__ = ["SIGNATURE_HEADER", "WebhookChannel", "sign"]

SIGNATURE_HEADER = "X-Certfleet-Signature"


def sign(secret: str, body: bytes) -> str:
    """The header value: ``sha256=`` and the hex HMAC-SHA256 of ``body`` under ``secret``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@register
class WebhookChannel(Channel):
    type_name = "webhook"
    takes_secret = True

    @classmethod
    def parse_options(cls, raw: Mapping[str, Any]) -> dict[str, Any]:
        reject_unknown(raw, {"url"}, cls.type_name)
        return {"url": check_url(raw.get("url"), cls.type_name)}

    def send(self, notice: Notice) -> str:
        body = notice.body
        headers = {"X-Certfleet-Event": notice.kind, "User-Agent": "certfleet-notifications"}
        if notice.delivery_id is not None:
            headers["X-Certfleet-Delivery"] = str(notice.delivery_id)
        if self.secret:
            headers[SIGNATURE_HEADER] = sign(self.secret, body)
        return post(self.context, self.options["url"], body, headers)
