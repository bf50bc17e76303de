"""Creating the CA hierarchy and building the issuing :class:`Authority` from storage."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import NameOID

from certfleet.audit import AuditLog
from certfleet.ca import (
    AGENT_IDENTITY_ROLE,
    BACKDATE,
    LISTENER_ROOT_ROLE,
    SERVER_IDENTITY_ROLE,
    Authority,
    CaCertificate,
    CaUrls,
    build_agent_identity_ca,
    build_intermediate,
    build_root,
    build_server_identity_ca,
    ca_id_for,
    chain_below_root,
    get_profile,
    listener_root_name,
    tls_stack_can_use,
)
from certfleet.ca.keys import KeyBackend
from certfleet.clock import Clock
from certfleet.errors import ConfigurationError, Conflict, InvalidInput
from certfleet.services._hierarchies import default_root, hierarchy_name, issuer_under, root_for_profile
from certfleet.services._ports import UnitOfWorkFactory
from certfleet.x509 import KeyType, describe_public_key, serial_hex

__all__ = ["AuthorityService"]

# The longest leaf the server-identity CA signs (the tls-server profile's default): a CA with
# less left is replaced, so the listener's certificate never has to be cut short.
_SERVER_LEAF_LIFETIME = dt.timedelta(days=90)

# build_intermediate and build_server_identity_ca: (CA name, key, root certificate, root key,
# root id, URLs, now, generation) -> the new CA's certificate.
_BuildUnderRoot = Callable[
    [
        str,
        CertificateIssuerPrivateKeyTypes,
        x509.Certificate,
        CertificateIssuerPrivateKeyTypes,
        str,
        CaUrls,
        dt.datetime,
        int,
    ],
    x509.Certificate,
]


def _record_created(log: AuditLog, actor: str, ca: CaCertificate, key_type: KeyType) -> None:
    details = {
        "name": ca.name,
        "role": ca.role,
        "key_type": key_type.value,
        "not_after": ca.not_after.isoformat(),
    }
    log.record(actor, "ca.created", ca.id, details)


def _issuer_id(cas: list[CaCertificate], root: CaCertificate) -> str | None:
    issuer = issuer_under(cas, root)
    return issuer.id if issuer is not None else None


class AuthorityService:
    def __init__(self, uow: UnitOfWorkFactory, keys: KeyBackend, urls: CaUrls, clock: Clock) -> None:
        self._uow = uow
        self._keys = keys
        self._urls = urls
        self._clock = clock
        self._lock = threading.Lock()
        self._server_lock = threading.Lock()
        self._authority: Authority | None = None
        self._by_root: dict[str, Authority] = {}  # parallel hierarchies' issuers (issue 17)

    def is_initialized(self) -> bool:
        with self._uow(read_only=True) as uow:
            return bool(uow.cas.list())

    def initialize(
        self, ca_name: str, key_type: KeyType, *, actor: str
    ) -> tuple[CaCertificate, CaCertificate]:
        """Create a root and an issuing intermediate. Refuses if a CA already exists."""
        name = ca_name.strip()
        if not name or len(name) > 50:
            raise InvalidInput("CA name must be 1 to 50 characters")
        if self.is_initialized():
            raise Conflict("this data directory already has a CA; refusing to create another")
        return self._new_hierarchy(name, key_type, self._clock.now(), actor=actor, first=True)

    def create_hierarchy(
        self, ca_name: str, key_type: KeyType, *, actor: str
    ) -> tuple[CaCertificate, CaCertificate]:
        """A second (third, ...) hierarchy beside the existing one, with its own root and
        issuing CA: classic and post-quantum chains coexist during a migration (issue 17).
        Profiles choose it by ``ca`` (this name) or ``ca_key_type``; the first hierarchy stays
        the default for everything else."""
        name = ca_name.strip()
        if not name or len(name) > 50:
            raise InvalidInput("CA name must be 1 to 50 characters")
        cas = self.hierarchy()
        if not cas:
            raise ConfigurationError("no CA yet: run 'certfleet init' first")
        roots = [ca for ca in cas if ca.role == "root"]
        if any(hierarchy_name(root).casefold() == name.casefold() for root in roots):
            raise Conflict(f"a CA hierarchy named {name!r} already exists")
        # Each new root starts strictly after the others (X.509 times have one-second
        # resolution), so "the oldest root" names the default hierarchy without a doubt.
        now = self._clock.now().replace(microsecond=0)
        latest = max(root.not_before for root in roots) + BACKDATE
        now = max(now, latest + dt.timedelta(seconds=1))
        return self._new_hierarchy(name, key_type, now, actor=actor, first=False)

    def _new_hierarchy(
        self, name: str, key_type: KeyType, now: dt.datetime, *, actor: str, first: bool
    ) -> tuple[CaCertificate, CaCertificate]:
        prefix = "" if first else f"{len([ca for ca in self.hierarchy() if ca.role == 'root'])}-"
        root_ref = self._keys.create(f"{prefix}root", key_type)
        inter_ref = self._keys.create(f"{prefix}issuing-1", key_type)
        try:
            root_key = self._keys.load(root_ref)
            root_cert = build_root(name, root_key, now)
            root_id = ca_id_for(root_cert)
            inter_key = self._keys.load(inter_ref)
            inter_cert = build_intermediate(name, inter_key, root_cert, root_key, root_id, self._urls, now)
            root = CaCertificate(
                root_id, f"{name} Root CA", "root", None, root_cert, self._keys.name, root_ref, True
            )
            inter = CaCertificate(
                ca_id_for(inter_cert),
                f"{name} Issuing CA 1",
                "intermediate",
                root_id,
                inter_cert,
                self._keys.name,
                inter_ref,
                True,
            )
            with self._uow() as uow:
                if first and uow.cas.list():
                    raise Conflict("this data directory already has a CA; refusing to create another")
                if not first and any(
                    hierarchy_name(ca).casefold() == name.casefold()
                    for ca in uow.cas.list()
                    if ca.role == "root"
                ):
                    raise Conflict(f"a CA hierarchy named {name!r} already exists")
                uow.cas.add(root)
                uow.cas.add(inter)
                log = AuditLog(uow.audit, self._clock)
                for ca in (root, inter):
                    _record_created(log, actor, ca, key_type)
        except BaseException:
            # Nothing was stored: do not leave orphan key files behind.
            for ref in (root_ref, inter_ref):
                delete = getattr(self._keys, "delete", None)
                if delete is not None:
                    delete(ref)
            raise
        return root, inter

    @contextmanager
    def _fresh_key(self, label: str, key_type: KeyType) -> Iterator[str]:
        """A new CA key; deleted again if what uses it fails, so no orphan key file remains."""
        ref = self._keys.create(label, key_type)
        try:
            yield ref
        except BaseException:
            delete = getattr(self._keys, "delete", None)
            if delete is not None:
                delete(ref)
            raise

    def _signed_by_root(
        self, root: CaCertificate, ref: str, build: _BuildUnderRoot, role: str, title: str, generation: int
    ) -> CaCertificate:
        """A CA under ``root`` for the key ``ref``, named after the root's organisation."""
        organization = root.certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
        ca_name = str(organization[0].value) if organization else root.name.removesuffix(" Root CA")
        cert = build(
            ca_name,
            self._keys.load(ref),
            root.certificate,
            self._keys.load(root.key_ref),
            root.id,
            self._urls,
            self._clock.now(),
            generation,
        )
        name = f"{ca_name} {title} {generation}"
        return CaCertificate(ca_id_for(cert), name, role, root.id, cert, self._keys.name, ref, True)

    def hierarchy(self) -> list[CaCertificate]:
        with self._uow(read_only=True) as uow:
            return list(uow.cas.list())

    def root(self) -> CaCertificate:
        """The default hierarchy's root (the first created; see ``create_hierarchy``)."""
        root = default_root(self.hierarchy())
        if root is None:
            raise ConfigurationError("no CA yet: run 'certfleet init' first")
        return root

    def issuing_authority(self) -> Authority:
        """The active intermediate as an :class:`Authority`, built once and cached."""
        with self._lock:
            if self._authority is None:
                self._authority = self._build()
            return self._authority

    def authority_for(self, profile: str) -> Authority:
        """The issuing authority of the hierarchy ``profile`` chooses (``ca``/``ca_key_type``),
        or the default one; built once per hierarchy and cached."""
        chosen = get_profile(profile)
        if chosen.ca is None and chosen.ca_key_type is None:
            # The default hierarchy: no read of the CA table on the issuance hot path.
            return self.issuing_authority()
        root = root_for_profile(self.hierarchy(), chosen)
        if root is None:
            return self.issuing_authority()
        with self._lock:
            if root.id not in self._by_root:
                self._by_root[root.id] = self._build(root)
            return self._by_root[root.id]

    def _build(self, root: CaCertificate | None = None) -> Authority:
        cas = self.hierarchy()
        root = root or default_root(cas)
        issuer = issuer_under(cas, root) if root is not None else None
        if issuer is None:
            raise ConfigurationError("no CA yet: run 'certfleet init' first")
        chain = chain_below_root(cas, issuer.id)
        return Authority(issuer, self._keys.load(issuer.key_ref), chain, self._urls, self._clock)

    # -- CA rotation (issue 6): new methods only; the ones above are unchanged ---------------

    def refresh(self) -> bool:
        """Drop the cached issuing authority when another intermediate took over (a CA
        rotation in this or another process). Returns True when it changed."""
        cas = self.hierarchy()
        root = default_root(cas)
        newest = issuer_under(cas, root) if root is not None else None
        by_id = {ca.id: ca for ca in cas}
        with self._lock:
            stale = [
                root_id
                for root_id, authority in self._by_root.items()
                if root_id not in by_id or _issuer_id(cas, by_id[root_id]) != authority.issuer.id
            ]
            for root_id in stale:
                del self._by_root[root_id]
            if self._authority is None:
                return bool(stale)
            if newest is not None and newest.id == self._authority.issuer.id:
                return False
            self._authority = None
            return True

    def add_intermediate(self, key_type: KeyType | None, *, actor: str) -> tuple[CaCertificate, list[str]]:
        """Create a new issuing intermediate under the active root and switch issuance to it:
        the other intermediates are retired (``active`` false) in the same transaction but keep
        publishing CRLs and OCSP for what they issued. ``key_type`` defaults to the current
        issuing CA's. Returns the new CA and the ids retired."""
        root = self.root()
        # The default hierarchy's intermediates only: a parallel hierarchy keeps its own.
        current = [ca for ca in self.hierarchy() if ca.role == "intermediate" and ca.parent_id == root.id]
        if key_type is None:
            newest = max((ca for ca in current if ca.active), key=lambda ca: ca.not_before, default=None)
            key = (newest or root).certificate.public_key()
            key_type = KeyType.parse(describe_public_key(key).label)
        generation = len(current) + 1
        with self._fresh_key(f"issuing-{generation}", key_type) as ref:
            inter = self._signed_by_root(
                root, ref, build_intermediate, "intermediate", "Issuing CA", generation
            )
            retired = [ca.id for ca in current if ca.active]
            with self._uow() as uow:
                uow.cas.add(inter)
                for ca_id in retired:
                    uow.lifecycle.campaigns.retire_ca(ca_id)
                AuditLog(uow.audit, self._clock).record(
                    actor,
                    "ca.rotated",
                    inter.id,
                    {
                        "name": inter.name,
                        "key_type": key_type.value,
                        "not_after": inter.not_after.isoformat(),
                        "retired": retired,
                    },
                )
        with self._lock:
            self._authority = None
        return inter, retired

    # -- the server-identity CA: the HTTPS listener's own issuer, and nothing else's ----------

    def tls_root(self) -> CaCertificate | None:
        """The root the listener's chain starts from, which agents and ``certfleet login`` pin:
        the default root when the TLS stack can use its key, else the newest active listener
        root (None until :meth:`ensure_tls_root` makes it)."""
        cas = self.hierarchy()
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
        name = hierarchy_name(self.root())
        count = sum(1 for ca in self.hierarchy() if ca.role == LISTENER_ROOT_ROLE)
        with self._fresh_key(f"tls-root-{count + 1}", KeyType.EC_P256) as ref:
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
                _record_created(AuditLog(uow.audit, self._clock), actor, ca, KeyType.EC_P256)
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
                for ca in self.hierarchy()
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
            generation = 1 + sum(1 for ca in self.hierarchy() if ca.role == SERVER_IDENTITY_ROLE)
            with self._fresh_key(f"server-identity-{generation}", key_type) as ref:
                ca = self._signed_by_root(
                    root,
                    ref,
                    build_server_identity_ca,
                    SERVER_IDENTITY_ROLE,
                    "Server Identity CA",
                    generation,
                )
                with self._uow() as uow:
                    uow.cas.add(ca)
                    _record_created(AuditLog(uow.audit, self._clock), actor, ca, key_type)
            return ca

    def server_identity_authority(self) -> Authority:
        """An :class:`Authority` over the server-identity CA (created when due). Only the
        issuance service's ``issue_server_identity`` calls it: no profile, REST, ACME, agent,
        renewal or rotation path can select this CA (they all use :meth:`issuing_authority`,
        which takes only ``intermediate`` CAs)."""
        ca = self.ensure_server_identity_ca(actor="system:serve")
        return Authority(ca, self._keys.load(ca.key_ref), (ca.certificate,), self._urls, self._clock)

    def agent_identity_authority(self) -> Authority | None:
        """None under a classic default root (agents' identities come from the issuing CA, as
        ever); under an ML-DSA one, a clientAuth CA under the listener root (created when due),
        since the agent's OpenSSL cannot present a chain holding an ML-DSA signature."""
        if tls_stack_can_use(self.root().certificate):
            return None
        with self._server_lock:
            ca = self.server_identity_ca(AGENT_IDENTITY_ROLE)
            if ca is None:
                root = self.ensure_tls_root(actor="system:agents")
                generation = 1 + sum(1 for c in self.hierarchy() if c.role == AGENT_IDENTITY_ROLE)
                with self._fresh_key(f"agent-identity-{generation}", KeyType.EC_P256) as ref:
                    ca = self._signed_by_root(
                        root,
                        ref,
                        build_agent_identity_ca,
                        AGENT_IDENTITY_ROLE,
                        "Agent Identity CA",
                        generation,
                    )
                    with self._uow() as uow:
                        uow.cas.add(ca)
                        _record_created(
                            AuditLog(uow.audit, self._clock), "system:agents", ca, KeyType.EC_P256
                        )
        return Authority(ca, self._keys.load(ca.key_ref), (ca.certificate,), self._urls, self._clock)
