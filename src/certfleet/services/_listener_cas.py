"""The HTTPS listener's own CAs: the server-identity CA (its issuer, and nothing else's) and,
under an ML-DSA default root, the EC P-256 listener root it chains to and the agent-identity
CA, since the TLS stack (and the agent's OpenSSL) cannot use an ML-DSA chain. None of them
issues for a profile: :class:`certfleet.services.AuthorityService` builds the issuing
authorities, and hands these out through the same methods."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable

from certfleet.audit import AuditLog
from certfleet.ca import (
    AGENT_IDENTITY_ROLE,
    LISTENER_ROOT_ROLE,
    SERVER_IDENTITY_ROLE,
    Authority,
    CaCertificate,
    CaUrls,
    build_agent_identity_ca,
    build_root,
    build_server_identity_ca,
    ca_id_for,
    listener_root_name,
    tls_stack_can_use,
)
from certfleet.ca.keys import KeyBackend
from certfleet.clock import Clock
from certfleet.errors import ConfigurationError
from certfleet.services._ca_minting import BuildUnderRoot, CaMinter, record_created
from certfleet.services._hierarchies import default_root, hierarchy_name
from certfleet.services._ports import UnitOfWorkFactory
from certfleet.x509 import KeyType, describe_public_key, serial_hex

__all__ = ["ListenerCas"]

# The longest leaf the server-identity CA signs (the tls-server profile's default): a CA with
# less left is replaced, so the listener's certificate never has to be cut short.
_SERVER_LEAF_LIFETIME = dt.timedelta(days=90)

# Each role's key label (server-identity-1, ...) and CA name ("<hierarchy> Server Identity CA 1").
_NAMES = {
    SERVER_IDENTITY_ROLE: ("server-identity", "Server Identity CA"),
    AGENT_IDENTITY_ROLE: ("agent-identity", "Agent Identity CA"),
}


class ListenerCas:
    """``hierarchy`` and ``root`` are the :class:`AuthorityService`'s: every CA, and the
    default hierarchy's root."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        keys: KeyBackend,
        urls: CaUrls,
        clock: Clock,
        *,
        hierarchy: Callable[[], list[CaCertificate]],
        root: Callable[[], CaCertificate],
    ) -> None:
        self._uow = uow
        self._keys = keys
        self._urls = urls
        self._clock = clock
        self._hierarchy = hierarchy
        self._root = root
        self._mint = CaMinter(keys, urls, clock)
        self._server_lock = threading.Lock()

    def tls_root(self) -> CaCertificate | None:
        """The root the listener's chain starts from, which agents and ``certfleet login`` pin:
        the default root when the TLS stack can use its key, else the newest active listener
        root (None until :meth:`ensure_tls_root` makes it)."""
        cas = self._hierarchy()
        root = default_root(cas)
        if root is None:
            raise ConfigurationError("no CA yet: run 'certfleet init' first")
        if tls_stack_can_use(root.certificate):
            return root
        listeners = (ca for ca in cas if ca.role == LISTENER_ROOT_ROLE and ca.active)
        return max(listeners, key=lambda ca: ca.not_before, default=None)

    def ensure_tls_root(self, *, actor: str) -> CaCertificate:
        """:meth:`tls_root`, creating the EC P-256 listener root when the default root is
        ML-DSA and there is none yet (``init``, or the first ``serve`` of an older directory).
        A classic default hierarchy never gets one."""
        current = self.tls_root()
        if current is not None:
            return current
        name = hierarchy_name(self._root())
        count = sum(1 for ca in self._hierarchy() if ca.role == LISTENER_ROOT_ROLE)
        with self._mint.fresh_key(f"tls-root-{count + 1}", KeyType.EC_P256) as ref:
            cert = build_root(listener_root_name(name), self._keys.load(ref), self._clock.now())
            ca = CaCertificate(
                ca_id_for(cert),
                f"{name} TLS Root CA",
                LISTENER_ROOT_ROLE,
                None,
                cert,
                self._keys.name,
                ref,
                True,
            )
            with self._uow() as uow:
                uow.cas.add(ca)
                record_created(AuditLog(uow.audit, self._clock), actor, ca, KeyType.EC_P256)
        return ca

    def server_identity_ca(self, role: str = SERVER_IDENTITY_ROLE) -> CaCertificate | None:
        """The server-identity CA (or agent-identity CA, ``role``) to sign the next certificate
        with: the newest active one that is not revoked and outlives a leaf, or None when a new
        one is due."""
        now = self._clock.now()
        root = self.tls_root()
        if root is None:
            return None
        candidates = sorted(
            (
                ca
                for ca in self._hierarchy()
                # Under the pinned root only: one an ML-DSA root signed (a failed start before
                # the listener root existed) is one the TLS stack cannot load.
                if ca.role == role and ca.active and ca.parent_id == root.id
            ),
            key=lambda ca: ca.not_before,
            reverse=True,
        )
        for ca in candidates:
            # Near the root's end no new one could last longer: keep the current one.
            lasting = ca.not_after - now > _SERVER_LEAF_LIFETIME or ca.not_after >= root.not_after
            if lasting and ca.not_before <= now and not self._revoked(ca):
                return ca
        return None

    def _revoked(self, ca: CaCertificate) -> bool:
        with self._uow(read_only=True) as uow:
            status = uow.revocations.serial_status(serial_hex(ca.certificate.serial_number))
        return status is not None and status.revocation is not None

    def ensure_server_identity_ca(self, *, actor: str) -> CaCertificate:
        """The server-identity CA, created under the active root when there is none yet (a
        data directory from before this CA existed upgrades on its next ``serve``), when the
        current one nears its end, or when it was revoked (``ca compromise``)."""
        with self._server_lock:
            current = self.server_identity_ca()
            if current is not None:
                return current
            root = self.ensure_tls_root(actor=actor)
            key_type = KeyType.parse(describe_public_key(root.certificate.public_key()).label)
            return self._new_ca(root, key_type, build_server_identity_ca, SERVER_IDENTITY_ROLE, actor=actor)

    def server_identity_authority(self) -> Authority:
        """An :class:`Authority` over the server-identity CA (created when due). Only the
        issuance service's ``issue_server_identity`` calls it: no profile, REST, ACME, agent,
        renewal or rotation path can select this CA (they all use the service's
        ``issuing_authority``, which takes only ``intermediate`` CAs)."""
        ca = self.ensure_server_identity_ca(actor="system:serve")
        return Authority(ca, self._keys.load(ca.key_ref), (ca.certificate,), self._urls, self._clock)

    def agent_identity_authority(self) -> Authority | None:
        """None under a classic default root (agents' identities come from the issuing CA, as
        ever); under an ML-DSA one, a clientAuth CA under the listener root (created when due),
        since the agent's OpenSSL cannot present a chain holding an ML-DSA signature."""
        if tls_stack_can_use(self._root().certificate):
            return None
        with self._server_lock:
            ca = self.server_identity_ca(AGENT_IDENTITY_ROLE)
            if ca is None:
                root = self.ensure_tls_root(actor="system:agents")
                ca = self._new_ca(
                    root, KeyType.EC_P256, build_agent_identity_ca, AGENT_IDENTITY_ROLE, actor="system:agents"
                )
        return Authority(ca, self._keys.load(ca.key_ref), (ca.certificate,), self._urls, self._clock)

    def _new_ca(
        self, root: CaCertificate, key_type: KeyType, build: BuildUnderRoot, role: str, *, actor: str
    ) -> CaCertificate:
        """The next server- or agent-identity CA under ``root``, stored with its audit entry."""
        generation = 1 + sum(1 for ca in self._hierarchy() if ca.role == role)
        label, title = _NAMES[role]
        with self._mint.fresh_key(f"{label}-{generation}", key_type) as ref:
            ca = self._mint.signed_by_root(root, ref, build, role, title, generation)
            with self._uow() as uow:
                uow.cas.add(ca)
                record_created(AuditLog(uow.audit, self._clock), actor, ca, key_type)
        return ca
