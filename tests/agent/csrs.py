"""CSRs for agent tests, built the way the agent builds them."""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes

from certfleet.agent.enrollment import build_csr


def csr_for(key: CertificateIssuerPrivateKeyTypes, names: Sequence[str] = ("certfleet-agent",)) -> str:
    return build_csr(key, list(names))
