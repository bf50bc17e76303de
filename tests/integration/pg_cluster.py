"""A throwaway PostgreSQL cluster of a test's own (initdb + pg_ctl, a free port, a temporary
directory), so a test may restart it under load without touching the shared test database
that other tests use at the same time."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.ports import free_port

__all__ = ["PgCluster", "pg_cluster"]

PG_BIN = Path("/usr/lib/postgresql/15/bin")


@dataclass
class PgCluster:
    directory: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://certfleet@127.0.0.1:{self.port}/postgres"

    def _pg_ctl(self, *args: str, check: bool = True) -> None:
        result = subprocess.run(
            [*_as_postgres(), str(PG_BIN / "pg_ctl"), "-D", str(self.directory / "data"), "-w", *args],
            check=False,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check and result.returncode != 0:
            log_file = self.directory / "postgres.log"
            log = log_file.read_text()[-2000:] if log_file.exists() else ""
            pytest.fail(f"pg_ctl {' '.join(args)}: {result.stdout}{result.stderr}\n{log}")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._pg_ctl("-l", str(self.directory / "postgres.log"), "-o", options, "start")

    def restart(self) -> None:
        """A fast shutdown (every connection dropped) and a start: a failover's worth."""
        self._pg_ctl("-m", "fast", "stop")
        self.start()

    def stop(self) -> None:
        self._pg_ctl("-m", "immediate", "stop", check=False)


def _as_postgres() -> list[str]:
    # initdb and postgres refuse to run as root: the cluster belongs to the postgres user.
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    if not (PG_BIN / "initdb").exists():
        pytest.skip(f"PostgreSQL server binaries not found in {PG_BIN}")
    # Not under pytest's own temporary root: pytest makes that 0700 again whenever a session
    # starts, and the postgres user must keep reaching its directory.
    directory = Path(tempfile.mkdtemp(prefix="certfleet-pg-"))
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres", "postgres")
    subprocess.run(
        [
            *_as_postgres(),
            str(PG_BIN / "initdb"),
            "-D",
            str(directory / "data"),
            "-U",
            "certfleet",
            "-A",
            "trust",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    cluster = PgCluster(directory, free_port())
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(directory, ignore_errors=True)
