"""The endpoint label of an ACME request. The ACME app (``certfleet.api.acme``) and the
plain-HTTP listener (OCSP) count and time their own requests into :class:`RequestMetrics`:
both are bare ASGI callables, so no middleware stands in front of them."""

from __future__ import annotations

from certfleet.metrics._counters import RequestMetrics

__all__ = ["RequestMetrics", "acme_endpoint"]

# RFC 8555 resources by their first path segment below /acme; anything else is "other", so
# a scanner probing random paths cannot blow up the label set.
_ACME_ENDPOINTS = frozenset(
    {
        "directory",
        "new-nonce",
        "new-account",
        "new-order",
        "acct",
        "order",
        "authz",
        "chall",
        "cert",
        "revoke-cert",
        "key-change",
        "renewal-info",
        "terms",
    }
)


def acme_endpoint(path: str) -> str:
    """The ``endpoint`` label of ``certfleet_acme_requests_total`` for a path below
    ``/acme/``: the resource (``finalize`` and ``orders`` apart from ``order`` and ``acct``)."""
    parts = path.split("/")
    endpoint = parts[2] if len(parts) > 2 and parts[2] in _ACME_ENDPOINTS else "other"
    if endpoint == "order" and parts[-1] == "finalize":
        return "finalize"
    if endpoint == "acct" and parts[-1] == "orders":
        return "orders"
    return endpoint
