"""One certificate of an agent run (:mod:`certfleet.agent.runner` holds the run itself): decide
whether it needs a new one, obtain it, deploy it, reload the service, verify, roll back on
failure, and report the deployment to the server.

A failure is this certificate's :class:`Outcome`, never the end of the run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes

from certfleet import __version__
from certfleet.agent._renewal_window import certificate_sans, parse_time, window_reached
from certfleet.agent.acme_issuer import AcmeObtainer
from certfleet.agent.client import ServerClient
from certfleet.agent.config import AgentConfig, CertificateSpec
from certfleet.agent.deploy import Switch, VersionStore
from certfleet.agent.enrollment import build_csr
from certfleet.agent.errors import (
    HealthCheckFailed,
    NotEnrolled,
    ReloadFailed,
    ServerUnreachable,
    WriteFailed,
)
from certfleet.agent.health import wait_for_certificate
from certfleet.agent.migration import Migrations, endpoint_error
from certfleet.agent.recognition import issued_by_certfleet
from certfleet.agent.reload import run_reload
from certfleet.agent.state import AgentState, RetryState
from certfleet.agent.targets import Material, render_all
from certfleet.agent.trust_anchors import TrustAnchors
from certfleet.clock import Clock, iso
from certfleet.errors import CertfleetError
from certfleet.x509 import (
    describe_public_key,
    fingerprint_sha256,
    generate_private_key,
    load_certificates,
)

__all__ = ["CertificateKeeper", "Outcome"]

_log = logging.getLogger("certfleet.agent")


@dataclass(frozen=True)
class Outcome:
    """``status``: deployed, unchanged, rolled_back, failed, busy or waiting."""

    name: str
    status: str
    detail: str = ""
    fingerprint: str | None = None

    @property
    def failed(self) -> bool:
        return self.status in ("failed", "rolled_back")


class CertificateKeeper:
    """Keeps each configured certificate current and deployed; one :meth:`run` per certificate
    and agent run, under that certificate's lock."""

    def __init__(
        self, config: AgentConfig, state: AgentState, clock: Clock, client: ServerClient | None
    ) -> None:
        self._config = config
        self._state = state
        self._clock = clock
        self._client = client
        self._migrations = Migrations(state)

    def run(self, spec: CertificateSpec, instruction: dict[str, Any] | None, forced: bool) -> Outcome:
        configured, spec = spec, self._migrations.effective(spec, instruction)  # migration.py
        with self._state.lock(spec.name):
            now = self._clock.now()
            store = VersionStore(spec, self._config.allowed_dirs, now)
            retry = self._state.retry(spec.name)
            try:
                self._recover(spec, store)
                if not forced and retry.next_attempt_at is not None and now < retry.next_attempt_at:
                    return Outcome(
                        spec.name,
                        "waiting",
                        f"next attempt at {iso(retry.next_attempt_at)}: {retry.last_error}",
                    )
                outcome = self._converge(spec, store, instruction, forced)
            except CertfleetError as exc:
                outcome = Outcome(spec.name, "failed", exc.detail)
            self._migrations.settle(configured, spec, outcome.status)
            if outcome.failed:
                self._state.save_retry(spec.name, retry.after_failure(now, outcome.detail))
            elif outcome.status == "deployed" or retry.failures:
                self._state.save_retry(spec.name, RetryState())
            return outcome

    def _recover(self, spec: CertificateSpec, store: VersionStore) -> None:
        """Finish a switch a killed run left unverified: verify it, or roll it back."""
        switch = store.pending()
        if switch is None:
            store.prune()
            return
        material = store.material(switch.version)
        _log.warning("%s: verifying the deployment an interrupted run left behind", spec.name)
        error = self._verify(spec, material) if material is not None else "its files are unreadable"
        if error is None and material is not None:
            store.finish()
            self._state.clear_pending(spec.name)
            self._report(spec, material.fullchain_pem, "deployed", "completed after an interrupted run")
            return
        self._roll_back(spec, store, switch, material, error or "")

    def _reason(
        self,
        spec: CertificateSpec,
        deployed: Material | None,
        instruction: dict[str, Any] | None,
        forced: bool,
    ) -> str | None:
        if deployed is None:
            return "not deployed yet"
        if forced:
            return "renewal forced"
        pending = self._state.pending_chain(spec.name)
        if (
            pending
            and pending[0] != deployed.certificate
            and pending[0].not_valid_after_utc > self._clock.now()
        ):
            return "retrying a deployment that failed"
        cert = deployed.certificate
        now = self._clock.now()
        if certificate_sans(cert) != set(spec.names):
            return "names changed"
        if describe_public_key(cert.public_key()).label != spec.key_type.value:
            return "key type changed"
        known = [*self._state.ca_certificates(), *TrustAnchors(self._state.root).load()]
        if spec.acme is None and not issued_by_certfleet(deployed.certificate, deployed.chain, known):
            return "not issued by certfleet"
        if cert.not_valid_after_utc <= now:
            return "expired"
        start = end = None
        source = "local schedule"
        if instruction is not None and instruction.get("fingerprint_sha256") == deployed.fingerprint:
            start, end = parse_time(instruction.get("renew_from")), parse_time(instruction.get("renew_by"))
            source = "server schedule"
        if start is None or end is None:
            lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
            start = cert.not_valid_after_utc - lifetime / 3
            end = start + lifetime / 6
        if window_reached(start, end, deployed.fingerprint, now):
            return f"renewal window reached ({source})"
        return None

    def _converge(
        self, spec: CertificateSpec, store: VersionStore, instruction: dict[str, Any] | None, forced: bool
    ) -> Outcome:
        deployed = store.material()
        reason = self._reason(spec, deployed, instruction, forced)
        if reason is None:
            assert deployed is not None
            if store.targets_linked():
                return Outcome(spec.name, "unchanged", fingerprint=deployed.fingerprint)
            reason, material = "targets changed", deployed
        else:
            material = self._obtain(spec, deployed)
        return self._deploy(spec, store, material, reason)

    def _obtain(self, spec: CertificateSpec, deployed: Material | None) -> Material:
        """A new key and certificate; after a failed deployment, the ones issued then (the
        server never issues twice for one renewal, and a retry needs no new certificate)."""
        key = self._state.pending_key(spec.name)
        if key is None or describe_public_key(key.public_key()).label != spec.key_type.value:
            key = generate_private_key(spec.key_type)
            self._state.save_pending_key(spec.name, key)  # before asking: a retry resends this key
        chain = self._state.pending_chain(spec.name)
        now = self._clock.now()
        if (
            chain
            and chain[0].public_key() == key.public_key()
            and certificate_sans(chain[0]) == set(spec.names)
            and chain[0].not_valid_after_utc > now
            and (deployed is None or deployed.certificate != chain[0])
        ):
            return Material(key, chain[0], tuple(chain[1:]))
        material = self._issue(spec, key)  # type: ignore[arg-type]
        self._state.save_pending_chain(spec.name, [material.certificate, *material.chain])
        return material

    def _issue(self, spec: CertificateSpec, key: CertificateIssuerPrivateKeyTypes) -> Material:
        if spec.acme is not None:
            account_dir = self._state.acme_account_dir(spec.acme.directory)
            return AcmeObtainer(spec.acme, account_dir, f"certfleet-agent/{__version__}").obtain(
                spec.names, key
            )
        if self._client is None:
            raise NotEnrolled(f"{spec.name} is issued by certfleet, but this host is not enrolled")
        response = self._client.issue(spec.name, build_csr(key, spec.names), spec.profile, spec.validity_days)
        certs = load_certificates(response["fullchain_pem"].encode(), source="the issued certificate")
        return Material(key, certs[0], tuple(certs[1:]))

    def _deploy(self, spec: CertificateSpec, store: VersionStore, material: Material, reason: str) -> Outcome:
        try:
            switch = store.deploy(render_all(spec, material), material.fingerprint[:12])
        except WriteFailed as exc:
            self._report(spec, material.fullchain_pem, "failed", exc.detail)
            raise
        error = self._verify(spec, material)
        if error is None:
            store.finish()
            self._state.clear_pending(spec.name)
            self._report(spec, material.fullchain_pem, "deployed", reason)
            return Outcome(spec.name, "deployed", reason, material.fingerprint)
        previous = store.leaf(switch.previous) if switch.previous else None
        error = endpoint_error(previous, material.certificate, error)  # ML-DSA on OpenSSL 3.0
        return self._roll_back(spec, store, switch, material, error)

    def _verify(self, spec: CertificateSpec, material: Material) -> str | None:
        """Reload the service and check it serves ``material``; the error, or None."""
        try:
            if spec.reload is not None:
                run_reload(spec.reload, spec.reload_timeout_seconds)
            if spec.health_check is not None:
                wait_for_certificate(spec.health_check, material.fingerprint)
        except (ReloadFailed, HealthCheckFailed) as exc:
            return exc.detail
        return None

    def _roll_back(
        self,
        spec: CertificateSpec,
        store: VersionStore,
        switch: Switch,
        material: Material | None,
        error: str,
    ) -> Outcome:
        """Restore the previous files and reload again; report the failure either way."""
        new_pem = material.fullchain_pem if material is not None else b""
        if not store.rollback(switch):
            store.finish()
            detail = f"{error}; there were no previous files to restore"
            if new_pem:
                self._report(spec, new_pem, "failed", detail)
            return Outcome(spec.name, "failed", detail)
        assert switch.previous is not None
        old = store.leaf(switch.previous)
        detail = f"{error}; previous files restored"
        try:
            if spec.reload is not None:
                run_reload(spec.reload, spec.reload_timeout_seconds)
            if spec.health_check is not None and old is not None:
                wait_for_certificate(spec.health_check, fingerprint_sha256(old))
                detail += " and serving again"
        except (ReloadFailed, HealthCheckFailed) as exc:
            detail += f", but: {exc.detail}"
        store.finish()
        if new_pem:
            self._report(spec, new_pem, "rolled_back", detail)
        return Outcome(spec.name, "rolled_back", detail, material.fingerprint if material else None)

    def _report(self, spec: CertificateSpec, fullchain_pem: bytes, status: str, detail: str) -> None:
        body: dict[str, Any] = {
            "name": spec.name,
            "status": status,
            "certificate_pem": fullchain_pem.decode(),
            "files": {t.kind: str(t.path) for t in spec.files},
            "issuer": spec.issuer,
            "detail": detail[:2000],
        }
        if spec.health_check is not None:
            body["endpoint"] = spec.health_check.endpoint
            body["sni"] = spec.health_check.sni
        if self._client is None:
            return
        try:
            self._client.report(body)
        except ServerUnreachable:
            self._state.queue_report(body)  # sent with the next run that reaches the server
        except CertfleetError as exc:
            _log.warning("%s: the server did not take the deployment report: %s", spec.name, exc.detail)
