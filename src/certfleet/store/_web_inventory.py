"""The dashboard's inventory search: filters, keyset pagination and the CSV export's stream.
Every query is shaped so an index answers it (migration 0009_web adds the ones the sort
orders need), and nothing reads the DER column."""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Row,
    Select,
    String,
    bindparam,
    func,
    literal_column,
    select,
    tuple_,
)

from certfleet.errors import InvalidInput
from certfleet.inventory import Status
from certfleet.inventory.search import InventoryFilter, InventoryPage, InventoryRow, SortKey
from certfleet.store._database import Database
from certfleet.store._discovery_models import CertificateLocationRow
from certfleet.store._sql import LIKE_ESCAPE, escape_like
from certfleet.store.models import CertificateNameRow, CertificateRow, UtcDateTime

__all__ = ["InventorySearch"]

_ACTIVE = Status.ACTIVE.value
# The name-sort expression, spelled with a literal '' so PostgreSQL matches it to the
# expression index of migration 0009_web (a bound parameter would not match).
_NAME_SORT = func.coalesce(CertificateRow.common_name, literal_column("''"))
_HEX = frozenset("0123456789abcdef")


_ROW_COLUMNS = (
    CertificateRow.id,
    CertificateRow.serial,
    CertificateRow.fingerprint_sha256,
    CertificateRow.common_name,
    CertificateRow.subject,
    CertificateRow.sans_json,
    CertificateRow.issuer,
    CertificateRow.issuer_ca_id,
    CertificateRow.not_before,
    CertificateRow.not_after,
    CertificateRow.key_algorithm,
    CertificateRow.key_size,
    CertificateRow.source,
    CertificateRow.status,
    CertificateRow.team,
    CertificateRow.first_seen,
)


def _row(r: Row[Any]) -> InventoryRow:
    return InventoryRow(
        id=r.id,
        serial=r.serial,
        fingerprint_sha256=r.fingerprint_sha256,
        common_name=r.common_name,
        subject=r.subject,
        sans=tuple(json.loads(r.sans_json)),
        issuer=r.issuer,
        issuer_ca_id=r.issuer_ca_id,
        not_before=r.not_before,
        not_after=r.not_after,
        key_algorithm=r.key_algorithm,
        key_size=r.key_size,
        source=r.source,
        status=r.status,
        team=r.team,
        first_seen=r.first_seen,
    )


def _encode_cursor(sort: SortKey, value: object, row_id: int) -> str:
    if isinstance(value, dt.datetime):
        value = value.astimezone(dt.UTC).isoformat()
    raw = json.dumps({"s": sort.value, "v": value, "i": row_id}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str, sort: SortKey) -> tuple[object, int]:
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if raw["s"] != sort.value or not isinstance(raw["i"], int) or not 0 <= raw["i"] < 2**63:
            raise ValueError("cursor of another sort order")
        value: object = raw["v"]
        if sort is SortKey.EXPIRES:
            value = dt.datetime.fromisoformat(str(value))
            if value.tzinfo is None:
                raise ValueError("naive time")
        elif sort is SortKey.NAME and not isinstance(value, str):
            raise ValueError("name cursor without a name")
        return value, raw["i"]
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidInput("malformed pagination cursor (the sort order changed?)") from exc


class InventorySearch:
    _database: Database
    _postgresql: bool

    # -- inventory ---------------------------------------------------------------------

    def _name_prefix(self, prefix: str) -> ColumnElement[bool]:
        if self._postgresql:  # LIKE 'abc%' through the text_pattern_ops index
            return CertificateNameRow.name.like(escape_like(prefix) + "%", escape=LIKE_ESCAPE)
        # SQLite's LIKE ignores case and so cannot use a plain index; names are stored in
        # lower case, so a range on the binary collation is the exact prefix match.
        upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        return (CertificateNameRow.name >= prefix) & (CertificateNameRow.name < upper)

    def _conditions(self, f: InventoryFilter, now: dt.datetime) -> list[ColumnElement[bool]]:
        c = CertificateRow
        where: list[ColumnElement[bool]] = []
        if f.status is Status.EXPIRED:
            where += [c.status == _ACTIVE, c.not_after < now]
        elif f.status is Status.ACTIVE:
            where += [c.status == _ACTIVE, c.not_after >= now]
        elif f.status is not None:
            where.append(c.status == f.status.value)
        if f.expiring_days is not None:
            where += [
                c.status == _ACTIVE,
                c.not_after >= now,
                c.not_after <= now + dt.timedelta(days=f.expiring_days),
            ]
        if f.expires_after is not None:
            where.append(c.not_after >= f.expires_after)
        if f.expires_before is not None:
            where.append(c.not_after < f.expires_before)
        if f.team is not None:
            where.append(c.team == f.team)
        if f.issuer:
            is_ca_id = len(f.issuer) == 16 and set(f.issuer) <= _HEX
            where.append(c.issuer_ca_id == f.issuer if is_ca_id else c.issuer == f.issuer)
        if f.key_algorithm:
            where.append(c.key_algorithm == f.key_algorithm)
        if f.key_size is not None:
            where.append(c.key_size == f.key_size)
        if f.source is not None:
            where.append(c.source == f.source.value)
        if f.text:
            where.append(self._text_condition(f.text))
        if f.location:
            loc = CertificateLocationRow
            where.append(
                c.id.in_(
                    select(loc.certificate_id).where(
                        loc.gone_at.is_(None),
                        func.lower(loc.location).like(
                            f"%{escape_like(f.location.lower())}%", escape=LIKE_ESCAPE
                        ),
                    )
                )
            )
        return where

    def _text_condition(self, raw: str) -> ColumnElement[bool]:
        text = raw.strip().lower()
        compact = text.replace(":", "")
        if len(compact) == 64 and set(compact) <= _HEX:
            return CertificateRow.fingerprint_sha256 == compact
        # An uncorrelated IN lets both planners start from the names index.
        by_name = CertificateRow.id.in_(
            select(CertificateNameRow.certificate_id).where(self._name_prefix(text))
        )
        if 0 < len(compact) <= 40 and set(compact) <= _HEX:
            return by_name | (CertificateRow.serial == (compact.lstrip("0") or "0"))
        return by_name

    def _sorted(self, f: InventoryFilter, now: dt.datetime) -> Select[*tuple[Any, ...]]:
        stmt: Select[*tuple[Any, ...]] = select(*_ROW_COLUMNS).where(*self._conditions(f, now))
        key = self._sort_expression(f.sort)
        order: list[ColumnElement[Any]] = (
            [key.desc(), CertificateRow.id.desc()] if f.descending else [key.asc(), CertificateRow.id.asc()]
        )
        if f.sort is SortKey.SEEN:
            order = order[1:]
        return stmt.order_by(*order)

    @staticmethod
    def _sort_expression(sort: SortKey) -> ColumnElement[Any]:
        if sort is SortKey.EXPIRES:
            return CertificateRow.not_after.expression
        if sort is SortKey.NAME:
            return _NAME_SORT
        return CertificateRow.id.expression

    def _after(self, f: InventoryFilter, cursor: str) -> ColumnElement[bool]:
        value, row_id = _decode_cursor(cursor, f.sort)
        if f.sort is SortKey.SEEN:
            return CertificateRow.id < row_id if f.descending else CertificateRow.id > row_id
        value_type = UtcDateTime() if f.sort is SortKey.EXPIRES else String()
        left = tuple_(self._sort_expression(f.sort), CertificateRow.id)
        right = tuple_(bindparam(None, value, type_=value_type), bindparam(None, row_id, type_=Integer()))
        return left < right if f.descending else left > right

    def _cursor_for(self, f: InventoryFilter, row: InventoryRow) -> str:
        value: object = row.id
        if f.sort is SortKey.EXPIRES:
            value = row.not_after
        elif f.sort is SortKey.NAME:
            value = row.common_name or ""
        return _encode_cursor(f.sort, value, row.id)

    def inventory_page(
        self, f: InventoryFilter, now: dt.datetime, *, limit: int, cursor: str | None = None
    ) -> InventoryPage:
        """One page in the filter's sort order, and the cursor of the next one (None on the
        last page): keyset pagination, so page 2,000 costs what page 1 costs."""
        stmt = self._sorted(f, now)
        if cursor:
            stmt = stmt.where(self._after(f, cursor))
        with self._database.session(read_only=True) as s:
            rows = [_row(r) for r in s.execute(stmt.limit(limit + 1)).all()]
        more = len(rows) > limit
        rows = rows[:limit]
        return InventoryPage(rows, self._cursor_for(f, rows[-1]) if more and rows else None)

    def inventory_count(self, f: InventoryFilter, now: dt.datetime, *, cap: int) -> int:
        """How many rows match, counting no further than ``cap + 1`` (a count of a million
        rows would cost more than the page itself)."""
        inner = select(CertificateRow.id).where(*self._conditions(f, now)).limit(cap + 1).subquery()
        with self._database.session(read_only=True) as s:
            return int(s.scalar(select(func.count()).select_from(inner)) or 0)

    def inventory_stream(
        self, f: InventoryFilter, now: dt.datetime, *, chunk: int = 2000
    ) -> Iterator[InventoryRow]:
        """Every matching row in order, read page by page (a short transaction each), so an
        export of a million rows holds neither memory nor a long transaction."""
        cursor: str | None = None
        while True:
            page = self.inventory_page(f, now, limit=chunk, cursor=cursor)
            yield from page.rows
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def certificate_id(self, fingerprint_sha256: str) -> int | None:
        with self._database.session(read_only=True) as s:
            return s.scalar(
                select(CertificateRow.id).where(CertificateRow.fingerprint_sha256 == fingerprint_sha256)
            )
