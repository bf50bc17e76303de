"""Notifications: channel plugins (webhook, email, Slack), the dispatcher that delivers the
outbox that services write with :func:`emit` (:mod:`.events`), and the expiry
scan. The built-in channel types register when this package is imported.

The rule of the layers: this domain package owns its values (events, channel configs,
deliveries) and the storage ports it needs (:mod:`.events`); the application service that
manages channels and runs the scan and dispatch is ``certfleet.services.notifications``;
``certfleet.store`` implements the ports and nothing else."""

from __future__ import annotations

from certfleet.lifecycle.notifications._channel import Channel, ChannelContext, DeliveryFailed, Notice
from certfleet.lifecycle.notifications.dispatcher import Dispatcher, DispatchReport, DispatchSettings, backoff
from certfleet.lifecycle.notifications.email import EmailChannel
from certfleet.lifecycle.notifications.expiring import DEFAULT_THRESHOLDS_DAYS, expiring_scan, threshold_for
from certfleet.lifecycle.notifications.registry import ENTRY_POINT_GROUP, available, channel_type, register
from certfleet.lifecycle.notifications.slack import SlackChannel
from certfleet.lifecycle.notifications.webhook import SIGNATURE_HEADER, WebhookChannel, sign

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
