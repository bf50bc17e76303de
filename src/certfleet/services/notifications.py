"""What services need to announce a change: :func:`emit` an :class:`Event` with their own unit
of work, so it commits with the change (the transactional outbox). The model lives in
:mod:`certfleet.lifecycle.notifications.events`; this module is the services' entry to it."""

from __future__ import annotations

from certfleet.lifecycle.notifications.events import Event, EventKind, certificate_event, emit

__all__ = ["Event", "EventKind", "certificate_event", "emit"]
