"""A rotation campaign moving one of the agent's certificates to another profile and key type
(``certfleet rotate --select 'key_type=rsa-2048' --to-profile internal-mtls-pq``, issue 17),
as the agent acts on it and remembers it.

Which profile and key type a certificate of agent.yaml is renewed with, first match wins:

1. the server's instruction for it names a ``profile`` (and ``key_type``): a campaign waits
   for this agent, so it renews now under that profile with a new key of that type;
2. a migration this agent completed for it (``STATE/certs/NAME/migration.json``, written
   once the new certificate was deployed and verified): it keeps renewing with those, so
   the next ordinary renewal does not switch back to agent.yaml's RSA;
3. agent.yaml's ``profile`` and ``key_type``.

The record notes the profile and key type agent.yaml had when the migration completed. When
agent.yaml names others later, the operator spoke last: the record is dropped (logged) and
agent.yaml wins. An unchanged agent.yaml never silently undoes a migration.

A deployment of the new key type that the endpoint cannot take (nginx on Debian 12's
OpenSSL 3.0 cannot load an ML-DSA certificate: the reload fails, the agent restores the
previous files) is reported as ``endpoint cannot present <key type>: <the service's error
line>``, and the issued certificate is not retried: the campaign records it as that
target's outcome and goes on.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from cryptography import x509

from certfleet.agent.config import CertificateSpec
from certfleet.agent.state import AgentState
from certfleet.fs import write_atomic
from certfleet.x509 import KeyType, describe_public_key

__all__ = ["MIGRATION_FILE", "Migrations", "endpoint_error"]

MIGRATION_FILE = "migration.json"

_log = logging.getLogger("certfleet.agent")


def _key_label(certificate: x509.Certificate) -> str:
    return describe_public_key(certificate.public_key()).label


def endpoint_error(previous: x509.Certificate | None, new: x509.Certificate, error: str) -> str:
    """``error`` (a failed reload or health check) named as the endpoint's limit when the
    new certificate changed the key type: ``endpoint cannot present ml-dsa-65: <line>``,
    where the line is the service's own error (nginx's ``[emerg]`` line) when it gave one."""
    label = _key_label(new)
    if previous is None or _key_label(previous) == label:
        return error
    lines = [line.strip() for line in error.splitlines() if line.strip()]
    named = [line for line in lines if "[emerg]" in line or "error" in line.lower()]
    line = (named or lines or [error])[-1]
    if ": " in line and line.startswith("reload command "):
        line = line.split(": ", 1)[1]  # a one-line output: keep the service's words
    return f"endpoint cannot present {label}: {line}"


class Migrations:
    """The per-certificate records in the agent's state directory."""

    def __init__(self, state: AgentState) -> None:
        self._state = state

    def _file(self, name: str) -> Path:
        return self._state.root / "certs" / name / MIGRATION_FILE

    def _load(self, name: str) -> dict[str, Any] | None:
        try:
            body = json.loads(self._file(name).read_bytes())
        except (OSError, ValueError):
            return None
        return body if isinstance(body, dict) else None

    def effective(self, spec: CertificateSpec, instruction: Mapping[str, Any] | None) -> CertificateSpec:
        """``spec`` with the profile and key type to renew with (see the module's order)."""
        if instruction is not None and isinstance(instruction.get("profile"), str):
            key_type = _parse_key_type(instruction.get("key_type"), spec)
            if key_type is not None:
                return replace(spec, profile=instruction["profile"], key_type=key_type)
        record = self._load(spec.name)
        if record is None:
            return spec
        if record.get("from") != [spec.profile, spec.key_type.value]:
            _log.info(
                "%s: agent.yaml now names %s (%s): it replaces the migration to %s (%s)",
                spec.name,
                spec.profile,
                spec.key_type.value,
                record.get("profile"),
                record.get("key_type"),
            )
            self._file(spec.name).unlink(missing_ok=True)
            return spec
        key_type = _parse_key_type(record.get("key_type"), spec)
        profile = record.get("profile")
        if key_type is None or not isinstance(profile, str):
            return spec
        return replace(spec, profile=profile, key_type=key_type)

    def settle(self, configured: CertificateSpec, used: CertificateSpec, status: str) -> None:
        """After a run of one certificate: a deployment under other than agent.yaml's profile
        and key type is remembered; a failed one is not retried with the same certificate."""
        if (used.profile, used.key_type) == (configured.profile, configured.key_type):
            if status == "deployed":
                self._file(configured.name).unlink(missing_ok=True)
            return
        if status == "deployed":
            record = {
                "profile": used.profile,
                "key_type": used.key_type.value,
                "from": [configured.profile, configured.key_type.value],
            }
            self._file(configured.name).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            write_atomic(self._file(configured.name), json.dumps(record).encode(), mode=0o644)
        elif status in ("rolled_back", "failed"):
            # Its certificate is recorded by the server as the campaign's outcome; retrying
            # it with agent.yaml's key type would issue a stray certificate.
            self._state.clear_pending(configured.name)


def _parse_key_type(value: object, spec: CertificateSpec) -> KeyType | None:
    if value is None:
        return spec.key_type
    try:
        return KeyType(str(value))
    except ValueError:
        _log.warning("%s: the server asks for an unknown key type %r: ignored", spec.name, value)
        return None
