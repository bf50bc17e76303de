"""The inventory listing read without the ORM: one SELECT per page of the few columns a
listing shows, as plain rows.

``certfleet inventory list`` is a fresh process each time, so what it imports is most of what
it costs. On a SQLite file it reads through the standard library's sqlite3 (importing
SQLAlchemy alone takes about 0.3 s, half the command's budget; the ORM and the models as much
again); any other database (PostgreSQL) through SQLAlchemy Core with a textual statement: no
ORM, no models, no cryptography. The filters are :class:`SqlCertificateRepository`'s
(``_filtered``) written as SQL: tests/cli/test_inventory_read.py checks that both select the
same rows for every filter, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from certfleet.errors import ConfigurationError
from certfleet.inventory import MAX_PAGE_SIZE, CertificateQuery, CertificateSummary, Source, Status

__all__ = ["read_summaries"]

_COLUMNS = "id, serial, subject, sans_json, issuer, not_after, source, status, team"
_ACTIVE = Status.ACTIVE.value
# The escape character of every LIKE pattern (as certfleet.store._sql.LIKE_ESCAPE).
_ESCAPE = "\\"

# Runs one page's statement with its parameters, returning the rows as tuples.
_Execute = Callable[[str, dict[str, Any]], Iterable[Sequence[Any]]]


def _sqlite_file(url: str) -> str | None:
    """The file of a plain SQLite URL (``sqlite:///path``), else None (in memory, URL query
    options or percent-escapes: those go through SQLAlchemy, which reads them as it always has)."""
    scheme, sep, path = url.partition(":///")
    if not sep or scheme not in ("sqlite", "sqlite+pysqlite") or not path:
        return None
    if path == ":memory:" or any(c in path for c in "?%#"):
        return None
    return path


def _sqlite_stamp(moment: dt.datetime) -> str:
    # What UtcDateTime stores on SQLite: naive UTC text with microseconds, compared as text.
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _statement(query: CertificateQuery, now: dt.datetime, *, sqlite: bool) -> tuple[str, dict[str, Any]]:
    """The SELECT of one page and its parameters (``:name`` placeholders)."""
    where: list[str] = []
    params: dict[str, Any] = {"active": _ACTIVE}

    def stamp(moment: dt.datetime) -> Any:
        return _sqlite_stamp(moment) if sqlite else moment

    # "expired" is derived as in CertificateRecord.effective_status: stored as active and
    # past notAfter (RFC 5280 4.1.2.5: valid through notAfter inclusive).
    if query.status is Status.EXPIRED:
        where.append("status = :active AND not_after < :now")
    elif query.status is Status.ACTIVE:
        where.append("status = :active AND not_after >= :now")
    elif query.status is not None:
        where.append("status = :status")
        params["status"] = query.status.value
    if query.expiring_within is not None:
        where.append("not_after >= :now AND not_after <= :until AND status = :active")
        params["until"] = stamp(now + query.expiring_within)
    if query.status in (Status.EXPIRED, Status.ACTIVE) or query.expiring_within is not None:
        params["now"] = stamp(now)
    if query.team is not None:
        where.append("team = :team")
        params["team"] = query.team
    if query.issuer:
        escaped = query.issuer.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        # SQLAlchemy's ilike: ILIKE on PostgreSQL, lower() LIKE lower() on SQLite.
        like = "lower(issuer) LIKE lower(:pattern)" if sqlite else "issuer ILIKE :pattern"
        where.append(f"(issuer_ca_id = :issuer OR {like} ESCAPE '{_ESCAPE}')")
        params["issuer"], params["pattern"] = query.issuer, f"%{escaped}%"
    if query.san:
        # An uncorrelated IN, as the repository's (both planners start from the name index).
        where.append("id IN (SELECT certificate_id FROM certificate_names WHERE name = :san)")
        params["san"] = query.san.strip().lower()
    if query.after_id is not None:
        where.append("id > :after_id")
        params["after_id"] = query.after_id
    sql = f"SELECT {_COLUMNS} FROM certificates"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY id"
    if query.limit is not None:
        sql += " LIMIT :limit"
        params["limit"] = query.limit
    return sql, params


@contextmanager
def _sqlite_reader(path: str) -> Iterator[_Execute]:
    # mode=rw: a missing file is an error, never a new empty database. A deferred BEGIN:
    # every page from one snapshot, and under WAL a reader never waits for the writer.
    uri = Path(path).absolute().as_uri() + "?mode=rw"
    try:
        with closing(sqlite3.connect(uri, uri=True, isolation_level=None)) as connection:
            connection.execute("BEGIN")
            yield lambda sql, params: connection.execute(sql, params).fetchall()
    except sqlite3.Error as exc:
        raise ConfigurationError(f"cannot open database: {exc}") from exc


@contextmanager
def _core_reader(url: str) -> Iterator[_Execute]:
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError, SQLAlchemyError
    from sqlalchemy.pool import NullPool

    try:
        engine = create_engine(url, poolclass=NullPool)
    except (SQLAlchemyError, ImportError, ValueError) as exc:
        raise ConfigurationError(f"cannot open database: {exc}") from exc
    try:
        with engine.connect() as connection:  # one transaction for every page
            yield lambda sql, params: connection.execute(text(sql), params).all()
    except OperationalError as exc:
        raise ConfigurationError(f"cannot open database: {exc.orig}") from exc
    finally:
        engine.dispose()


def _aware(value: Any) -> dt.datetime:
    """SQLite gives naive UTC text, PostgreSQL an aware datetime."""
    if isinstance(value, str):
        return dt.datetime.fromisoformat(value).replace(tzinfo=dt.UTC)
    assert isinstance(value, dt.datetime)
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def read_summaries(database_url: str, query: CertificateQuery, now: dt.datetime) -> list[CertificateSummary]:
    """Every certificate ``query`` selects, in id order, as :class:`CertificateSummary` (what
    :meth:`SqlCertificateRepository.summaries` gives for one page), read page by page by
    keyset (``query.limit`` rows a statement, default the largest page) in one transaction."""
    sqlite_file = _sqlite_file(database_url)
    sqlite = database_url.startswith("sqlite")
    reader = _sqlite_reader(sqlite_file) if sqlite_file else _core_reader(database_url)
    page_size = query.limit or MAX_PAGE_SIZE
    page_query = replace(query, limit=page_size)
    summaries: list[CertificateSummary] = []
    with reader as execute:
        while True:
            sql, params = _statement(page_query, now, sqlite=sqlite)
            rows = execute(sql, params)
            page = [
                CertificateSummary(
                    id=row_id,
                    serial=serial,
                    subject=subject,
                    sans=tuple(json.loads(sans_json)),
                    issuer=issuer,
                    not_after=_aware(not_after),
                    source=Source(source),
                    status=Status(status),
                    team=team,
                )
                for row_id, serial, subject, sans_json, issuer, not_after, source, status, team in rows
            ]
            summaries.extend(page)
            if len(page) < page_size:
                return summaries
            page_query = replace(page_query, after_id=page[-1].id)
