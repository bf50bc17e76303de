"""Creating the CA hierarchy, building the issuing :class:`Authority` from storage, and
rotating the issuing intermediate. The HTTPS listener's own CAs are
:mod:`certfleet.services._listener_cas`'s, reached through the same service."""

from __future__ import annotations

import datetime as dt
import threading

from certfleet.audit import AuditLog
from certfleet.ca import (
    BACKDATE,
    SERVER_IDENTITY_ROLE,
    Authority,
    CaCertificate,
    CaUrls,
    build_intermediate,
    build_root,
    ca_id_for,
    chain_below_root,
    get_profile,
)
from certfleet.ca.keys import KeyBackend
from certfleet.clock import Clock
from certfleet.errors import ConfigurationError, Conflict, InvalidInput
from certfleet.services._ca_minting import CaMinter, record_created
from certfleet.services._hierarchies import default_root, hierarchy_name, issuer_under, root_for_profile
from certfleet.services._listener_cas import ListenerCas
from certfleet.services._ports import UnitOfWorkFactory
from certfleet.x509 import KeyType, describe_public_key

__all__ = ["AuthorityService"]


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
        self._authority: Authority | None = None
        self._by_root: dict[str, Authority] = {}  # parallel hierarchies' issuers (issue 17)
        self._mint = CaMinter(keys, urls, clock)
        self._listener = ListenerCas(uow, keys, urls, clock, hierarchy=self.hierarchy, root=self.root)

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
                    record_created(log, actor, ca, key_type)
        except BaseException:
            # Nothing was stored: do not leave orphan key files behind.
            for ref in (root_ref, inter_ref):
                delete = getattr(self._keys, "delete", None)
                if delete is not None:
                    delete(ref)
            raise
        return root, inter

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
        with self._mint.fresh_key(f"issuing-{generation}", key_type) as ref:
            inter = self._mint.signed_by_root(
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

    # -- the HTTPS listener's own CAs (_listener_cas.py): never a profile's issuer -------------

    def tls_root(self) -> CaCertificate | None:
        """See :meth:`ListenerCas.tls_root`."""
        return self._listener.tls_root()

    def ensure_tls_root(self, *, actor: str) -> CaCertificate:
        """See :meth:`ListenerCas.ensure_tls_root`."""
        return self._listener.ensure_tls_root(actor=actor)

    def server_identity_ca(self, role: str = SERVER_IDENTITY_ROLE) -> CaCertificate | None:
        """See :meth:`ListenerCas.server_identity_ca`."""
        return self._listener.server_identity_ca(role)

    def ensure_server_identity_ca(self, *, actor: str) -> CaCertificate:
        """See :meth:`ListenerCas.ensure_server_identity_ca`."""
        return self._listener.ensure_server_identity_ca(actor=actor)

    def server_identity_authority(self) -> Authority:
        """See :meth:`ListenerCas.server_identity_authority`."""
        return self._listener.server_identity_authority()

    def agent_identity_authority(self) -> Authority | None:
        """See :meth:`ListenerCas.agent_identity_authority`."""
        return self._listener.agent_identity_authority()
