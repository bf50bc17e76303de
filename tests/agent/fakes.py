"""A hand-written fake of the certfleet server as the agent's runner sees it."""

from __future__ import annotations

import datetime as dt
from typing import Any

from certfleet.agent.enrollment import build_csr
from certfleet.agent.errors import ServerUnreachable
from certfleet.agent.state import AgentState
from certfleet.x509 import KeyType, generate_private_key, to_pem
from tests.agent.material import ThrowawayCa, sign_csr


class FakeServer:
    """Issues from a throwaway CA, records reports, serves instructions; ``down`` makes every
    call fail as an unreachable server does."""

    def __init__(self, ca: ThrowawayCa) -> None:
        self.ca = ca
        self.issued: list[tuple[str, str]] = []
        self.reports: list[dict[str, Any]] = []
        self.windows: dict[str, tuple[str, dt.datetime, dt.datetime]] = {}
        self.down = False
        self.lifetime = dt.timedelta(days=90)
        self.identity_reloads = 0

    def _check(self) -> None:
        if self.down:
            raise ServerUnreachable("cannot reach the certfleet server (fake): connection refused")

    def issue(self, name: str, csr_pem: str, profile: str, validity_days: int | None) -> dict[str, Any]:
        self._check()
        self.issued.append((name, csr_pem))
        cert = sign_csr(self.ca, csr_pem, self.lifetime)
        return {"fullchain_pem": to_pem([cert, self.ca.certificate])}

    def report(self, body: dict[str, Any]) -> dict[str, Any]:
        self._check()
        self.reports.append(body)
        return {}

    def instructions(self) -> dict[str, Any]:
        self._check()
        return {
            "certificates": [
                {
                    "name": n,
                    "fingerprint_sha256": fp,
                    "renew_from": start.isoformat(),
                    "renew_by": end.isoformat(),
                }
                for n, (fp, start, end) in self.windows.items()
            ]
        }

    def trust_anchors(self) -> dict[str, Any]:
        self._check()
        return {"roots": [{"certificate_pem": to_pem([self.ca.certificate])}]}

    def report_trust_stores(self, body: dict[str, Any]) -> dict[str, Any]:
        self._check()
        return {}

    def renew_identity(self, csr_pem: str) -> dict[str, Any]:
        self._check()
        cert = sign_csr(self.ca, csr_pem, dt.timedelta(days=30))
        return {"certificate_pem": to_pem([cert]), "chain_pem": ""}

    def reload_identity(self) -> None:
        self.identity_reloads += 1

    def close(self) -> None:
        pass


def enrolled_state(
    state: AgentState, ca: ThrowawayCa, lifetime: dt.timedelta = dt.timedelta(days=30)
) -> None:
    """State as after an enrolment with the fake server."""
    state.ensure()
    state.save_ca([ca.certificate])
    key = generate_private_key(KeyType.EC_P256)
    cert = sign_csr(ca, build_csr(key, ["certfleet-agent"]), lifetime)
    state.save_identity(key, [cert])
