"""Two real ``certfleet serve`` processes on one real PostgreSQL renew every due certificate
exactly once, and a job leased by a worker that died is renewed after its lease expires."""

from __future__ import annotations

import datetime as dt
import json
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text

from certfleet.app import Platform
from certfleet.lifecycle.jobs import Lease
from certfleet.store import Database
from certfleet.x509 import KeyType, generate_private_key
from tests.conftest import PG_DEFAULT, PG_URL_ENV, FakeClock, make_platform
from tests.integration.test_serve import Server
from tests.lifecycle.fleet import issue

pytestmark = pytest.mark.integration

DUE_NOW = 30  # issued 3 days ago for 3 days: due at half their life
DUE_LATER = 30  # 90-day certificates whose ARI window is moved to a few seconds ahead
CRASHED = 4  # of the DUE_NOW ones, leased by a worker that "died"
DEAD_LEASE_SECONDS = 8
DEADLINE_SECONDS = 120


@dataclass
class NamedServer(Server):
    """A ``serve`` sharing its data directory with another one: its own log files."""

    name: str = "a"
    extra: list[str] = field(default_factory=list)

    def _log(self, stream: str) -> Path:
        return self.data_dir.parent / f"serve-{self.name}-{self.starts}.{stream}"


@pytest.fixture
def pg_url() -> Iterator[str]:
    import os

    base = os.environ.get(PG_URL_ENV) or PG_DEFAULT
    name = f"certfleet_renew_{secrets.token_hex(4)}"
    plain = base.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield base.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _processes(server: Server) -> set[str]:
    """The serve process and its workers."""
    assert server.process is not None
    pid = server.process.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return {str(pid), *children}


def _query(url: str, sql: str) -> list[tuple[object, ...]]:
    database = Database(url)
    try:
        with database.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql))]
    finally:
        database.dispose()


def _prepare(data_dir: Path, url: str) -> tuple[list[int], list[int], dt.datetime]:
    """The CA and DUE_NOW certificates made three days ago; CRASHED of them leased by a dead
    worker now. Returns (all due ids, crashed ids, when the dead lease ends)."""
    data_dir.mkdir(mode=0o700)
    (data_dir / "config.toml").write_text(
        "[lifecycle]\ninterval_seconds = 0.3\nlease_seconds = 60\nbatch_size = 3\n"
    )
    then = FakeClock(dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(days=3))
    platform = make_platform(data_dir, url, then)
    try:
        platform.authorities.initialize("Two", KeyType.EC_P256, actor="test")
        key = generate_private_key(KeyType.EC_P256)
        due = [issue(platform, f"due{i}.example.test", key=key, days=3).record.id for i in range(DUE_NOW)]
        then.set(dt.datetime.now(dt.UTC))
        platform.renewal.plan()
        until = then.now() + dt.timedelta(seconds=DEAD_LEASE_SECONDS)
        with platform.store.unit_of_work() as uow:
            crashed = uow.lifecycle.jobs.lease_due(
                then.now(), Lease("dead:1:x", secrets.token_hex(16), until), CRASHED
            )
    finally:
        platform.close()
    assert len(crashed) == CRASHED
    return [i for i in due if i is not None], [j.certificate_id for j in crashed], until


def _renew_later(data_dir: Path, url: str) -> tuple[list[int], dt.datetime]:
    """Certificates not due for two months, whose ARI window an operator moves to a few
    seconds from now: they fall due while both servers run."""
    clock = FakeClock(dt.datetime.now(dt.UTC))
    platform: Platform = make_platform(data_dir, url, clock)
    try:
        key = generate_private_key(KeyType.EC_P256)
        later = [issue(platform, f"later{i}.example.test", key=key, days=90).record for i in range(DUE_LATER)]
        start = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)
        with platform.store.unit_of_work() as uow:
            for record in later:
                uow.lifecycle.campaigns.set_ari_window(
                    record.serial, start, start + dt.timedelta(seconds=4), dt.datetime.now(dt.UTC), "test"
                )
    finally:
        platform.close()
    return [r.id for r in later if r.id is not None], start


def test_two_servers_renew_each_certificate_exactly_once(pg_url: str, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    due, crashed, lease_end = _prepare(data_dir, pg_url)
    servers = [NamedServer(data_dir, name=n, extra=["--db", pg_url]) for n in ("a", "b")]
    try:
        for server in servers:
            server.start()
        # The node's renewal job runs in each server's worker 0, a child of the serve process.
        node_pids = [_processes(server) for server in servers]
        later, window_start = _renew_later(data_dir, pg_url)
        expected = set(due) | set(later)
        deadline = time.monotonic() + DEADLINE_SECONDS
        while True:
            replaced = {r[0] for r in _query(pg_url, "SELECT supersedes_id FROM certificate_lineage")}
            if expected <= replaced or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert expected <= replaced, f"not renewed: {sorted(expected - replaced)}"
    finally:
        codes = [s.stop() for s in servers if s.process is not None]
    assert codes == [0, 0]
    # Exactly once: one successor each, and no other certificate for the name
    per_old = _query(pg_url, "SELECT supersedes_id, count(*) FROM certificate_lineage GROUP BY supersedes_id")
    assert all(n == 1 for _, n in per_old) and len(per_old) == len(expected)
    per_name = _query(
        pg_url,
        "SELECT n.name, count(*) FROM certificate_names n JOIN certificates c ON c.id = n.certificate_id "
        "WHERE n.name LIKE 'due%' OR n.name LIKE 'later%' GROUP BY n.name",
    )
    assert sorted(n for _, n in per_name) == [2] * len(expected)
    assert _query(pg_url, "SELECT count(*) FROM certificates WHERE status = 'revoked'") == [(0,)]
    # The dead worker's jobs waited for its lease, then were renewed on the second attempt
    for certificate_id in crashed:
        [(attempts, state)] = _query(
            pg_url, f"SELECT attempts, state FROM renewal_jobs WHERE certificate_id = {certificate_id}"
        )
        [(first_seen,)] = _query(
            pg_url,
            "SELECT c.first_seen FROM certificate_lineage l JOIN certificates c ON c.id = l.certificate_id "
            f"WHERE l.supersedes_id = {certificate_id}",
        )
        assert (attempts, state) == (2, "done")
        assert first_seen >= lease_end  # type: ignore[operator]
    # The others were renewed inside the ARI window set for them, not before
    [(earliest,)] = _query(
        pg_url,
        "SELECT min(c.first_seen) FROM certificate_lineage l JOIN certificates c ON c.id = l.certificate_id "
        f"WHERE l.supersedes_id IN ({','.join(map(str, later))})",
    )
    assert earliest >= window_start  # type: ignore[operator]
    # Both servers did part of the work
    workers = [
        json.loads(str(r[0]))["worker"]
        for r in _query(pg_url, "SELECT details_json FROM audit_log WHERE action = 'certificate.renewal'")
    ]
    assert len(workers) == len(expected)
    by_pid = {w.split(":")[1] for w in workers}
    assert by_pid <= set().union(*node_pids), (by_pid, node_pids)
    assert all(by_pid & pids for pids in node_pids), (by_pid, node_pids)
