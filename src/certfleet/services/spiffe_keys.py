"""The JWT-SVID signing keys: ES256, rotated with overlap.

A key signs for :data:`ROTATE_EVERY`; its successor is created and published in the bundle
:data:`PUBLISH_AHEAD` before it starts signing (relying parties refresh the bundle every
``refresh_hint`` = 5 minutes, so by then every one of them knows it), and the old key stays
published until the last token it signed has expired (:data:`MAX_JWT_TTL` after it retires).
So a relying party never sees a token whose key it has not been offered. The private keys are
created and kept by the key backend, encrypted at rest like the CA keys.
"""

from __future__ import annotations

import datetime as dt
import threading

from cryptography.hazmat.primitives.asymmetric import ec

from certfleet.ca.keys import KeyBackend
from certfleet.clock import Clock
from certfleet.errors import ConfigurationError, Conflict
from certfleet.services.spiffe_ports import SpiffeRepository, SpiffeUnitOfWorkFactory
from certfleet.spiffe import JwtKeyRecord, key_id
from certfleet.x509 import KeyType

__all__ = ["MAX_JWT_TTL", "PUBLISH_AHEAD", "ROTATE_EVERY", "JwtKeySet"]

ROTATE_EVERY = dt.timedelta(days=1)
PUBLISH_AHEAD = dt.timedelta(hours=1)
MAX_JWT_TTL = dt.timedelta(hours=1)


class JwtKeySet:
    def __init__(self, uow: SpiffeUnitOfWorkFactory, keys: KeyBackend, clock: Clock) -> None:
        self._uow = uow
        self._keys = keys
        self._clock = clock
        self._lock = threading.Lock()
        self._private: dict[str, ec.EllipticCurvePrivateKey] = {}

    def create_first(self, repository: SpiffeRepository, now: dt.datetime) -> JwtKeyRecord:
        """The first key, signing at once (inside ``spiffe init``'s transaction)."""
        return self._create(repository, 1, now, now)

    def _create(
        self, repository: SpiffeRepository, generation: int, now: dt.datetime, active_from: dt.datetime
    ) -> JwtKeyRecord:
        ref = self._keys.create(f"spiffe-jwt-{generation}", KeyType.EC_P256)
        try:
            private = self._keys.load(ref)
            assert isinstance(private, ec.EllipticCurvePrivateKey)
            public = private.public_key()
            retire_at = active_from + ROTATE_EVERY
            record = JwtKeyRecord(
                key_id(public), generation, ref, public, now, active_from, retire_at, retire_at + MAX_JWT_TTL
            )
            repository.add_jwt_key(record)
        except BaseException:
            self._delete_file(ref)
            raise
        return record

    def _delete_file(self, ref: str) -> None:
        delete = getattr(self._keys, "delete", None)
        if delete is not None:
            delete(ref)

    def current(self) -> list[JwtKeyRecord]:
        """The keys in force, after rotating when due: the successor published ahead of its
        turn, keys past their publishing window dropped (and their files deleted)."""
        now = self._clock.now()
        with self._uow(read_only=True) as uow:
            keys = uow.spiffe.jwt_keys()
        if (
            keys
            and max(k.retire_at for k in keys) - now > PUBLISH_AHEAD
            and all(k.published_at(now) for k in keys)
        ):
            return keys
        expired: list[JwtKeyRecord] = []
        try:
            with self._lock, self._uow() as uow:
                keys = uow.spiffe.jwt_keys()
                newest = max(keys, key=lambda k: k.generation, default=None)
                if newest is None:
                    raise ConfigurationError("SPIFFE has no JWT signing key: run 'certfleet spiffe init'")
                expired = [k for k in keys if not k.published_at(now)]
                uow.spiffe.delete_jwt_keys([k.kid for k in expired])
                if newest.retire_at - now <= PUBLISH_AHEAD:
                    self._create(uow.spiffe, newest.generation + 1, now, max(newest.retire_at, now))
        except Conflict:
            expired = []  # another process rotated first (this transaction rolled back): read its key
        for key in expired:
            self._delete_file(key.key_ref)
            self._private.pop(key.kid, None)
        with self._uow(read_only=True) as uow:
            return uow.spiffe.jwt_keys()

    def published(self) -> dict[str, ec.EllipticCurvePublicKey]:
        now = self._clock.now()
        return {k.kid: k.public_key for k in self.current() if k.published_at(now)}

    def signer(self) -> tuple[str, ec.EllipticCurvePrivateKey]:
        now = self._clock.now()
        signing = [k for k in self.current() if k.signs_at(now)]
        if not signing:
            raise ConfigurationError("no JWT signing key is active")
        key = max(signing, key=lambda k: k.generation)
        private = self._private.get(key.kid)
        if private is None:
            loaded = self._keys.load(key.key_ref)
            assert isinstance(loaded, ec.EllipticCurvePrivateKey)
            private = self._private[key.kid] = loaded
        return key.kid, private
