"""Human wording of events, shared by the email and chat channels (the webhook sends the
structured document itself)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["email_text", "summary"]


def _names(payload: Mapping[str, Any]) -> str:
    cert = payload.get("certificate") or {}
    names = cert.get("sans") or ([cert["common_name"]] if cert.get("common_name") else [])
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    return shown or str(cert.get("subject") or payload.get("subject", ""))


def _cert(payload: Mapping[str, Any]) -> str:
    cert = payload.get("certificate") or {}
    return f"{_names(payload)} (serial {cert.get('serial', payload.get('subject'))})"


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _details(payload: Mapping[str, Any]) -> Mapping[str, Any]:
    return _mapping(payload.get("details"))


def _expiring(p: Mapping[str, Any]) -> str:
    d = _details(p)
    cert = p.get("certificate") or {}
    return f"Certificate {_cert(p)} expires in {d.get('days_left', '?')} days, at {cert.get('not_after')}"


def _violation(p: Mapping[str, Any]) -> str:
    d = _details(p)
    rule = _mapping(d.get("rule"))
    verb = "refused a request" if d.get("refused") else "was broken"
    request = _mapping(d.get("request"))
    names = ", ".join(request.get("names", [])) if request else _names(p)
    return f"Policy rule {p.get('subject')!r} {verb} for {names}: {rule.get('reason', '')}".rstrip(": ")


def _digest(p: Mapping[str, Any]) -> str:
    d = _details(p)
    return f"{len(d.get('items', []))} certificates are expiring (daily digest of {d.get('day')})"


_SUMMARIES: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "issued": lambda p: (
        f"Issued certificate {_cert(p)}, valid until {(p.get('certificate') or {}).get('not_after')}"
    ),
    "renewed": lambda p: f"Renewed certificate {_cert(p)}",
    "renewal-failed": lambda p: (
        f"Renewal failed for {_cert(p)}: {_details(p).get('reason', 'unknown reason')}"
    ),
    "revoked": lambda p: f"Revoked certificate {_cert(p)}: {_details(p).get('reason', 'unspecified')}",
    "expiring": _expiring,
    "policy-violation": _violation,
    "discovered-unknown": lambda p: f"Unknown certificate found: {_cert(p)}",
    "rotation-progress": lambda p: (
        f"Rotation campaign {p.get('subject')}: {_details(p).get('status', 'progress')}"
    ),
    "rotation-overdue": lambda p: (
        f"Certificate {_cert(p)}"
        + (f" on host {_details(p)['host']}" if _details(p).get("host") else "")
        + f" was revoked: campaign {_details(p).get('campaign')} reached its deadline before it was"
        " replaced"
    ),
    "digest": _digest,
    "test": lambda p: "Test notification from certfleet: this channel works",
}


def summary(payload: Mapping[str, Any]) -> str:
    """One line: what happened, to which certificate."""
    kind = str(payload.get("event", ""))
    render = _SUMMARIES.get(kind)
    return render(payload) if render else f"{kind}: {payload.get('subject', '')}"


def _location_lines(payload: Mapping[str, Any]) -> list[str]:
    lines = []
    for loc in payload.get("locations") or []:
        sni = f" (SNI {loc['sni']})" if loc.get("sni") else ""
        lines.append(f"  - {loc.get('kind')}: {loc.get('location')}{sni}")
    return lines


def email_text(payload: Mapping[str, Any]) -> tuple[str, str]:
    """Subject and plain-text body."""
    line = summary(payload)
    body = [line, ""]
    if payload.get("team"):
        body.append(f"Team: {payload['team']}")
    body.append(f"Event: {payload.get('event')} at {payload.get('occurred_at')}")
    locations = _location_lines(payload)
    if locations:
        body += ["Seen at:", *locations]
    if str(payload.get("event")) == "digest":
        for item in _details(payload).get("items", []):
            body.append(f"  - {summary(item)}")
    body += ["", "Details (JSON):", json.dumps(payload, indent=2, sort_keys=True)]
    return f"[certfleet] {line}"[:200], "\n".join(body) + "\n"
