"""Dashboard server time at 100,000 and 1,000,000 certificates, on SQLite and PostgreSQL.

For each database and size: a fresh, migrated database is bulk-loaded with synthetic
certificate rows straight in SQL (tests/inventory/synthetic.py, shared with the query-plan tests: drop
the secondary indexes, insert, rebuild, ANALYZE), then the real dashboard (create_api_app, signed
in through its sign-in form) answers in process through httpx's ASGI transport, so the figures
are server time without sockets or TLS. Each page is requested once to warm up, then REPEAT
times; the median is printed. The baseline is the same page at 100,000 rows: the last column is
the ratio 1,000,000 / 100,000 (10.0 would mean linear in the inventory size, 1.0 flat).

    .venv/bin/python bench/dashboard.py                 # SQLite and PostgreSQL, 100k and 1M
    .venv/bin/python bench/dashboard.py --sizes 100000 --databases sqlite
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import re
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psycopg

from certfleet.access import Scope
from certfleet.api import create_api_app
from certfleet.app import Platform, open_platform
from certfleet.config import load_settings
from certfleet.store import Database
from certfleet.x509 import KeyType

# The synthetic inventory loader is shared with the query-plan tests.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.inventory.synthetic import load_postgresql, load_sqlite

PG_ADMIN = os.environ.get(
    "CERTFLEET_TEST_PG", "postgresql+psycopg://certfleet:certfleet@127.0.0.1:5432/certfleet_test"
)
REPEAT = 7
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


class Client:
    def __init__(self, platform: Platform) -> None:
        self._runner = asyncio.Runner()
        self._client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_api_app(platform)), base_url="https://bench.test"
        )

    def get(self, url: str) -> httpx.Response:
        response = self._runner.run(self._client.get(url))
        assert response.status_code == 200, (url, response.status_code, response.text[:300])
        return response

    def sign_in(self, token: str) -> None:
        page = self.get("/login")
        nonce = re.search(r'name="nonce" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        self._runner.run(self._client.post("/login", data={"nonce": nonce, "token": token}))

    def close(self) -> None:
        self._runner.run(self._client.aclose())
        self._runner.close()


def timed(client: Client, url: str) -> float:
    client.get(url)  # warm-up: caches, query plans
    samples = []
    for _ in range(REPEAT):
        started = time.perf_counter()
        client.get(url)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000


def deep_page(client: Client, pages: int) -> str:
    url = "/certificates?per_page=50"
    for _ in range(pages):
        found = re.search(r'<a href="([^"]+)" rel="next"', client.get(url).text)
        assert found
        url = found.group(1).replace("&amp;", "&")
    return url


PAGES = (
    ("overview (admin, all teams)", "admin", "/"),
    ("overview (one team's token)", "team", "/"),
    ("inventory, first page", "admin", "/certificates"),
    ("inventory, page 21 (cursor)", "admin", "DEEP"),
    ("inventory, team + active", "admin", "/certificates?team=team-7&status=active"),
    ("inventory, sort by name", "admin", "/certificates?sort=name"),
    ("inventory, name prefix", "admin", "/certificates?q=h12345"),
    ("timeline (26 weeks by team)", "admin", "/timeline"),
)


def measure(database_kind: str, rows: int, workdir: Path) -> dict[str, float]:
    data_dir = workdir / f"{database_kind}-{rows}"
    data_dir.mkdir(mode=0o700)
    pg_admin = PG_ADMIN.replace("postgresql+psycopg://", "postgresql://")
    pg_name = f"certfleet_bench_{secrets.token_hex(4)}" if database_kind == "postgresql" else None
    try:
        if pg_name is None:
            url = f"sqlite:///{data_dir / 'certfleet.db'}"
            migrated = Database(url)
            migrated.upgrade()
            migrated.dispose()
            started = time.perf_counter()
            load_sqlite(data_dir / "certfleet.db", rows, NOW)
        else:
            with psycopg.connect(pg_admin, autocommit=True) as c:
                c.execute(f'CREATE DATABASE "{pg_name}"')
            url = PG_ADMIN.rsplit("/", 1)[0] + "/" + pg_name
            database = Database(url)
            database.upgrade()
            started = time.perf_counter()
            load_postgresql(database, rows, NOW)
            database.dispose()
        print(
            f"  loaded {rows:,} rows into {database_kind} in {time.perf_counter() - started:.0f} s",
            flush=True,
        )
        return _pages(data_dir, url)
    finally:
        if pg_name is not None:  # dropped whatever failed, so no run leaves a database behind
            with psycopg.connect(pg_admin, autocommit=True) as c:
                c.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')


def _pages(data_dir: Path, url: str) -> dict[str, float]:
    platform = open_platform(load_settings({}, data_dir=data_dir, database_url=url), create=True)
    clients: dict[str, Client] = {}
    try:
        platform.authorities.initialize("Bench", KeyType.EC_P256, actor="bench")
        for role, (team, scope) in {"admin": ("ops", Scope.ADMIN), "team": ("team-7", Scope.READ)}.items():
            clients[role] = Client(platform)
            clients[role].sign_in(platform.tokens.create(team, scope, [], actor="bench").token)
        results = {}
        for label, role, url_path in PAGES:
            path = deep_page(clients[role], 20) if url_path == "DEEP" else url_path
            results[label] = timed(clients[role], path)
        return results
    finally:
        for client in clients.values():
            client.close()
        platform.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument(
        "--databases", nargs="+", default=["sqlite", "postgresql"], choices=["sqlite", "postgresql"]
    )
    args = parser.parse_args()
    sizes = sorted(args.sizes)
    with tempfile.TemporaryDirectory(prefix="certfleet-bench-") as tmp:
        for kind in args.databases:
            by_size = {}
            for rows in sizes:
                by_size[rows] = measure(kind, rows, Path(tmp))
            base = sizes[0]
            head = "".join(f"{n:>12,}" for n in sizes)
            print(f"\n{kind}: median server time in ms ({REPEAT} requests after a warm-up)")
            print(f"{'page':32}{head}   ratio {sizes[-1]:,}/{base:,}")
            for label, _, _ in PAGES:
                cells = "".join(f"{by_size[n][label]:12.1f}" for n in sizes)
                ratio = by_size[sizes[-1]][label] / by_size[base][label]
                print(f"{label:32}{cells}   {ratio:8.2f}x")
            print(flush=True)


if __name__ == "__main__":
    main()
