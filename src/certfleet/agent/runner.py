"""One agent run: for each configured certificate decide whether it needs a new one, obtain
it, deploy it safely, reload the service, verify, roll back on failure, and report.

A failure is an outcome of one certificate, never the end of the run (sslyze's rule): the
other certificates are still handled, and the failed one is retried with backoff.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Collection
from typing import Any

from certfleet.agent._certificate_keeper import CertificateKeeper, Outcome
from certfleet.agent._renewal_window import parse_time, window_reached
from certfleet.agent.client import ServerClient
from certfleet.agent.config import AgentConfig
from certfleet.agent.enrollment import identity_due, renew_identity
from certfleet.agent.errors import DeploymentBusy, ServerUnreachable
from certfleet.agent.state import AgentState
from certfleet.agent.system_trust import SystemTrustStore, TrustStoreUpdateFailed
from certfleet.agent.trust_anchors import TrustAnchors, parse_anchors
from certfleet.agent.trust_stores import TrustStoreReporter
from certfleet.clock import Clock
from certfleet.errors import CertfleetError
from certfleet.x509 import fingerprint_sha256, signed_by

__all__ = ["Outcome", "Runner"]  # Outcome: defined in _certificate_keeper.py

_log = logging.getLogger("certfleet.agent")


class Runner:
    def __init__(
        self,
        config: AgentConfig,
        state: AgentState,
        clock: Clock,
        *,
        client: ServerClient | None = None,
    ) -> None:
        self._config = config
        self._state = state
        self._clock = clock
        self._client = client
        self._keeper = CertificateKeeper(config, state, clock, client)

    # -- the run --------------------------------------------------------------------------

    def run_once(
        self, force: bool | Collection[str] = False, *, renew_identity_now: bool = False
    ) -> list[Outcome]:
        instructions: dict[str, dict[str, Any]] = {}
        if self._client is not None:
            self._flush_outbox()
            try:
                self._maybe_renew_identity(renew_identity_now)
                body = self._client.instructions()
                if self._server_wants_identity(body.get("identity")):
                    self._renew_identity()
                    # Asked with the new identity: the server sees it in use, and may then
                    # refuse the old one (a campaign revokes it once its successor is used).
                    body = self._client.instructions()
                instructions = {i["name"]: i for i in body.get("certificates", [])}
                self._learn_trust_anchors()
                self._report_trust_stores()
            except ServerUnreachable as exc:
                _log.warning("%s; renewing on the local schedule", exc.detail)
        self._sync_system_trust()
        outcomes = []
        for spec in self._config.certificates:
            forced = force is True or (not isinstance(force, bool) and spec.name in force)
            try:
                outcome = self._keeper.run(spec, instructions.get(spec.name), forced)
            except DeploymentBusy as exc:
                outcome = Outcome(spec.name, "busy", exc.detail)
            _log.log(
                logging.WARNING if outcome.failed else logging.INFO,
                "%s: %s%s",
                outcome.name,
                outcome.status,
                f" ({outcome.detail})" if outcome.detail else "",
            )
            outcomes.append(outcome)
        return outcomes

    def _learn_trust_anchors(self) -> None:
        """certfleet's other roots, from the authenticated channel only (see trust_anchors.py);
        refused ones leave the previous anchors in place. Learned with or without ``trust_store:
        system``: they also tell certfleet's certificates (a PQ hierarchy's; recognition.py)."""
        if self._client is None:
            return
        try:
            roots = parse_anchors(self._client.trust_anchors())
        except ServerUnreachable:
            raise
        except CertfleetError as exc:  # an older server (404), a refused list: keep what we have
            _log.warning("trust anchors not updated: %s", exc.detail)
            return
        if TrustAnchors(self._state.root).save(roots):
            _log.info("trust anchors: %s", ", ".join(r.subject.rfc4514_string() for r in roots))

    def _sync_system_trust(self) -> None:
        """``trust_store: system``: certfleet's roots (the pinned one, then the anchors the
        server listed) in the host's store, before any certificate they signed is deployed."""
        if not self._config.trust.system:
            return
        roots = [c for c in self._state.ca_certificates() if signed_by(c, c)]
        roots += [c for c in TrustAnchors(self._state.root).load() if c not in roots]
        try:
            synced = SystemTrustStore(self._config.trust).sync(roots)
        except TrustStoreUpdateFailed as exc:
            _log.error("system trust store not updated: %s", exc.detail)
            return
        if synced.changed:
            _log.info("system trust store: added %s, removed %s", synced.added, synced.removed)

    def _report_trust_stores(self) -> None:
        """The host's trust stores, when asked for and changed since the last report."""
        if self._client is None or not self._config.trust.report:
            return
        reporter = TrustStoreReporter(self._state.root, self._config.trust.root)
        pending = reporter.pending()
        if pending is None:
            return
        body, digest = pending
        try:
            self._client.report_trust_stores(body)
        except ServerUnreachable:
            raise
        except CertfleetError as exc:  # a refused report must not keep certificates from renewing
            _log.warning("trust stores not reported: %s", exc.detail)
            return
        reporter.sent(digest)

    def run_forever(self, stop: threading.Event) -> None:
        """Run, then sleep until the next interval or the next retry due, until ``stop``."""
        while not stop.is_set():
            try:
                self.run_once()
            except CertfleetError as exc:
                _log.error("run failed: %s", exc.detail)
            now = self._clock.now()
            wait = dt.timedelta(seconds=self._config.interval_seconds)
            for spec in self._config.certificates:
                due = self._state.retry(spec.name).next_attempt_at
                if due is not None and due > now:
                    wait = min(wait, due - now)
            stop.wait(max(1.0, wait.total_seconds()))

    def _maybe_renew_identity(self, now_please: bool) -> None:
        if now_please or identity_due(self._state.identity_certificate(), self._clock.now()):
            self._renew_identity()

    def _renew_identity(self) -> None:
        assert self._client is not None
        renew_identity(self._client, self._state)
        self._client.reload_identity()

    def _server_wants_identity(self, instruction: object) -> bool:
        """The server's window for the identity this run presented has come (a CA
        compromise: its campaign moves the window into the past, "renew now")."""
        if not isinstance(instruction, dict):
            return False
        current = fingerprint_sha256(self._state.identity_certificate())
        start, end = parse_time(instruction.get("renew_from")), parse_time(instruction.get("renew_by"))
        if instruction.get("fingerprint_sha256") != current or start is None or end is None:
            return False
        if window_reached(start, end, current, self._clock.now()):
            _log.info("the server asks for a new agent identity (its renewal window has come)")
            return True
        return False

    def _flush_outbox(self) -> None:
        assert self._client is not None
        for path, body in self._state.queued_reports():
            try:
                self._client.report(body)
            except ServerUnreachable:
                return
            except CertfleetError as exc:
                _log.warning("dropping a queued report the server refused: %s", exc.detail)
            path.unlink(missing_ok=True)
