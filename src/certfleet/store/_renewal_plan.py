"""A first plan of a large SQLite inventory, computed inside the database.

Most certificates need nothing but the renewal-time rule (no tags, no ACME order, no ARI
override). For those, one ``INSERT ... SELECT`` per page with the rule registered as a SQLite
function (``lifecycle.planning.renewal_time``, the one definition) writes the jobs without the
rows coming back to Python: what remains above the bare read-and-compute is the function call
and the B-tree writes. The other certificates of the page (and every page on PostgreSQL, which
has no Python functions) go through ``unplanned`` and ``add`` as before.

A first plan of a large inventory (no job yet) is a bulk load: each page's jobs land all over
the ``(state, due_at)`` index (renewal times are spread across the fleet's lifetimes), so
every page rewrote most of its leaves, and the WAL with them, once the index grew past a few
pages: more than half of a million-certificate plan. ``begin_bulk_load`` drops that index
for the load and ``end_bulk_load`` builds it once at the end (a sort, not a million random
inserts), the usual way to bulk-load a B-tree. Nothing can be leased before the first jobs
exist, so nothing waits on the missing index but the planner's own pages. A planner killed
mid-load leaves the index dropped until the next full sweep, which rebuilds it first.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection, TextClause, bindparam, text

from certfleet.inventory import Source, Status
from certfleet.lifecycle.jobs import MANAGED_SOURCES, JobState
from certfleet.lifecycle.planning import renewal_time

__all__ = ["begin_bulk_load", "end_bulk_load", "plan_in_sqlite", "roomy_cache", "unplanned_page"]

_FUNCTION = "certfleet_renew_at"


def _text(sql: str) -> TextClause:
    return text(sql).bindparams(bindparam("managed", expanding=True))


_UNPLANNED = (
    "FROM certificates c WHERE c.status = :active AND c.source IN :managed "
    "AND c.issuer_ca_id IS NOT NULL AND c.id > :after "
    "AND NOT EXISTS (SELECT 1 FROM renewal_jobs j WHERE j.certificate_id = c.id)"
)
_PAGE = _text(f"SELECT count(*), max(id) FROM (SELECT c.id {_UNPLANNED} ORDER BY c.id LIMIT :limit) AS page")
# MATERIALIZED: the function runs once a row, not again for the ORDER BY. Sorted by renewal
# time, the rows reach the (state, due_at) index in order. ``WHERE true`` keeps SQLite from
# reading ON CONFLICT as a join constraint.
_INSERT = _text(
    f"WITH page AS MATERIALIZED (SELECT c.id, c.serial, "
    f"{_FUNCTION}(c.not_before, c.not_after, c.serial) AS at {_UNPLANNED} AND c.id <= :upto "
    "AND c.source = :issued AND c.tags_json = '[]' "
    "AND NOT EXISTS (SELECT 1 FROM acme_orders o WHERE o.certificate_serial = c.serial) "
    "AND NOT EXISTS (SELECT 1 FROM acme_renewal_overrides w WHERE w.serial = c.serial)) "
    "INSERT INTO renewal_jobs (certificate_id, serial, state, renew_at, due_at, planned_at, "
    "attempts, failures, last_error, updated_at) "
    "SELECT id, serial, :scheduled, at, at, :planned, 0, 0, NULL, :planned FROM page WHERE true "
    "ORDER BY at ON CONFLICT (certificate_id) DO NOTHING"
)
# How many certificates wait for a job, up to :limit, when none has one yet (else 0): the
# count runs only when the job table is empty (SQLite evaluates CASE lazily).
_BULK = _text(
    "SELECT CASE WHEN EXISTS (SELECT 1 FROM renewal_jobs) THEN 0 "
    f"ELSE (SELECT count(*) FROM (SELECT c.id {_UNPLANNED} LIMIT :limit)) END"
)
_PLAN_CACHE_KIB = 64 * 1024
# The index as revision 0007_lifecycle creates it (the model's ``ix_renewal_jobs_state_due``).
_DUE_INDEX = "ix_renewal_jobs_state_due"
_CREATE_DUE_INDEX = f"CREATE INDEX IF NOT EXISTS {_DUE_INDEX} ON renewal_jobs (state, due_at)"
_PARSE = dt.datetime.fromisoformat
_UTC = dt.UTC


def _renew_at(not_before: str, not_after: str, serial: str) -> str:
    # Naive UTC text in, naive UTC text out: what UtcDateTime stores in SQLite.
    at = renewal_time(_PARSE(not_before).replace(tzinfo=_UTC), _PARSE(not_after).replace(tzinfo=_UTC), serial)
    return at.astimezone(_UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


@contextlib.contextmanager
def roomy_cache(connection: Connection) -> Iterator[None]:
    """A page of jobs touches thousands of leaves of the (state, due_at) index; in SQLite's
    default 2 MiB cache they spill to the WAL before the commit writes them again. Room for
    the page's dirty leaves while it is written, the default right after."""
    previous = connection.exec_driver_sql("PRAGMA cache_size").scalar()
    connection.exec_driver_sql(f"PRAGMA cache_size = -{_PLAN_CACHE_KIB}")
    try:
        yield
    finally:
        connection.exec_driver_sql(f"PRAGMA cache_size = {int(previous or -2000)}")


def _params(after_id: int, **more: Any) -> dict[str, Any]:
    # Managed: every source of MANAGED_SOURCES. Plain (scheduled by _INSERT): issued ones only;
    # SCEP and EST certificates are renewed by their devices (lifecycle.jobs.CLIENT_ENROLLED).
    sources = {"managed": list(MANAGED_SOURCES), "issued": Source.ISSUED.value}
    return {"active": Status.ACTIVE.value, **sources, "after": after_id, **more}


def unplanned_page(connection: Connection, after_id: int, limit: int) -> tuple[int, int]:
    """How many managed certificates without a job follow ``after_id`` (at most ``limit``),
    and the id of the last of them (0 when none)."""
    count, last = connection.execute(_PAGE, _params(after_id, limit=limit)).one()
    return int(count), int(last or 0)


def plan_in_sqlite(connection: Connection, after_id: int, upto_id: int, planned_at: str) -> int:
    """Insert the scheduled jobs of the plain certificates with ids in (after, upto]; return
    how many were inserted (a certificate another planner got to first is skipped)."""
    raw = connection.connection.dbapi_connection
    assert raw is not None
    raw.create_function(_FUNCTION, 3, _renew_at, deterministic=True)
    with roomy_cache(connection):
        connection.execute(
            _INSERT,
            _params(after_id, upto=upto_id, scheduled=JobState.SCHEDULED.value, planned=planned_at),
        )
    # Python's sqlite3 counts rows only for statements that start with INSERT, not WITH.
    return int(connection.exec_driver_sql("SELECT changes()").scalar_one())


def begin_bulk_load(connection: Connection, min_rows: int) -> bool:
    """On SQLite, when no certificate has a job yet and at least ``min_rows`` are waiting for
    one, drop the ``(state, due_at)`` index for the load and return True (``end_bulk_load``
    builds it). Otherwise make sure the index exists (a load killed before its end left it
    dropped) and return False."""
    if connection.dialect.name != "sqlite":
        return False
    if connection.execute(_BULK, _params(0, limit=min_rows)).scalar_one() >= min_rows:
        connection.exec_driver_sql(f"DROP INDEX IF EXISTS {_DUE_INDEX}")
        return True
    connection.exec_driver_sql(_CREATE_DUE_INDEX)  # a no-op while it exists
    return False


def end_bulk_load(connection: Connection) -> None:
    """Build the index ``begin_bulk_load`` dropped (once, over every job loaded)."""
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql(_CREATE_DUE_INDEX)
