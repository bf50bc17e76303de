"""ACME authorizations and their challenges in the database (the ``AuthorizationRepository``
of ``certfleet.protocols.acme._ports``), through SQLAlchemy Core statements (every client
polls its authorizations: no ORM unit of work or identity map on that path)."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, cast

from sqlalchemy import Row, Table, Update, bindparam, insert, select, update
from sqlalchemy.orm import Session

from certfleet.protocols.acme import (
    Authorization,
    AuthzStatus,
    Challenge,
    ChallengeStatus,
    Identifier,
)
from certfleet.store._acme_models import (
    AcmeAuthorizationRow,
    AcmeChallengeRow,
)
from certfleet.store._sql import dump_json, load_json, rowcount

__all__ = ["SqlAuthorizationRepository"]

_AUTHZ = cast(Table, AcmeAuthorizationRow.__table__)
_CHALLENGES = cast(Table, AcmeChallengeRow.__table__)
# An authorization with its challenges in one round trip (challenge columns prefixed "c_").
_WITH_CHALLENGES = (
    select(_AUTHZ, *(column.label(f"c_{column.name}") for column in _CHALLENGES.c))
    .outerjoin(_CHALLENGES, _CHALLENGES.c.authz_id == _AUTHZ.c.id)
    .order_by(_CHALLENGES.c.position)
)
# The reads every ACME request or validation makes, built once with bound parameters: a
# statement built per call is hashed into SQLAlchemy's compiled cache on every execution
# (about 40 us of CPU a statement here, a few percent of a certificate's).
_BY_ID = _WITH_CHALLENGES.where(_AUTHZ.c.id == bindparam("authz_id"))
# A valid authorization of the account for the identifier, looked for once per name of every
# new order (RFC 8555 section 7.4 lets a server reuse it).
_REUSABLE = (
    select(_AUTHZ)
    .where(
        _AUTHZ.c.account_id == bindparam("b_account"),
        _AUTHZ.c.identifier_value == bindparam("b_value"),
        _AUTHZ.c.identifier_type == bindparam("b_type"),
        _AUTHZ.c.wildcard == bindparam("b_wildcard"),
        _AUTHZ.c.status == AuthzStatus.VALID.value,
        _AUTHZ.c.expires_at > bindparam("b_now"),
    )
    .order_by(_AUTHZ.c.expires_at.desc())
    .limit(1)
)
# Table (Core) statements, not the mapped class's: an UPDATE of a mapped class goes through
# the ORM's bulk-update path (synchronising a session that holds no objects here).
_START_CHALLENGE = (
    update(_CHALLENGES)
    .where(
        _CHALLENGES.c.id == bindparam("challenge_id"), _CHALLENGES.c.status == ChallengeStatus.PENDING.value
    )
    .values(status=ChallengeStatus.PROCESSING.value, processing_since=bindparam("b_since"))
)
_FINISH_CHALLENGE = (
    update(_CHALLENGES)
    .where(_CHALLENGES.c.id == bindparam("challenge_id"))
    .values(
        status=bindparam("b_status"),
        validated_at=bindparam("b_validated_at"),
        error_json=bindparam("b_error"),
    )
)


@functools.cache
def _set_status(columns: tuple[str, ...]) -> Update:
    """An authorization's status change setting ``columns``, built once per shape."""
    return (
        update(_AUTHZ)
        .where(_AUTHZ.c.id == bindparam("b_id"), _AUTHZ.c.status.in_(bindparam("b_expected", expanding=True)))
        .values({column: bindparam(f"b_{column}") for column in columns})
    )


_BY_CHALLENGE = _WITH_CHALLENGES.where(
    _AUTHZ.c.id
    == select(_CHALLENGES.c.authz_id).where(_CHALLENGES.c.id == bindparam("challenge_id")).scalar_subquery()
)


def _challenge(row: Row[Any]) -> Challenge:
    return Challenge(
        id=row.c_id,
        authz_id=row.c_authz_id,
        type=row.c_type,
        token=row.c_token,
        status=ChallengeStatus(row.c_status),
        validated_at=row.c_validated_at,
        error=load_json(row.c_error_json),
    )


class SqlAuthorizationRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def _build(self, row: Row[Any]) -> Authorization:
        rows = self._session.execute(
            select(_CHALLENGES).where(_CHALLENGES.c.authz_id == row.id).order_by(_CHALLENGES.c.position)
        )
        challenges = tuple(
            Challenge(
                id=c.id,
                authz_id=c.authz_id,
                type=c.type,
                token=c.token,
                status=ChallengeStatus(c.status),
                validated_at=c.validated_at,
                error=load_json(c.error_json),
            )
            for c in rows
        )
        return self._from_row(row, challenges)

    @staticmethod
    def _from_row(row: Row[Any], challenges: tuple[Challenge, ...]) -> Authorization:
        return Authorization(
            id=row.id,
            account_id=row.account_id,
            identifier=Identifier(row.identifier_type, row.identifier_value),
            wildcard=row.wildcard,
            status=AuthzStatus(row.status),
            expires_at=row.expires_at,
            created_at=row.created_at,
            challenges=challenges,
            validated_at=row.validated_at,
            caa_checked_at=row.caa_checked_at,
        )

    def add(self, authz: Authorization) -> None:
        self._session.execute(
            insert(_AUTHZ).values(
                id=authz.id,
                account_id=authz.account_id,
                identifier_type=authz.identifier.type,
                identifier_value=authz.identifier.value,
                wildcard=authz.wildcard,
                status=authz.status.value,
                expires_at=authz.expires_at,
                created_at=authz.created_at,
                validated_at=authz.validated_at,
                caa_checked_at=authz.caa_checked_at,
            )
        )
        if authz.challenges:
            self._session.execute(
                insert(_CHALLENGES),
                [
                    {
                        "id": challenge.id,
                        "authz_id": authz.id,
                        "position": position,
                        "type": challenge.type,
                        "token": challenge.token,
                        "status": challenge.status.value,
                        "validated_at": challenge.validated_at,
                        "error_json": dump_json(challenge.error),
                    }
                    for position, challenge in enumerate(authz.challenges)
                ],
            )

    def _joined(self, rows: Sequence[Row[Any]]) -> Authorization | None:
        if not rows:
            return None
        authz = self._from_row(rows[0], ())
        challenges = tuple(_challenge(r) for r in rows if r.c_id is not None)
        return replace(authz, challenges=challenges)

    def get(self, authz_id: str) -> Authorization | None:
        return self._joined(self._session.execute(_BY_ID, {"authz_id": authz_id}).all())

    def get_by_challenge(self, challenge_id: str) -> Authorization | None:
        return self._joined(self._session.execute(_BY_CHALLENGE, {"challenge_id": challenge_id}).all())

    def find_reusable(
        self, account_id: str, identifier: Identifier, wildcard: bool, now: dt.datetime
    ) -> Authorization | None:
        parameters = {
            "b_account": account_id,
            "b_value": identifier.value,
            "b_type": identifier.type,
            "b_wildcard": wildcard,
            "b_now": now,
        }
        row = self._session.execute(_REUSABLE, parameters).first()
        return self._build(row) if row else None

    def valid_names(self, account_id: str, now: dt.datetime) -> set[Identifier]:
        rows = self._session.execute(
            select(
                AcmeAuthorizationRow.identifier_type,
                AcmeAuthorizationRow.identifier_value,
                AcmeAuthorizationRow.wildcard,
            ).where(
                AcmeAuthorizationRow.account_id == account_id,
                AcmeAuthorizationRow.status == AuthzStatus.VALID.value,
                AcmeAuthorizationRow.expires_at > now,
            )
        )
        return {Identifier(t, f"*.{v}" if w else v) for t, v, w in rows}

    def start_challenge(self, challenge_id: str, at: dt.datetime | None = None) -> bool:
        result = self._session.execute(_START_CHALLENGE, {"challenge_id": challenge_id, "b_since": at})
        return rowcount(result) == 1

    def stalled_challenges(self, before: dt.datetime) -> Sequence[str]:
        since = AcmeChallengeRow.processing_since
        return self._session.scalars(
            select(AcmeChallengeRow.id).where(
                AcmeChallengeRow.status == ChallengeStatus.PROCESSING.value,
                (since < before) | since.is_(None),
            )
        ).all()

    def finish_challenge(
        self, challenge_id: str, status: ChallengeStatus, at: dt.datetime, error: dict[str, Any] | None
    ) -> None:
        self._session.execute(
            _FINISH_CHALLENGE,
            {
                "challenge_id": challenge_id,
                "b_status": status.value,
                "b_validated_at": at if status is ChallengeStatus.VALID else None,
                "b_error": dump_json(error),
            },
        )

    def set_status(
        self,
        authz_id: str,
        status: AuthzStatus,
        *,
        expected: Sequence[AuthzStatus],
        validated_at: dt.datetime | None = None,
        expires_at: dt.datetime | None = None,
        caa_checked_at: dt.datetime | None = None,
    ) -> bool:
        changes = {
            "status": status.value,
            "validated_at": validated_at,
            "expires_at": expires_at,
            "caa_checked_at": caa_checked_at,
        }
        values = {f"b_{column}": value for column, value in changes.items() if value is not None}
        statement = _set_status(tuple(column for column, value in changes.items() if value is not None))
        result = self._session.execute(
            statement, {"b_id": authz_id, "b_expected": [s.value for s in expected], **values}
        )
        return rowcount(result) == 1

    def mark_caa_checked(self, authz_id: str, at: dt.datetime) -> None:
        self._session.execute(
            update(AcmeAuthorizationRow).where(AcmeAuthorizationRow.id == authz_id).values(caa_checked_at=at)
        )
