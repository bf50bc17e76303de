"""Shared fixtures: a fake clock, a database on SQLite and on a real PostgreSQL, a
platform with a throwaway CA, and an in-process CLI runner."""

from __future__ import annotations

import datetime as dt
import os
import secrets
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text

from certfleet.app import Platform, open_platform
from certfleet.cli.main import main as cli_main
from certfleet.config import load_settings
from certfleet.store import Database
from certfleet.x509 import KeyType

PG_URL_ENV = "CERTFLEET_TEST_PG"


class FakeClock:
    """A clock tests move by hand instead of sleeping."""

    def __init__(self, start: dt.datetime | None = None) -> None:
        self._now = start or dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)

    def now(self) -> dt.datetime:
        return self._now

    def advance(self, delta: dt.timedelta) -> None:
        self._now += delta

    def set(self, value: dt.datetime) -> None:
        self._now = value


@pytest.fixture(scope="session", autouse=True)
def _no_remote_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The CLI stays in local mode unless a test names a server: a login saved on the machine
    running the tests (``certfleet login`` writes $XDG_CONFIG_HOME/certfleet) or a
    CERTFLEET_SERVER in its environment must not send the tests' commands elsewhere."""
    names = ("XDG_CONFIG_HOME", "CERTFLEET_SERVER", "CERTFLEET_TOKEN", "CERTFLEET_CA_FILE")
    saved = {name: os.environ.pop(name, None) for name in names}
    os.environ["XDG_CONFIG_HOME"] = str(tmp_path_factory.mktemp("xdg-config"))
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(dt.datetime.now(dt.UTC).replace(microsecond=0))


PG_DEFAULT = "postgresql+psycopg://certfleet:certfleet@127.0.0.1:5432/certfleet_test"


def _pg_admin_url() -> str:
    """The PostgreSQL that scripts/test-services.sh starts (``make test`` runs it first)."""
    return os.environ.get(PG_URL_ENV) or PG_DEFAULT


@pytest.fixture(scope="session")
def pg_database_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, migrated once."""
    base = _pg_admin_url()
    name = f"certfleet_t_{secrets.token_hex(4)}"
    plain = base.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = base.rsplit("/", 1)[0] + "/" + name
    database = Database(url)
    database.upgrade()
    database.dispose()
    yield url
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


_PG_TABLES: dict[str, tuple[Database, list[str]]] = {}


def truncate_all(url: str) -> None:
    """Empty every table that holds rows. Truncating only the non-empty ones (found in one
    round trip) keeps the per-test reset cheap: TRUNCATE costs per table, and most tests
    touch a handful of the schema's tables."""
    if url not in _PG_TABLES:
        database = Database(url)
        with database.engine.connect() as conn:
            names = (
                conn.execute(
                    text(
                        "SELECT tablename FROM pg_tables "
                        "WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
                    )
                )
                .scalars()
                .all()
            )
        _PG_TABLES[url] = (database, list(names))
    database, tables = _PG_TABLES[url]
    if not tables:
        return
    probe = " UNION ALL ".join(f"SELECT '{t}' WHERE EXISTS (SELECT 1 FROM \"{t}\")" for t in tables)
    with database.engine.begin() as conn:
        dirty = conn.execute(text(probe)).scalars().all()
        if dirty:
            conn.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in dirty) + " RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each storage test runs on embedded SQLite and on a real PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'data' / 'certfleet.db'}"
    url: str = request.getfixturevalue("pg_database_url")
    truncate_all(url)
    return url


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir(mode=0o700, exist_ok=True)
    return path


def make_platform(data_dir: Path, db_url: str, clock: FakeClock, *, base_url: str | None = None) -> Platform:
    if base_url:
        (data_dir / "config.toml").write_text(f'public_base_url = "{base_url}"\n')
    settings = load_settings({}, data_dir=data_dir, database_url=db_url)
    return open_platform(settings, clock=clock, create=True)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database migrated once per session (each worker's own), copied by
    ``bare_platform`` where a test would otherwise migrate a new file: running every
    migration costs about half a second, copying the result about a millisecond."""
    path = tmp_path_factory.mktemp("sqlite-template") / "certfleet.db"
    database = Database(f"sqlite:///{path}")
    database.upgrade()
    database.dispose()
    with sqlite3.connect(path) as conn:  # everything into the main file: only it is copied
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return path


@pytest.fixture
def bare_platform(data_dir: Path, db_url: str, clock: FakeClock, sqlite_template: Path) -> Iterator[Platform]:
    """A platform with a migrated database and no CA yet. A new SQLite file starts as a copy
    of the session's migrated template (the platform's upgrade then finds nothing to do);
    tests of migrating itself (``certfleet db upgrade``, ``init``) start from an empty file
    through the ``cli`` fixture or ``make_platform``, which never copy it."""
    if db_url.startswith("sqlite:///"):
        target = Path(db_url.removeprefix("sqlite:///"))
        if target.parent.is_dir() and not target.exists():
            shutil.copyfile(sqlite_template, target)
    p = make_platform(data_dir, db_url, clock)
    yield p
    p.close()


@pytest.fixture
def platform(bare_platform: Platform) -> Platform:
    """A platform with a fresh EC P-256 root and issuing CA."""
    bare_platform.authorities.initialize("Test", KeyType.EC_P256, actor="test")
    return bare_platform


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str


class Cli:
    """Runs ``certfleet`` in-process with a data dir and database, capturing output."""

    def __init__(self, capsys: pytest.CaptureFixture[str], data_dir: Path, db_url: str) -> None:
        self._capsys = capsys
        self.data_dir = data_dir
        self.db_url = db_url

    def __call__(self, *args: str) -> CliResult:
        self._capsys.readouterr()
        argv = [*args]
        code = cli_main([*argv, "--data-dir", str(self.data_dir), "--db", self.db_url])
        out, err = self._capsys.readouterr()
        return CliResult(code, out, err)

    def raw(self, *args: str) -> CliResult:
        """Run without adding --data-dir/--db (for commands that take neither)."""
        self._capsys.readouterr()
        code = cli_main(list(args))
        out, err = self._capsys.readouterr()
        return CliResult(code, out, err)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], data_dir: Path, db_url: str) -> Cli:
    return Cli(capsys, data_dir, db_url)
