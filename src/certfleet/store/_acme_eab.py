"""The EAB key repository: HMAC keys sealed at rest (:mod:`certfleet.sealing`) and wiped
when an account binds them."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from certfleet.errors import ConfigurationError, InvalidInput
from certfleet.protocols.acme import EabKey
from certfleet.sealing import RowRef, SecretBox
from certfleet.store._acme_models import AcmeEabKeyRow
from certfleet.store._sql import rowcount

__all__ = ["SqlEabKeyRepository", "eab_key_ref"]


def eab_key_ref(kid: str) -> RowRef:
    """Where an EAB key's sealed HMAC key lives (the envelope's associated data)."""
    return RowRef("acme_eab_keys", "hmac_key", kid)


def _eab(row: AcmeEabKeyRow, hmac_key: bytes | None) -> EabKey:
    return EabKey(
        kid=row.kid,
        hmac_key=hmac_key,
        team=row.team,
        allow_names=tuple(json.loads(row.allow_names_json)),
        created_at=row.created_at,
        description=row.description,
        account_id=row.account_id,
        bound_at=row.bound_at,
    )


class SqlEabKeyRepository:
    """EAB keys with their HMAC keys sealed (never plaintext in the database) and wiped at
    binding."""

    def __init__(self, session: Session, secrets: SecretBox | None) -> None:
        self._session = session
        self._secrets = secrets

    def _box(self) -> SecretBox:
        if self._secrets is None:
            raise ConfigurationError("no secrets key: this store cannot seal or open EAB keys")
        return self._secrets

    def add(self, key: EabKey) -> None:
        if key.hmac_key is None:
            raise InvalidInput(f"external account key {key.kid!r} has no HMAC key")
        sealed = self._box().seal(key.hmac_key, eab_key_ref(key.kid))
        self._session.add(
            AcmeEabKeyRow(
                kid=key.kid,
                hmac_key=sealed.encode("ascii"),
                team=key.team,
                allow_names_json=json.dumps(list(key.allow_names)),
                description=key.description,
                created_at=key.created_at,
            )
        )
        self._session.flush()

    def get(self, kid: str) -> EabKey | None:
        row = self._session.get(AcmeEabKeyRow, kid)
        if row is None:
            return None
        if row.hmac_key is None or row.account_id is not None:
            return _eab(row, None)
        return _eab(row, self._box().open(row.hmac_key.decode("ascii", "replace"), eab_key_ref(kid)))

    def bind(self, kid: str, account_id: str, at: dt.datetime) -> bool:
        # Single use: the HMAC key goes in the same UPDATE that binds it (RFC 8555 7.3.4 lets
        # a server refuse a second binding; a wiped key cannot be leaked and replayed).
        result = self._session.execute(
            update(AcmeEabKeyRow)
            .where(AcmeEabKeyRow.kid == kid, AcmeEabKeyRow.account_id.is_(None))
            .values(account_id=account_id, bound_at=at, hmac_key=None)
        )
        return rowcount(result) == 1

    def list(self) -> Sequence[EabKey]:
        rows = self._session.scalars(select(AcmeEabKeyRow).order_by(AcmeEabKeyRow.created_at))
        return [_eab(r, None) for r in rows]

    def delete_unbound(self, kid: str) -> bool:
        result = self._session.execute(
            delete(AcmeEabKeyRow).where(AcmeEabKeyRow.kid == kid, AcmeEabKeyRow.account_id.is_(None))
        )
        return rowcount(result) == 1
