"""Slack-compatible incoming webhooks (Slack, Mattermost, Rocket.Chat): ``{"text": ...}``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from certfleet.lifecycle.notifications._channel import Channel, Notice, reject_unknown
from certfleet.lifecycle.notifications._http import check_url, post
from certfleet.lifecycle.notifications.registry import register
from certfleet.lifecycle.notifications.render import summary

__all__ = ["SlackChannel", "slack_message"]


def _escape(text: str) -> str:
    # Slack's mrkdwn gives &, < and > a meaning (links, mentions): escape them as it asks.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_message(payload: Mapping[str, Any]) -> dict[str, Any]:
    lines = [_escape(summary(payload))]
    if payload.get("team"):
        lines.append(f"team: {_escape(str(payload['team']))}")
    for loc in (payload.get("locations") or [])[:5]:
        lines.append(f"seen at {_escape(str(loc.get('location')))}")
    if payload.get("event") == "digest":
        details = payload.get("details") or {}
        lines += [f"• {_escape(summary(item))}" for item in details.get("items", [])[:50]]
    return {"text": "\n".join(lines)}


@register
class SlackChannel(Channel):
    type_name = "slack"

    @classmethod
    def parse_options(cls, raw: Mapping[str, Any]) -> dict[str, Any]:
        reject_unknown(raw, {"url"}, cls.type_name)
        return {"url": check_url(raw.get("url"), cls.type_name)}

    @classmethod
    def redacted(cls, options: Mapping[str, Any]) -> str:
        # An incoming-webhook URL is the credential (its path is the token): show the host.
        parts = urlsplit(str(options.get("url", "")))
        return f"{parts.scheme}://{parts.netloc}/…"

    def send(self, notice: Notice) -> str:
        body = json.dumps(slack_message(notice.payload)).encode()
        return post(self.context, self.options["url"], body, {"User-Agent": "certfleet-notifications"})
