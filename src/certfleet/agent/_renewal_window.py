"""When the agent renews: the ARI window the server sends (RFC 9773) and the names a
certificate carries, compared with what the configuration asks for."""

from __future__ import annotations

import datetime as dt

from cryptography import x509

from certfleet.x509.names import names_from_extension

__all__ = ["certificate_sans", "parse_time", "window_reached"]


def certificate_sans(cert: x509.Certificate) -> set[str]:
    try:
        return set(
            names_from_extension(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
        )
    except x509.ExtensionNotFound:
        return set()


def _point_in(start: dt.datetime, end: dt.datetime, fingerprint: str) -> dt.datetime:
    """A point of the window that is random per certificate but stable across restarts
    (RFC 9773 section 4.2 asks clients to spread renewals over the window)."""
    return start + (end - start) * (int(fingerprint[:8], 16) / 2**32)


def window_reached(start: dt.datetime, end: dt.datetime, fingerprint: str, now: dt.datetime) -> bool:
    """Whether to renew now: a window that has ended means "renew now" (RFC 9773 section 4.2;
    a campaign after a CA compromise moves the window into the past), else the certificate's
    point inside it has come."""
    return end <= now or now >= _point_in(start, end, fingerprint)


def parse_time(value: object) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
