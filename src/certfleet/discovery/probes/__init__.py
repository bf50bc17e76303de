"""Probes: one module per protocol question, each bounded in time and bytes."""

from __future__ import annotations

from certfleet.discovery.probes.http import check_redirect, fetch_hsts, parse_hsts_max_age
from certfleet.discovery.probes.tls import ProbeFailure, client_context, probe_tls

__all__ = [
    "ProbeFailure",
    "check_redirect",
    "client_context",
    "fetch_hsts",
    "parse_hsts_max_age",
    "probe_tls",
]
