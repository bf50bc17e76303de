"""Repositories of the ACME server (the interfaces ``certfleet.protocols.acme`` declares).

The rows a request reads and writes on the hot path (nonces, accounts, orders) go through
SQLAlchemy Core statements on the tables, not the ORM's unit of work and identity map: one
compiled (cached) statement each, and rows turned straight into the domain's values.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Row, Table, Update, bindparam, delete, insert, select, text, update
from sqlalchemy.exc import IntegrityError as SqlIntegrityError
from sqlalchemy.orm import Session

from certfleet.errors import Conflict
from certfleet.protocols.acme import (
    Account,
    AccountStatus,
    Identifier,
    Order,
    OrderStatus,
    RenewalOverride,
)
from certfleet.sealing import SecretBox
from certfleet.store._acme_authz import SqlAuthorizationRepository
from certfleet.store._acme_eab import SqlEabKeyRepository
from certfleet.store._acme_models import (
    AcmeAccountRow,
    AcmeNonceRow,
    AcmeOrderAuthorizationRow,
    AcmeOrderRow,
    AcmeRenewalOverrideRow,
)
from certfleet.store._sql import dump_json, for_update, load_json, rowcount

__all__ = ["SqlAcmeRepositories"]

_NONCES = cast(Table, AcmeNonceRow.__table__)
_ACCOUNTS = cast(Table, AcmeAccountRow.__table__)
_ORDERS = cast(Table, AcmeOrderRow.__table__)
_ORDER_AUTHZ = cast(Table, AcmeOrderAuthorizationRow.__table__)
# The reads of every signed request (its account) and of every order poll, built once with
# bound parameters: see _acme_authz._BY_ID.
_ACCOUNT_BY_ID = select(_ACCOUNTS).where(_ACCOUNTS.c.id == bindparam("account_id"))
# The order and its authorizations' ids in one round trip (every client polls it).
_ORDER_WITH_AUTHZ_IDS = (
    select(_ORDERS, _ORDER_AUTHZ.c.authz_id.label("joined_authz_id"))
    .outerjoin(_ORDER_AUTHZ, _ORDER_AUTHZ.c.order_id == _ORDERS.c.id)
    .where(_ORDERS.c.id == bindparam("order_id"))
    .order_by(_ORDER_AUTHZ.c.position)
)


@functools.cache
def _transition(with_error: bool, only_since: bool) -> Update:
    """An order's status change, built once per shape with bound parameters; the table's
    UPDATE, not the mapped class's (see _acme_authz._START_CHALLENGE)."""
    statement = update(_ORDERS).where(
        _ORDERS.c.id == bindparam("b_id"), _ORDERS.c.status.in_(bindparam("b_expected", expanding=True))
    )
    if only_since:
        statement = statement.where(_ORDERS.c.processing_since == bindparam("b_since"))
    columns = ["status", "processing_since", *(["error_json"] if with_error else [])]
    return statement.values({column: bindparam(f"b_{column}") for column in columns})


_ORDERS_OF_AUTHZ = select(_ORDER_AUTHZ.c.order_id).where(_ORDER_AUTHZ.c.authz_id == bindparam("authz_id"))
# Nonces in the database (PostgreSQL): every signed request rotates one, every new-nonce and
# every problem adds one; built once (see _ACCOUNT_BY_ID).
_ADD_NONCE = insert(_NONCES).values(value=bindparam("b_value"), expires_at=bindparam("b_expires_at"))
_CONSUME_NONCE = delete(_NONCES).where(
    _NONCES.c.value == bindparam("b_value"), _NONCES.c.expires_at > bindparam("b_now")
)
_ROTATE_NONCE = (
    update(_NONCES)
    .where(_NONCES.c.value == bindparam("b_value"), _NONCES.c.expires_at > bindparam("b_now"))
    .values(value=bindparam("b_replacement"), expires_at=bindparam("b_expires_at"))
)


class SqlNonceRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, value: str, expires_at: dt.datetime) -> None:
        self._session.execute(_ADD_NONCE, {"b_value": value, "b_expires_at": expires_at})

    def consume(self, value: str, now: dt.datetime) -> bool:
        return rowcount(self._session.execute(_CONSUME_NONCE, {"b_value": value, "b_now": now})) == 1

    def rotate(self, value: str, replacement: str, expires_at: dt.datetime, now: dt.datetime) -> bool:
        parameters = {
            "b_value": value,
            "b_now": now,
            "b_replacement": replacement,
            "b_expires_at": expires_at,
        }
        return rowcount(self._session.execute(_ROTATE_NONCE, parameters)) == 1

    def purge_expired(self, now: dt.datetime) -> int:
        return rowcount(self._session.execute(delete(AcmeNonceRow).where(AcmeNonceRow.expires_at <= now)))

    def relax_durability(self) -> None:
        if self._session.get_bind().dialect.name == "postgresql":
            self._session.execute(text("SET LOCAL synchronous_commit TO OFF"))


def _account(row: AcmeAccountRow | Row[Any]) -> Account:
    allow = load_json(row.allow_names_json)
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
            allow_names_json=dump_json(
                list(account.allow_names) if account.allow_names is not None else None
            ),
        )
        try:
            with self._session.begin_nested():
                self._session.add(row)
                self._session.flush()
        except SqlIntegrityError as exc:
            raise Conflict("this key already has an account") from exc

    def get(self, account_id: str) -> Account | None:
        row = self._session.execute(_ACCOUNT_BY_ID, {"account_id": account_id}).first()
        return _account(row) if row else None

    def get_by_thumbprint(self, thumbprint: str) -> Account | None:
        row = self._session.execute(select(_ACCOUNTS).where(_ACCOUNTS.c.thumbprint == thumbprint)).first()
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


def _order(row: Row[Any], authz_ids: tuple[str, ...]) -> Order:
    return Order(
        id=row.id,
        account_id=row.account_id,
        status=OrderStatus(row.status),
        identifiers=tuple(Identifier(i["type"], i["value"]) for i in json.loads(row.identifiers_json)),
        authz_ids=authz_ids,
        expires_at=row.expires_at,
        created_at=row.created_at,
        profile=row.profile,
        replaces=row.replaces,
        error=load_json(row.error_json),
        certificate_serial=row.certificate_serial,
        certificate_chain=row.certificate_chain,
    )


class SqlOrderRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def _build(self, row: Row[Any]) -> Order:
        authz_ids = self._session.scalars(
            select(_ORDER_AUTHZ.c.authz_id)
            .where(_ORDER_AUTHZ.c.order_id == row.id)
            .order_by(_ORDER_AUTHZ.c.position)
        )
        return _order(row, tuple(authz_ids))

    def add(self, order: Order) -> None:
        self._session.execute(
            insert(_ORDERS).values(
                id=order.id,
                account_id=order.account_id,
                status=order.status.value,
                identifiers_json=json.dumps([i.to_json() for i in order.identifiers]),
                expires_at=order.expires_at,
                created_at=order.created_at,
                profile=order.profile,
                replaces=order.replaces,
                error_json=dump_json(order.error),
            )
        )
        if order.authz_ids:
            self._session.execute(
                insert(_ORDER_AUTHZ),
                [
                    {"order_id": order.id, "authz_id": authz_id, "position": position}
                    for position, authz_id in enumerate(order.authz_ids)
                ],
            )

    def get(self, order_id: str, *, lock: bool = False) -> Order | None:
        if lock:
            # FOR UPDATE cannot lock the nullable side of an outer join: two statements.
            row = self._session.execute(
                for_update(self._session, select(_ORDERS).where(_ORDERS.c.id == order_id))
            ).first()
            return self._build(row) if row else None
        rows = self._session.execute(_ORDER_WITH_AUTHZ_IDS, {"order_id": order_id}).all()
        if not rows:
            return None
        return _order(rows[0], tuple(r.joined_authz_id for r in rows if r.joined_authz_id is not None))

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
        return list(self._session.scalars(_ORDERS_OF_AUTHZ, {"authz_id": authz_id}))

    def transition(
        self,
        order_id: str,
        to: OrderStatus,
        *,
        expected: Sequence[OrderStatus],
        error: dict[str, Any] | None = None,
        at: dt.datetime | None = None,
        processing_since: dt.datetime | None = None,
    ) -> bool:
        values: dict[str, Any] = {"b_id": order_id, "b_expected": [s.value for s in expected]}
        values["b_status"] = to.value
        if error is not None:
            values["b_error_json"] = dump_json(error)
        # When it entered processing, for the stalled-order job; cleared when it leaves (a
        # refused finalize puts the order back to ready exactly as it was).
        values["b_processing_since"] = at if to is OrderStatus.PROCESSING else None
        if processing_since is not None:
            values["b_since"] = processing_since
        statement = _transition(error is not None, processing_since is not None)
        return rowcount(self._session.execute(statement, values)) == 1

    def stalled(self, before: dt.datetime) -> Sequence[str]:
        # NULL: processing before migration 0024 recorded when, so long enough.
        since = AcmeOrderRow.processing_since
        return self._session.scalars(
            select(AcmeOrderRow.id).where(
                AcmeOrderRow.status == OrderStatus.PROCESSING.value, (since < before) | since.is_(None)
            )
        ).all()

    def complete(self, order_id: str, serial: str, chain_pem: str) -> bool:
        result = self._session.execute(
            update(AcmeOrderRow)
            .where(AcmeOrderRow.id == order_id, AcmeOrderRow.status == OrderStatus.PROCESSING.value)
            .values(
                status=OrderStatus.VALID.value,
                certificate_serial=serial,
                certificate_chain=chain_pem,
                processing_since=None,
            )
        )
        return rowcount(result) == 1

    def find_by_certificate(self, serial: str) -> Order | None:
        row = self._session.execute(
            select(_ORDERS).where(_ORDERS.c.certificate_serial == serial).limit(1)
        ).first()
        return self._build(row) if row else None

    def replacing(self, cert_id: str) -> Sequence[Order]:
        rows = self._session.execute(select(_ORDERS).where(_ORDERS.c.replaces == cert_id)).all()
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

    def overrides(self) -> Sequence[RenewalOverride]:
        order = (AcmeRenewalOverrideRow.set_at.desc(), AcmeRenewalOverrideRow.serial)
        return [
            self._override(r) for r in self._session.scalars(select(AcmeRenewalOverrideRow).order_by(*order))
        ]

    def clear_override(self, serial: str) -> bool:
        result = self._session.execute(
            delete(AcmeRenewalOverrideRow).where(AcmeRenewalOverrideRow.serial == serial)
        )
        return rowcount(result) == 1


class SqlAcmeRepositories:
    """Every ACME repository over one session."""

    def __init__(self, session: Session, secrets: SecretBox | None = None) -> None:
        self.nonces = SqlNonceRepository(session)
        self.accounts = SqlAccountRepository(session)
        self.eab_keys = SqlEabKeyRepository(session, secrets)
        self.authorizations = SqlAuthorizationRepository(session)
        self.orders = SqlOrderRepository(session)
        self.renewals = SqlRenewalRepository(session)
