"""SPIFFE on the server: ``spiffe init`` (trust domain, the SPIFFE CA, the first JWT key),
what an agent fetches (its entries, X509-SVIDs for the keys it made, JWT-SVIDs, the bundle),
the public trust bundle and OIDC discovery, and revoking an entry's SVIDs.

X509-SVIDs go through the one issuance service (policy engine, blocked keys, serial before
signature, audit), in an instance whose authority is the SPIFFE CA and whose ledger keeps the
inventory at one record per entry (``certfleet.store._spiffe_ledger``).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID

from certfleet.agents import Agent
from certfleet.audit import AuditLog
from certfleet.ca import (
    SPIFFE_ROLE,
    Authority,
    CaCertificate,
    CaUrls,
    IssuanceRequest,
    build_spiffe_ca,
    ca_id_for,
)
from certfleet.ca.keys import KeyBackend
from certfleet.clock import Clock
from certfleet.errors import ConfigurationError, Conflict, Forbidden, InvalidInput, NotFound
from certfleet.services.authorities import AuthorityService
from certfleet.services.issuance import IssuanceService
from certfleet.services.spiffe_entries import SpiffeRegistry
from certfleet.services.spiffe_keys import MAX_JWT_TTL, JwtKeySet
from certfleet.services.spiffe_ports import SpiffeUnitOfWorkFactory
from certfleet.spiffe import (
    DEFAULT_JWT_TTL,
    JwtSvidClaims,
    RegistrationEntry,
    SpiffeId,
    TrustDomain,
    agent_spiffe_id,
    jwt_jwks,
    sign_jwt_svid,
    spiffe_bundle,
)
from certfleet.x509 import KeyType, csr_public_key, describe_public_key, load_csr, to_pem

__all__ = ["MAX_SVID_REQUESTS", "REFRESH_HINT_SECONDS", "IssuedSvid", "JwtSvid", "SpiffeService"]

MAX_SVID_REQUESTS = 500
# How often agents and federated trust domains should refetch the bundle (spiffe_refresh_hint):
# well inside the JWT keys' publish-ahead hour.
REFRESH_HINT_SECONDS = 300
_MAX_AUDIENCES = 10
_PARALLEL_SIGNING = 64  # concurrent requests share issuance's group-committed transactions

RevokeSerial = Callable[[str, str, str], object]  # serial, reason, actor


@dataclass(frozen=True)
class IssuedSvid:
    entry_id: str
    spiffe_id: str
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "entry_id": self.entry_id,
            "spiffe_id": self.spiffe_id,
            "certificate": to_pem([self.certificate]),
            "chain": to_pem(self.chain),
            "expires_at": self.certificate.not_valid_after_utc.isoformat().replace("+00:00", "Z"),
        }


@dataclass(frozen=True)
class JwtSvid:
    spiffe_id: str
    token: str
    expires_at: dt.datetime


class SpiffeService:
    def __init__(
        self,
        uow: SpiffeUnitOfWorkFactory,
        registry: SpiffeRegistry,
        authorities: AuthorityService,
        keys: KeyBackend,
        urls: CaUrls,
        clock: Clock,
        *,
        issuance_for: Callable[[Callable[[], Authority]], IssuanceService],
        revoke_serial: RevokeSerial,
    ) -> None:
        self._uow = uow
        self.entries = registry
        self._authorities = authorities
        self._keys = keys
        self._urls = urls
        self._clock = clock
        self.jwt_keys = JwtKeySet(uow, keys, clock)
        self._issuance = issuance_for(self.svid_authority)
        self._revoke_serial = revoke_serial
        self._lock = threading.Lock()
        self._authority: Authority | None = None

    # -- spiffe init --------------------------------------------------------------------

    def initialize(self, trust_domain: str, *, actor: str) -> CaCertificate:
        """Configure the trust domain, create the SPIFFE CA under the active root and the
        first JWT signing key, in one transaction (key files are removed if it fails)."""
        domain = TrustDomain.parse(trust_domain)
        with self._uow(read_only=True) as uow:
            if uow.spiffe.config() is not None:  # before any key is made (checked again below)
                raise Conflict("SPIFFE is already initialised in this data directory")
        root = self._authorities.root()
        organization = root.certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
        ca_name = str(organization[0].value) if organization else root.name.removesuffix(" Root CA")
        key_type = KeyType.parse(describe_public_key(root.certificate.public_key()).label)
        now = self._clock.now()
        ref = self._keys.create("spiffe-1", key_type)
        try:
            cert = build_spiffe_ca(
                ca_name,
                domain.name,
                self._keys.load(ref),
                root.certificate,
                self._keys.load(root.key_ref),
                root.id,
                self._urls,
                now,
            )
            ca = CaCertificate(
                ca_id_for(cert),
                f"{ca_name} SPIFFE CA 1",
                SPIFFE_ROLE,
                root.id,
                cert,
                self._keys.name,
                ref,
                True,
            )
            with self._uow() as uow:
                uow.spiffe.create_config(domain, now)
                uow.cas.add(ca)
                jwt_key = self.jwt_keys.create_first(uow.spiffe, now)
                AuditLog(uow.audit, self._clock).record(
                    actor,
                    "spiffe.initialized",
                    ca.id,
                    {
                        "trust_domain": domain.name,
                        "ca": ca.name,
                        "key_type": key_type.value,
                        "not_after": ca.not_after.isoformat(),
                        "jwt_kid": jwt_key.kid,
                    },
                )
        except BaseException:
            delete = getattr(self._keys, "delete", None)
            if delete is not None:
                delete(ref)
            raise
        return ca

    def svid_authority(self) -> Authority:
        """The active SPIFFE CA as an :class:`Authority`, built once and cached."""
        with self._lock:
            if self._authority is None:
                cas = [c for c in self._authorities.hierarchy() if c.role == SPIFFE_ROLE and c.active]
                if not cas:
                    raise NotFound(
                        "SPIFFE is not initialised: run 'certfleet spiffe init --trust-domain NAME'"
                    )
                ca = max(cas, key=lambda c: c.not_before)
                self._authority = Authority(
                    ca, self._keys.load(ca.key_ref), (ca.certificate,), self._urls, self._clock
                )
            return self._authority

    # -- what an agent fetches ----------------------------------------------------------

    def agent_entries(self, agent: Agent) -> dict[str, Any]:
        with self._uow(read_only=True) as uow:
            config = uow.spiffe.config()
            if config is None:
                raise NotFound("SPIFFE is not initialised on this server")
            agent_id = agent_spiffe_id(config.trust_domain, agent.name)
            entries = uow.spiffe.entries(parent_id=str(agent_id))
        return {
            "trust_domain": config.trust_domain.name,
            "agent_id": str(agent_id),
            "revision": config.entries_revision,
            "entries": [e.to_dict() for e in entries],
        }

    def _agent_entry(self, agent: Agent, entry_id: str) -> RegistrationEntry:
        trust_domain = self.entries.trust_domain()
        with self._uow(read_only=True) as uow:
            entry = uow.spiffe.get_entry(entry_id)
        if entry is None or entry.parent_id != agent_spiffe_id(trust_domain, agent.name):
            # One answer for "no such entry" and "not yours": an agent learns nothing of others.
            raise Forbidden(f"entry {entry_id} is not parented by this agent")
        return entry

    def _agent_entries(self, agent: Agent, entry_ids: set[str]) -> dict[str, RegistrationEntry]:
        """The agent's entries among ``entry_ids``, read at once (a batch names up to 500)."""
        with self._uow(read_only=True) as uow:
            config = uow.spiffe.config()
            if config is None:
                raise NotFound("SPIFFE is not initialised on this server")
            parent = agent_spiffe_id(config.trust_domain, agent.name)
            found = uow.spiffe.entries_by_id(sorted(entry_ids))
        mine = {e.id: e for e in found if e.parent_id == parent}
        for entry_id in sorted(entry_ids - set(mine)):
            raise Forbidden(f"entry {entry_id} is not parented by this agent")
        return mine

    def issue_x509(self, agent: Agent, requests: Sequence[tuple[str, bytes]]) -> list[IssuedSvid]:
        """An X509-SVID per (entry id, CSR): the CSR only lends its public key (the key stays
        on the agent); the names are the entry's SPIFFE ID and DNS names, whatever the CSR
        asks. Every entry is checked before anything is signed."""
        if not requests:
            raise InvalidInput("no SVID requested")
        if len(requests) > MAX_SVID_REQUESTS:
            raise InvalidInput(f"at most {MAX_SVID_REQUESTS} SVIDs per request, got {len(requests)}")
        entries = self._agent_entries(agent, {entry_id for entry_id, _ in requests})
        keys = [(entries[entry_id], csr_public_key(load_csr(csr))) for entry_id, csr in requests]

        def issue(item: tuple[RegistrationEntry, Any]) -> IssuedSvid:
            entry, public_key = item
            request = IssuanceRequest(
                "x509-svid", public_key, entry.dns_names, uris=(str(entry.spiffe_id),), lifetime=entry.ttl
            )
            # The entry (which the ledger aggregates by) and the selectors that pick the
            # workload: the inventory record says where the identity lives.
            tags = (f"spiffe-entry:{entry.id}", *(f"selector:{s}" for s in entry.selectors))
            result = self._issuance.issue(request, actor=f"agent:{agent.name}", team=entry.team, tags=tags)
            issued = result.issued
            return IssuedSvid(entry.id, str(entry.spiffe_id), issued.certificate, issued.chain)

        if len(keys) == 1:
            return [issue(keys[0])]
        with ThreadPoolExecutor(max_workers=min(_PARALLEL_SIGNING, len(keys))) as pool:
            return list(pool.map(issue, keys))

    def issue_jwt(self, agent: Agent, entry_id: str, audience: Sequence[str]) -> JwtSvid:
        """A JWT-SVID for the entry, ``iss`` the server's public URL (its OIDC issuer)."""
        entry = self._agent_entry(agent, entry_id)
        if not audience or len(audience) > _MAX_AUDIENCES:
            raise InvalidInput(f"a JWT-SVID needs 1 to {_MAX_AUDIENCES} audiences")
        if any(not a.strip() or len(a) > 200 for a in audience):
            raise InvalidInput("an audience must be 1 to 200 characters")
        kid, key = self.jwt_keys.signer()
        now = self._clock.now().replace(microsecond=0)
        lifetime = min(DEFAULT_JWT_TTL, MAX_JWT_TTL)
        claims = JwtSvidClaims(entry.spiffe_id, tuple(audience), now, now + lifetime, self.issuer)
        return JwtSvid(str(entry.spiffe_id), sign_jwt_svid(key, kid, claims), claims.expires_at)

    def _roots(self) -> list[x509.Certificate]:
        now = self._clock.now()
        return [
            ca.certificate
            for ca in self._authorities.hierarchy()
            if ca.role == "root" and ca.active and ca.not_after > now
        ]

    def agent_bundle(self) -> dict[str, Any]:
        trust_domain = self.entries.trust_domain()
        return {
            "trust_domain": trust_domain.name,
            "x509_authorities": [to_pem([c]) for c in self._roots()],
            "jwt_authorities": jwt_jwks(self.jwt_keys.published()),
            "refresh_hint_seconds": REFRESH_HINT_SECONDS,
        }

    # -- public: federation and OIDC ----------------------------------------------------

    def bundle(self) -> dict[str, Any]:
        """The trust bundle in the SPIFFE bundle format (what a federated domain fetches)."""
        self.entries.trust_domain()  # NotFound before spiffe init
        published = self.jwt_keys.published()  # may rotate, which moves the sequence
        with self._uow(read_only=True) as uow:
            config = uow.spiffe.config()
        assert config is not None
        return spiffe_bundle(
            self._roots(),
            published,
            sequence=config.bundle_sequence,
            refresh_hint_seconds=REFRESH_HINT_SECONDS,
        )

    def jwks(self) -> dict[str, Any]:
        """The JWT-SVID keys for OIDC relying parties: ``use: sig`` and ``alg: ES256``, the
        members generic JWKS clients (PyJWT, go-jose) select keys by."""
        self.entries.trust_domain()
        keys = jwt_jwks(self.jwt_keys.published())["keys"]
        return {"keys": [{**k, "use": "sig", "alg": "ES256"} for k in keys]}

    @property
    def issuer(self) -> str:
        return self._urls.base_url.rstrip("/")

    def openid_configuration(self) -> dict[str, Any]:
        """OIDC discovery (OpenID Connect Discovery 1.0 section 3), as SPIRE's OIDC discovery
        provider publishes it: enough for a relying party to find the keys of JWT-SVIDs."""
        self.entries.trust_domain()
        return {
            "issuer": self.issuer,
            "jwks_uri": f"{self.issuer}/spiffe/jwks",
            "authorization_endpoint": "",
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256"],
        }

    # -- revocation ---------------------------------------------------------------------

    def revoke_svids(self, entry_id: str, reason: str, *, actor: str) -> list[str]:
        """Revoke every SVID of the entry that is still valid (CRL and OCSP of the SPIFFE CA
        say so from then on); returns their serials."""
        self.entries.record(entry_id)
        serials = self.entries.live_serials(entry_id)
        for serial in serials:
            self._revoke_serial(serial, reason, actor)
        return serials

    def spiffe_id_of(self, entry_id: str) -> SpiffeId:
        return self.entries.record(entry_id).entry.spiffe_id

    def ensure_initialised(self) -> None:
        try:
            self.svid_authority()
        except NotFound as exc:
            raise ConfigurationError(exc.detail) from exc
