"""Repositories of the ACME server (the interfaces ``certfleet.protocols.acme`` declares)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError as SqlIntegrityError
from sqlalchemy.orm import Session

from certfleet.errors import Conflict
from certfleet.protocols.acme import (
    Account,
    AccountStatus,
    Authorization,
    AuthzStatus,
    Challenge,
    ChallengeStatus,
    Identifier,
    Order,
    OrderStatus,
    RenewalOverride,
)
from certfleet.sealing import SecretBox
from certfleet.store._acme_eab import SqlEabKeyRepository
from certfleet.store._acme_models import (
    AcmeAccountRow,
    AcmeAuthorizationRow,
    AcmeChallengeRow,
    AcmeNonceRow,
    AcmeOrderAuthorizationRow,
    AcmeOrderRow,
    AcmeRenewalOverrideRow,
)
from certfleet.store._sql import for_update

__all__ = ["SqlAcmeRepositories"]


def _rowcount(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def _dump(value: Any) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True)


def _load(text: str | None) -> Any:
    return None if text is None else json.loads(text)


class SqlNonceRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, value: str, expires_at: dt.datetime) -> None:
        self._session.add(AcmeNonceRow(value=value, expires_at=expires_at))
        self._session.flush()

    def consume(self, value: str, now: dt.datetime) -> bool:
        result = self._session.execute(
            delete(AcmeNonceRow).where(AcmeNonceRow.value == value, AcmeNonceRow.expires_at > now)
        )
        return _rowcount(result) == 1

    def purge_expired(self, now: dt.datetime) -> int:
        return _rowcount(self._session.execute(delete(AcmeNonceRow).where(AcmeNonceRow.expires_at <= now)))


def _account(row: AcmeAccountRow) -> Account:
    allow = _load(row.allow_names_json)
    return Account(
        id=row.id,
        thumbprint=row.thumbprint,
        jwk_json=row.jwk_json,
        status=AccountStatus(row.status),
        contacts=tuple(json.loads(row.contacts_json)),
        tos_agreed=row.tos_agreed,
        created_at=row.created_at,
        eab_kid=row.eab_kid,
        team=row.team,
        allow_names=tuple(allow) if allow is not None else None,
    )


class SqlAccountRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, account: Account) -> None:
        row = AcmeAccountRow(
            id=account.id,
            thumbprint=account.thumbprint,
            jwk_json=account.jwk_json,
            status=account.status.value,
            contacts_json=json.dumps(list(account.contacts)),
            tos_agreed=account.tos_agreed,
            created_at=account.created_at,
            eab_kid=account.eab_kid,
            team=account.team,
            allow_names_json=_dump(list(account.allow_names) if account.allow_names is not None else None),
        )
        try:
            with self._session.begin_nested():
                self._session.add(row)
                self._session.flush()
        except SqlIntegrityError as exc:
            raise Conflict("this key already has an account") from exc

    def get(self, account_id: str) -> Account | None:
        row = self._session.get(AcmeAccountRow, account_id)
        return _account(row) if row else None

    def get_by_thumbprint(self, thumbprint: str) -> Account | None:
        row = self._session.scalar(select(AcmeAccountRow).where(AcmeAccountRow.thumbprint == thumbprint))
        return _account(row) if row else None

    def update(self, account: Account) -> None:
        try:
            with self._session.begin_nested():
                self._session.execute(
                    update(AcmeAccountRow)
                    .where(AcmeAccountRow.id == account.id)
                    .values(
                        thumbprint=account.thumbprint,
                        jwk_json=account.jwk_json,
                        status=account.status.value,
                        contacts_json=json.dumps(list(account.contacts)),
                        tos_agreed=account.tos_agreed,
                    )
                )
        except SqlIntegrityError as exc:
            raise Conflict("the key already belongs to another account") from exc


class SqlAuthorizationRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def _build(self, row: AcmeAuthorizationRow) -> Authorization:
        rows = self._session.scalars(
            select(AcmeChallengeRow)
            .where(AcmeChallengeRow.authz_id == row.id)
            .order_by(AcmeChallengeRow.position)
        )
        challenges = tuple(
            Challenge(
                id=c.id,
                authz_id=c.authz_id,
                type=c.type,
                token=c.token,
                status=ChallengeStatus(c.status),
                validated_at=c.validated_at,
                error=_load(c.error_json),
            )
            for c in rows
        )
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
        self._session.add(
            AcmeAuthorizationRow(
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
        self._session.flush()
        for position, challenge in enumerate(authz.challenges):
            self._session.add(
                AcmeChallengeRow(
                    id=challenge.id,
                    authz_id=authz.id,
                    position=position,
                    type=challenge.type,
                    token=challenge.token,
                    status=challenge.status.value,
                    validated_at=challenge.validated_at,
                    error_json=_dump(challenge.error),
                )
            )
        self._session.flush()

    def get(self, authz_id: str) -> Authorization | None:
        row = self._session.get(AcmeAuthorizationRow, authz_id)
        return self._build(row) if row else None

    def get_by_challenge(self, challenge_id: str) -> Authorization | None:
        authz_id = self._session.scalar(
            select(AcmeChallengeRow.authz_id).where(AcmeChallengeRow.id == challenge_id)
        )
        return self.get(authz_id) if authz_id else None

    def find_reusable(
        self, account_id: str, identifier: Identifier, wildcard: bool, now: dt.datetime
    ) -> Authorization | None:
        row = self._session.scalar(
            select(AcmeAuthorizationRow)
            .where(
                AcmeAuthorizationRow.account_id == account_id,
                AcmeAuthorizationRow.identifier_value == identifier.value,
                AcmeAuthorizationRow.identifier_type == identifier.type,
                AcmeAuthorizationRow.wildcard == wildcard,
                AcmeAuthorizationRow.status == AuthzStatus.VALID.value,
                AcmeAuthorizationRow.expires_at > now,
            )
            .order_by(AcmeAuthorizationRow.expires_at.desc())
            .limit(1)
        )
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

    def start_challenge(self, challenge_id: str) -> bool:
        result = self._session.execute(
            update(AcmeChallengeRow)
            .where(
                AcmeChallengeRow.id == challenge_id, AcmeChallengeRow.status == ChallengeStatus.PENDING.value
            )
            .values(status=ChallengeStatus.PROCESSING.value)
        )
        return _rowcount(result) == 1

    def finish_challenge(
        self, challenge_id: str, status: ChallengeStatus, at: dt.datetime, error: dict[str, Any] | None
    ) -> None:
        self._session.execute(
            update(AcmeChallengeRow)
            .where(AcmeChallengeRow.id == challenge_id)
            .values(
                status=status.value,
                validated_at=at if status is ChallengeStatus.VALID else None,
                error_json=_dump(error),
            )
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
        values: dict[str, Any] = {"status": status.value}
        if validated_at is not None:
            values["validated_at"] = validated_at
        if expires_at is not None:
            values["expires_at"] = expires_at
        if caa_checked_at is not None:
            values["caa_checked_at"] = caa_checked_at
        result = self._session.execute(
            update(AcmeAuthorizationRow)
            .where(
                AcmeAuthorizationRow.id == authz_id,
                AcmeAuthorizationRow.status.in_([s.value for s in expected]),
            )
            .values(**values)
        )
        return _rowcount(result) == 1

    def mark_caa_checked(self, authz_id: str, at: dt.datetime) -> None:
        self._session.execute(
            update(AcmeAuthorizationRow).where(AcmeAuthorizationRow.id == authz_id).values(caa_checked_at=at)
        )


class SqlOrderRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def _build(self, row: AcmeOrderRow) -> Order:
        authz_ids = self._session.scalars(
            select(AcmeOrderAuthorizationRow.authz_id)
            .where(AcmeOrderAuthorizationRow.order_id == row.id)
            .order_by(AcmeOrderAuthorizationRow.position)
        )
        return Order(
            id=row.id,
            account_id=row.account_id,
            status=OrderStatus(row.status),
            identifiers=tuple(Identifier(i["type"], i["value"]) for i in json.loads(row.identifiers_json)),
            authz_ids=tuple(authz_ids),
            expires_at=row.expires_at,
            created_at=row.created_at,
            profile=row.profile,
            replaces=row.replaces,
            error=_load(row.error_json),
            certificate_serial=row.certificate_serial,
            certificate_chain=row.certificate_chain,
        )

    def add(self, order: Order) -> None:
        self._session.add(
            AcmeOrderRow(
                id=order.id,
                account_id=order.account_id,
                status=order.status.value,
                identifiers_json=json.dumps([i.to_json() for i in order.identifiers]),
                expires_at=order.expires_at,
                created_at=order.created_at,
                profile=order.profile,
                replaces=order.replaces,
                error_json=_dump(order.error),
            )
        )
        self._session.flush()
        for position, authz_id in enumerate(order.authz_ids):
            self._session.add(
                AcmeOrderAuthorizationRow(order_id=order.id, authz_id=authz_id, position=position)
            )
        self._session.flush()

    def get(self, order_id: str, *, lock: bool = False) -> Order | None:
        stmt = select(AcmeOrderRow).where(AcmeOrderRow.id == order_id)
        if lock:
            stmt = for_update(self._session, stmt)
        row = self._session.scalar(stmt.execution_options(populate_existing=True))
        return self._build(row) if row else None

    def list_for_account(self, account_id: str, limit: int) -> Sequence[str]:
        return list(
            self._session.scalars(
                select(AcmeOrderRow.id)
                .where(AcmeOrderRow.account_id == account_id)
                .order_by(AcmeOrderRow.created_at.desc(), AcmeOrderRow.id)
                .limit(limit)
            )
        )

    def ids_for_authorization(self, authz_id: str) -> Sequence[str]:
        return list(
            self._session.scalars(
                select(AcmeOrderAuthorizationRow.order_id).where(
                    AcmeOrderAuthorizationRow.authz_id == authz_id
                )
            )
        )

    def transition(
        self,
        order_id: str,
        to: OrderStatus,
        *,
        expected: Sequence[OrderStatus],
        error: dict[str, Any] | None = None,
    ) -> bool:
        values: dict[str, Any] = {"status": to.value}
        if error is not None:
            values["error_json"] = _dump(error)
        result = self._session.execute(
            update(AcmeOrderRow)
            .where(AcmeOrderRow.id == order_id, AcmeOrderRow.status.in_([s.value for s in expected]))
            .values(**values)
        )
        return _rowcount(result) == 1

    def complete(self, order_id: str, serial: str, chain_pem: str) -> bool:
        result = self._session.execute(
            update(AcmeOrderRow)
            .where(AcmeOrderRow.id == order_id, AcmeOrderRow.status == OrderStatus.PROCESSING.value)
            .values(status=OrderStatus.VALID.value, certificate_serial=serial, certificate_chain=chain_pem)
        )
        return _rowcount(result) == 1

    def find_by_certificate(self, serial: str) -> Order | None:
        row = self._session.scalar(
            select(AcmeOrderRow).where(AcmeOrderRow.certificate_serial == serial).limit(1)
        )
        return self._build(row) if row else None

    def replacing(self, cert_id: str) -> Sequence[Order]:
        rows = self._session.scalars(select(AcmeOrderRow).where(AcmeOrderRow.replaces == cert_id))
        return [self._build(r) for r in rows]


class SqlRenewalRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def set_override(self, override: RenewalOverride) -> None:
        row = self._session.get(AcmeRenewalOverrideRow, override.serial)
        if row is None:
            self._session.add(
                AcmeRenewalOverrideRow(
                    serial=override.serial,
                    window_start=override.start,
                    window_end=override.end,
                    set_at=override.set_at,
                    actor=override.actor,
                )
            )
        else:
            row.window_start = override.start
            row.window_end = override.end
            row.set_at = override.set_at
            row.actor = override.actor
        self._session.flush()

    @staticmethod
    def _override(row: AcmeRenewalOverrideRow) -> RenewalOverride:
        return RenewalOverride(row.serial, row.window_start, row.window_end, row.set_at, row.actor)

    def get_override(self, serial: str) -> RenewalOverride | None:
        row = self._session.get(AcmeRenewalOverrideRow, serial)
        return self._override(row) if row else None


class SqlAcmeRepositories:
    """Every ACME repository over one session."""

    def __init__(self, session: Session, secrets: SecretBox | None = None) -> None:
        self.nonces = SqlNonceRepository(session)
        self.accounts = SqlAccountRepository(session)
        self.eab_keys = SqlEabKeyRepository(session, secrets)
        self.authorizations = SqlAuthorizationRepository(session)
        self.orders = SqlOrderRepository(session)
        self.renewals = SqlRenewalRepository(session)
