"""A synthetic inventory bulk-loaded straight in SQL, shared by the query-plan tests and
bench/dashboard.py (a million rows through the ORM would take minutes).

Row g (1..rows): one SAN h<g>.example.com; team-<g % 200>; 3 issuers; 1 % revoked, 1 %
superseded, else active; notAfter spread from 30 days before ``now`` to two years after (about
4 % expired, 1.4 % within a week); every 4th key RSA-2048, else P-256; every 5th discovered.
Loading follows the usual bulk recipe: drop the secondary indexes, insert, rebuild, analyse.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import psycopg
from sqlalchemy import text

from certfleet.store import Database

__all__ = ["TABLES", "load_postgresql", "load_sqlite"]

_COLUMNS = (
    "serial, fingerprint_sha256, subject, common_name, sans_json, issuer, issuer_ca_id, not_before, "
    "not_after, key_algorithm, key_size, signature_algorithm, profile, source, status, team, tags_json, "
    "first_seen, last_seen, der"
)
_STATUS = "CASE WHEN g % 100 = 0 THEN 'revoked' WHEN g % 100 = 1 THEN 'superseded' ELSE 'active' END"
_KEY = "CASE WHEN g % 4 = 0 THEN 'rsa' ELSE 'ec' END, CASE WHEN g % 4 = 0 THEN 2048 ELSE 256 END"
_SOURCE = "CASE WHEN g % 5 = 0 THEN 'discovered' ELSE 'issued' END"
_PG_LOAD = f"""
INSERT INTO certificates ({_COLUMNS})
SELECT to_hex(g), lpad(to_hex(g), 64, '0'), 'CN=h' || g || '.example.com', 'h' || g || '.example.com',
       '["h' || g || '.example.com"]', 'CN=Issuing CA ' || (g % 3), 'ca' || (g % 3),
       %(now)s - interval '30 days',
       %(now)s + ((g % 730) - 30) * interval '1 day' + (g % 86400) * interval '1 second',
       {_KEY}, 'ecdsa-with-SHA256', 'tls-server', {_SOURCE}, {_STATUS}, 'team-' || (g % 200), '[]',
       %(now)s, %(now)s, '\\x00'::bytea
FROM generate_series(1, %(rows)s) AS g
""".replace(" % ", " %% ")  # psycopg placeholders: a literal modulo operator is doubled
_NAMES = "INSERT INTO certificate_names (certificate_id, name) SELECT id, common_name FROM certificates"
# The tables the loader fills, as an SQL list.
TABLES = "('certificates', 'certificate_names')"


def _sqlite_load(rows: int, now: dt.datetime) -> str:
    # SQLAlchemy keeps SQLite datetimes as 'YYYY-MM-DD HH:MM:SS.ffffff' text in UTC.
    day0 = (now - dt.timedelta(days=30)).strftime("%Y-%m-%d %H:%M:%S")
    stamp = now.strftime("%Y-%m-%d %H:%M:%S")
    return f"""
WITH RECURSIVE n(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM n WHERE g < {int(rows)})
INSERT INTO certificates ({_COLUMNS})
SELECT printf('%x', g), printf('%064x', g), 'CN=h' || g || '.example.com', 'h' || g || '.example.com',
       '["h' || g || '.example.com"]', 'CN=Issuing CA ' || (g % 3), 'ca' || (g % 3),
       '{day0}.000000',
       datetime('{stamp}', ((g % 730) - 30) || ' days', (g % 86400) || ' seconds') || '.000000',
       {_KEY}, 'ecdsa-with-SHA256', 'tls-server', {_SOURCE}, {_STATUS}, 'team-' || (g % 200), '[]',
       '{stamp}.000000', '{stamp}.000000', x'00'
FROM n
"""


def load_sqlite(path: Path, rows: int, now: dt.datetime) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=OFF")  # a scratch database: nothing to recover
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA cache_size=-400000")
        indexes = conn.execute(
            f"SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name IN {TABLES} "
            "AND sql IS NOT NULL"
        ).fetchall()
        conn.execute("BEGIN")
        for name, _ in indexes:
            conn.execute(f'DROP INDEX "{name}"')
        conn.execute(_sqlite_load(rows, now))
        conn.execute(_NAMES)
        for _, ddl in indexes:
            conn.execute(ddl)
        conn.execute("COMMIT")
        conn.execute("PRAGMA analysis_limit=2000")  # sampled statistics, as SQLite recommends
        conn.execute("ANALYZE")
        conn.execute("PRAGMA journal_mode=WAL")
    finally:
        conn.close()


def load_postgresql(database: Database, rows: int, now: dt.datetime) -> None:
    with database.engine.begin() as conn:
        raw = conn.connection.driver_connection
        assert isinstance(raw, psycopg.Connection)
        raw.execute("SET LOCAL maintenance_work_mem = '256MB'")
        indexes = raw.execute(
            f"SELECT indexname, indexdef FROM pg_indexes WHERE tablename IN {TABLES} "
            "AND schemaname = current_schema() AND indexdef NOT LIKE 'CREATE UNIQUE%'"
        ).fetchall()
        foreign_keys = raw.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = 'certificate_names'::regclass AND contype = 'f'"
        ).fetchall()
        for name, _ in foreign_keys:
            raw.execute(f'ALTER TABLE certificate_names DROP CONSTRAINT "{name}"')
        for name, _ in indexes:
            raw.execute(f'DROP INDEX "{name}"')
        raw.execute(_PG_LOAD, {"now": now, "rows": rows})
        raw.execute(_NAMES)
        for _, ddl in indexes:
            raw.execute(ddl)
        for name, definition in foreign_keys:
            raw.execute(f'ALTER TABLE certificate_names ADD CONSTRAINT "{name}" {definition}')
    # VACUUM as autovacuum soon would: it sets the visibility map, without which PostgreSQL
    # cannot answer from an index alone (every "index-only" scan would visit the table).
    with database.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE certificates"))
        conn.execute(text("VACUUM ANALYZE certificate_names"))
