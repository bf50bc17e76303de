"""Notifications: channel plugins (webhook, email, Slack), the dispatcher that delivers the
outbox that services write with :func:`emit` (:mod:`.events`), and the expiry
scan. The built-in channel types register when the registry is first asked (:mod:`.registry`).

Exports are lazy (PEP 562): a scan that only writes events (:mod:`.events`) does not
import the channels, the dispatcher or httpx.

The rule of the layers: this domain package owns its values (events, channel configs,
deliveries) and the storage ports it needs (:mod:`.events`); the application service that
manages channels and runs the scan and dispatch is ``certfleet.services.notifications``;
``certfleet.store`` implements the ports and nothing else."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from certfleet._exports import LazyExports

if TYPE_CHECKING:
    from certfleet.lifecycle.notifications._channel import Channel, ChannelContext, DeliveryFailed, Notice
    from certfleet.lifecycle.notifications.dispatcher import (
        Dispatcher,
        DispatchReport,
        DispatchSettings,
        backoff,
    )
    from certfleet.lifecycle.notifications.email import EmailChannel
    from certfleet.lifecycle.notifications.expiring import (
        DEFAULT_THRESHOLDS_DAYS,
        expiring_scan,
        threshold_for,
    )
    from certfleet.lifecycle.notifications.registry import (
        ENTRY_POINT_GROUP,
        available,
        channel_type,
        register,
    )
    from certfleet.lifecycle.notifications.slack import SlackChannel
    from certfleet.lifecycle.notifications.webhook import SIGNATURE_HEADER, WebhookChannel, sign

_HERE = "certfleet.lifecycle.notifications"
_EXPORTS = LazyExports(
    _HERE,
    {
        **dict.fromkeys(("Channel", "ChannelContext", "DeliveryFailed", "Notice"), f"{_HERE}._channel"),
        **dict.fromkeys(
            ("Dispatcher", "DispatchReport", "DispatchSettings", "backoff"), f"{_HERE}.dispatcher"
        ),
        "EmailChannel": f"{_HERE}.email",
        **dict.fromkeys(("DEFAULT_THRESHOLDS_DAYS", "expiring_scan", "threshold_for"), f"{_HERE}.expiring"),
        **dict.fromkeys(("ENTRY_POINT_GROUP", "available", "channel_type", "register"), f"{_HERE}.registry"),
        "SlackChannel": f"{_HERE}.slack",
        **dict.fromkeys(("SIGNATURE_HEADER", "WebhookChannel", "sign"), f"{_HERE}.webhook"),
    },
)


def __getattr__(name: str) -> Any:
    return _EXPORTS.get(name)


__all__ = [
    "DEFAULT_THRESHOLDS_DAYS",
    "ENTRY_POINT_GROUP",
    "SIGNATURE_HEADER",
    "Channel",
    "ChannelContext",
    "DeliveryFailed",
    "DispatchReport",
    "DispatchSettings",
    "Dispatcher",
    "EmailChannel",
    "Notice",
    "SlackChannel",
    "WebhookChannel",
    "available",
    "backoff",
    "channel_type",
    "expiring_scan",
    "register",
    "sign",
    "threshold_for",
]
