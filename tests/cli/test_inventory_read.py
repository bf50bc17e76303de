"""`certfleet inventory list` reads without the ORM (certfleet.store's ``read_summaries``: SQL
text through sqlite3 on a SQLite file, SQLAlchemy Core elsewhere). Its filters are written a
second time as SQL, so they are checked here against the repository's, filter by filter, on a
synthetic inventory of a few pages, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import pytest

from certfleet.errors import ConfigurationError
from certfleet.inventory import CertificateQuery, CertificateSummary, Status
from certfleet.store import Database, SqlCertificateRepository, read_summaries
from tests.inventory.synthetic import load_postgresql, load_sqlite

ROWS = 2_345  # three pages of 1,000
NOW = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)
# The clock the listing runs at: a little later than the load, so that rows sit on either
# side of every boundary (notAfter is spread over two years, one second apart per row).
LATER = NOW + dt.timedelta(days=3, seconds=1234, microseconds=5)

FILTERS = {
    "everything": CertificateQuery(),
    "active": CertificateQuery(status=Status.ACTIVE),
    "expired": CertificateQuery(status=Status.EXPIRED),
    "revoked": CertificateQuery(status=Status.REVOKED),
    "superseded": CertificateQuery(status=Status.SUPERSEDED),
    "expiring-7": CertificateQuery(expiring_within=dt.timedelta(days=7)),
    "expiring-0": CertificateQuery(expiring_within=dt.timedelta(0)),
    "active-and-expiring": CertificateQuery(status=Status.ACTIVE, expiring_within=dt.timedelta(days=90)),
    "team": CertificateQuery(team="team-7"),
    "issuer-dn-any-case": CertificateQuery(issuer="issuing ca 2"),
    "issuer-ca-id": CertificateQuery(issuer="ca1"),
    "issuer-like-wildcards-literal": CertificateQuery(issuer="Issuing_CA%"),
    "san": CertificateQuery(san=" H17.Example.COM "),
    "team-and-status": CertificateQuery(team="team-42", status=Status.ACTIVE),
    "after-id": CertificateQuery(after_id=1_500),
    "small-pages": CertificateQuery(status=Status.ACTIVE, limit=7),
}


@pytest.fixture
def database_url(db_url: str, tmp_path: Path) -> str:
    """A migrated database holding ROWS synthetic certificates."""
    (tmp_path / "data").mkdir(exist_ok=True)
    database = Database(db_url)
    try:
        database.upgrade()
        if database.dialect == "postgresql":
            load_postgresql(database, ROWS, NOW)
    finally:
        database.dispose()
    if db_url.startswith("sqlite"):
        load_sqlite(tmp_path / "data" / "certfleet.db", ROWS, NOW)  # the db_url fixture's file
    return db_url


def _through_the_repository(url: str, query: CertificateQuery) -> list[CertificateSummary]:
    """Every page the ORM repository gives, as `inventory list` read them before."""
    database = Database(url)
    found: list[CertificateSummary] = []
    try:
        with database.session(read_only=True) as session:
            repository = SqlCertificateRepository(session)
            page_query = CertificateQuery(**{**query.__dict__, "limit": query.limit or 1000})
            while page := repository.summaries(page_query, LATER):
                found.extend(page)
                if len(page) < (page_query.limit or 0):
                    break
                page_query = CertificateQuery(**{**page_query.__dict__, "after_id": page[-1].id})
    finally:
        database.dispose()
    return found


@pytest.mark.parametrize("name", list(FILTERS))
def test_the_light_read_selects_what_the_repository_selects(database_url: str, name: str) -> None:
    query = FILTERS[name]

    expected = _through_the_repository(database_url, query)
    got = read_summaries(database_url, query, LATER)

    assert got == expected
    if name not in ("issuer-like-wildcards-literal", "expiring-0"):
        assert got, "a filter that selects nothing proves little"
    assert all(s.not_after.tzinfo is dt.UTC for s in got)


def test_every_page_is_read(database_url: str) -> None:
    got = read_summaries(database_url, CertificateQuery(), LATER)

    assert [s.id for s in got] == sorted(s.id for s in got)
    assert len(got) == ROWS


def test_a_sqlite_url_with_options_reads_the_same_through_sqlalchemy(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'certfleet.db'}"
    database = Database(url)
    database.upgrade()
    database.dispose()
    load_sqlite(tmp_path / "certfleet.db", 50, NOW)

    assert read_summaries(f"{url}?timeout=5", CertificateQuery(), LATER) == read_summaries(
        url, CertificateQuery(), LATER
    )


def test_a_missing_sqlite_file_is_an_error_not_a_new_database(tmp_path: Path) -> None:
    missing = tmp_path / "nothing-here.db"

    with pytest.raises(ConfigurationError, match="cannot open database"):
        read_summaries(f"sqlite:///{missing}", CertificateQuery(), LATER)
    assert not missing.exists()


def test_a_database_without_the_schema_is_an_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()

    with pytest.raises(ConfigurationError, match="no such table"):
        read_summaries(f"sqlite:///{empty}", CertificateQuery(), LATER)
