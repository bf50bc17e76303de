"""certfleet's roots beyond the pinned one (a second hierarchy, a root being rolled in), as
the agent learns them: ONLY from ``GET /api/v1/agent/trust-anchors``, which it calls over
the authenticated channel (the handshake verified the server through the server-identity CA
under the pinned root, and the agent presented its identity). The unauthenticated CA bundle
(``/api/v1/agent/ca.pem``) never teaches a root: a second root there is refused whole,
because anyone in the path can serve that bundle (see trust.py).

The anchors are kept in ``STATE/trust-anchors.pem``, apart from ``ca.pem`` and
``server-ca.pem``: they are never used to verify the server, only written to the host's
system store (``trust_store: system``) so that a leaf chaining to a new root is trusted
before the first one is deployed. Each must be a self-signed CA certificate; a list with
anything else is refused whole and the previous anchors are kept.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cryptography import x509

from certfleet.agent.errors import AgentError
from certfleet.errors import CertfleetError
from certfleet.fs import write_atomic
from certfleet.x509 import fingerprint_sha256, is_ca, load_certificates, signed_by, to_pem

__all__ = ["ANCHORS_FILE", "TrustAnchors", "UntrustedAnchor", "parse_anchors"]

ANCHORS_FILE = "trust-anchors.pem"


class UntrustedAnchor(AgentError):
    """The server's list of roots holds something that is not a self-signed CA."""


def _describe(certificate: x509.Certificate) -> str:
    subject = certificate.subject.rfc4514_string() or "(empty subject)"
    return f"{subject} sha256 {fingerprint_sha256(certificate)}"


def check_anchor(certificate: x509.Certificate) -> x509.Certificate:
    """``certificate`` if it is a root: a CA (basicConstraints cA, RFC 5280 4.2.1.9) whose
    own key signed it under its own name; else :class:`UntrustedAnchor` naming it."""
    if not is_ca(certificate):
        raise UntrustedAnchor(
            f"trust anchor {_describe(certificate)} is not a CA certificate (no basicConstraints cA): "
            "refusing the server's trust anchors, the previous ones are kept"
        )
    if certificate.issuer != certificate.subject or not signed_by(certificate, certificate):
        raise UntrustedAnchor(
            f"trust anchor {_describe(certificate)} is not self-signed (issuer "
            f"{certificate.issuer.rfc4514_string()}): refusing the server's trust anchors, "
            "the previous ones are kept"
        )
    return certificate


def parse_anchors(body: Mapping[str, Any]) -> tuple[x509.Certificate, ...]:
    """The roots of a ``GET /api/v1/agent/trust-anchors`` answer, each checked."""
    entries = body.get("roots")
    if not isinstance(entries, list):
        raise UntrustedAnchor("the server's trust anchors answer has no list of roots")
    roots: list[x509.Certificate] = []
    for entry in entries:
        pem = entry.get("certificate_pem") if isinstance(entry, dict) else None
        if not isinstance(pem, str):
            raise UntrustedAnchor("a trust anchor of the server's answer has no certificate_pem")
        try:
            certificates = load_certificates(pem.encode(), source="a trust anchor")
        except CertfleetError as exc:
            raise UntrustedAnchor(f"{exc.detail}: refusing the server's trust anchors") from exc
        for certificate in certificates:
            if certificate not in roots:
                roots.append(check_anchor(certificate))
    return tuple(roots)


class TrustAnchors:
    """``STATE/trust-anchors.pem``."""

    def __init__(self, state_dir: Path) -> None:
        self.file = state_dir / ANCHORS_FILE

    def load(self) -> tuple[x509.Certificate, ...]:
        """The anchors kept, each checked again (a file edited by hand is not trusted blindly)."""
        try:
            certificates = load_certificates(self.file.read_bytes())
        except (OSError, CertfleetError):
            return ()
        return tuple(c for c in certificates if is_ca(c) and signed_by(c, c))

    def save(self, roots: Sequence[x509.Certificate]) -> bool:
        """Keep ``roots``; True when they differ from the ones kept."""
        if tuple(roots) == self.load():
            return False
        write_atomic(self.file, to_pem(list(roots)).encode(), mode=0o644)
        return True
