"""``certfleet db``: what the operator of one or several nodes on a database needs: apply
migrations (``upgrade``, one node at a time) and check a node against its database
(``check``: connectivity, schema version per migration branch, clock skew)."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from certfleet.cli._common import DataDirOption, DbOption, die, settings_for
from certfleet.cli._remote import local_only
from certfleet.errors import ConfigurationError
from certfleet.store import Database

if TYPE_CHECKING:
    from certfleet.config import Settings

app = typer.Typer(help="Database maintenance.", no_args_is_help=True)

# Clock skew between this node and the database. Nonces, leases, OCSP thisUpdate and
# certificates' notBefore are stamped by the node: a second is harmless, five are not.
WARN_SKEW_SECONDS = 1.0
MAX_SKEW_SECONDS = 5.0


class CheckFormat(StrEnum):
    TABLE = "table"
    JSON = "json"


@app.callback()
def _beside_the_data() -> None:
    local_only("db")


def _open(settings: Settings) -> Database:
    if settings.is_sqlite:
        settings.data_dir.root.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        return Database(settings.database_url, lock_wait_seconds=settings.server.sqlite_lock_wait_seconds)
    except ConfigurationError as exc:
        die(exc.detail)


@app.command("upgrade")
def upgrade(data_dir: DataDirOption = None, db: DbOption = None) -> None:
    """Apply pending migrations (on PostgreSQL one node at a time, under an advisory lock,
    each statement giving up a table lock it waits 2 s for: live traffic keeps flowing)."""
    settings = settings_for(data_dir, db)
    database = _open(settings)
    try:
        applied = database.upgrade()
        typer.echo(f"applied {', '.join(applied)}" if applied else "database is up to date")
        typer.echo(f"revision {', '.join(database.current_revisions())}")
    except ConfigurationError as exc:
        die(exc.detail)
    finally:
        database.dispose()


def _schema(database: Database) -> dict[str, Any]:
    current = database.current_revisions()
    known = database.known_revisions()
    branches = [
        {"head": head, "current": applied, "up_to_date": applied == head}
        for head, applied in database.branches()
    ]
    unknown = sorted(set(current) - known)  # a newer version migrated: this one is older
    pending = [b["head"] for b in branches if not b["up_to_date"]]
    status = "ok" if not pending and not unknown else "warn"
    return {
        "status": status,
        "current": list(current),
        "branches": branches,
        "pending": pending,
        "newer": unknown,
    }


def _clock(database: Database, warn: float, limit: float) -> dict[str, Any]:
    before, database_now, after = database.clock()
    round_trip = (after - before).total_seconds()
    skew = ((before + (after - before) / 2) - database_now).total_seconds()  # > 0: this node is ahead
    status = "fail" if abs(skew) > limit else "warn" if abs(skew) > warn else "ok"
    return {
        "status": status,
        "source": "clock_timestamp()" if database.dialect == "postgresql" else "this machine (SQLite)",
        "skew_seconds": round(skew, 6),
        "round_trip_seconds": round(round_trip, 6),
        "warn_seconds": warn,
        "limit_seconds": limit,
    }


def _nodes(database: Database, warn: float, limit: float) -> list[dict[str, Any]]:
    """Every node's last heartbeat (``nodes.heartbeat`` job): seen how long ago by the
    database's clock, and its skew then. A node silent for three beats is ``stale``."""
    from sqlalchemy.exc import SQLAlchemyError

    from certfleet.store._nodes import STALE_AFTER_SECONDS, node_beats

    if "0031_nodes" not in database.current_revisions():
        return []  # not migrated yet: no node has beaten
    try:
        beats = node_beats(database)
        _, database_now, _ = database.clock()
    except SQLAlchemyError:
        return []
    listed = []
    for beat in beats:
        age = (database_now - beat.last_seen_at).total_seconds()
        skew = abs(beat.clock_skew_seconds)
        status = "fail" if skew > limit else "warn" if skew > warn else "ok"
        listed.append(
            {
                "node": beat.node_id,
                "version": beat.version,
                "last_seen_seconds_ago": round(age, 1),
                "clock_skew_seconds": round(beat.clock_skew_seconds, 6),
                "status": "stale" if age > STALE_AFTER_SECONDS else status,
            }
        )
    return listed


def _report(database: Database, warn: float, limit: float) -> dict[str, Any]:
    url = database.engine.url
    where = url.render_as_string(hide_password=True)
    reason = database.unavailable()
    report: dict[str, Any] = {"database": {"url": where, "dialect": database.dialect}}
    if reason is not None:
        report["database"].update(status="fail", reason=reason)
        report["status"] = "fail"
        return report
    report["database"]["status"] = "ok"
    report["schema"] = _schema(database)
    report["clock"] = _clock(database, warn, limit)
    report["nodes"] = _nodes(database, warn, limit)
    statuses = {report["database"]["status"], report["schema"]["status"], report["clock"]["status"]}
    statuses |= {"warn" for n in report["nodes"] if n["status"] in ("warn", "fail")}  # another node's clock
    report["status"] = next(s for s in ("fail", "warn", "ok") if s in statuses)
    return report


def _table(report: dict[str, Any]) -> str:
    lines = [f"database     {report['database']['status']:<5} {report['database']['url']}"]
    if "reason" in report["database"]:
        lines.append(f"             {report['database']['reason']}")
    if "schema" in report:
        schema = report["schema"]
        summary = "up to date" if not schema["pending"] else f"{len(schema['pending'])} branch(es) behind"
        if schema["newer"]:
            summary += f"; migrated by a newer version: {', '.join(schema['newer'])}"
        lines.append(f"schema       {schema['status']:<5} {summary}")
        for branch in schema["branches"]:
            mark = "" if branch["up_to_date"] else "  (pending)"
            lines.append(f"  {branch['head']:<28} applied {branch['current'] or '-'}{mark}")
        clock = report["clock"]
        lines.append(
            f"clock skew   {clock['status']:<5} {clock['skew_seconds']:+.3f} s against {clock['source']} "
            f"(round trip {clock['round_trip_seconds'] * 1000:.1f} ms; "
            f"warn above {clock['warn_seconds']:g} s, fail above {clock['limit_seconds']:g} s)"
        )
        for node in report["nodes"]:
            lines.append(
                f"node         {node['status']:<5} {node['node']} {node['version']}: skew "
                f"{node['clock_skew_seconds']:+.3f} s, seen {node['last_seen_seconds_ago']:g} s ago"
            )
    lines.append(f"status       {report['status']}")
    return "\n".join(lines) + "\n"


@app.command("check")
def check(
    data_dir: DataDirOption = None,
    db: DbOption = None,
    fmt: Annotated[CheckFormat, typer.Option("--format", help="table or json.")] = CheckFormat.TABLE,
    warn_skew: Annotated[
        float, typer.Option("--warn-skew", min=0.0, help="Warn when this node's clock is off by more (s).")
    ] = WARN_SKEW_SECONDS,
    max_skew: Annotated[
        float, typer.Option("--max-skew", min=0.0, help="Fail (exit 1) when off by more than this (s).")
    ] = MAX_SKEW_SECONDS,
) -> None:
    """Check this node against its database: connectivity, the schema's revision on each
    migration branch against this version's heads, and this machine's clock against the
    database's. Exit 0 when nothing failed (warnings included), 1 when the database is out of
    reach or the clock is off by more than --max-skew."""
    if warn_skew > max_skew:
        die("--warn-skew must not be larger than --max-skew")
    database = _open(settings_for(data_dir, db))
    try:
        report = _report(database, warn_skew, max_skew)
    except ConfigurationError as exc:  # lost between two queries
        where = database.engine.url.render_as_string(hide_password=True)
        report = {"database": {"url": where, "status": "fail", "reason": exc.detail}, "status": "fail"}
    finally:
        database.dispose()
    if fmt is CheckFormat.JSON:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
    else:
        sys.stdout.write(_table(report))
    if report["status"] == "fail":
        raise typer.Exit(1)
