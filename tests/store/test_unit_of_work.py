"""The store's unit of work (SqlUnitOfWork) builds each repository when a service first asks for it (issue
11: `certfleet scan` must not import the ACME protocol's repositories to record a scan), one
per unit of work, over that unit of work's own session."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from certfleet.store import Database, Store

# What a unit of work used to import and build for every transaction, whoever asked.
_UNASKED = [
    "certfleet.store._acme",
    "certfleet.store._agent",
    "certfleet.store._lifecycle",
    "certfleet.store._est",
    "certfleet.store._policy",
    "certfleet.store._revocation",
    "certfleet.store._issuance_ledger",
    "certfleet.store._siem",
    "certfleet.protocols.acme",
]

_FRESH = """
import json, sys
from certfleet.store import Database, Store
database = Database(sys.argv[1])
with Store(database).unit_of_work(read_only=True) as uow:
    missing = uow.certificates.get_by_fingerprint("00" * 32)
    runs = uow.scans.get("no-such-run")
database.dispose()
print(json.dumps({"answers": [missing, runs], "loaded": sorted(sys.modules)}))
"""


def _migrated(db_url: str, tmp_path: Path) -> Database:
    (tmp_path / "data").mkdir(exist_ok=True)
    database = Database(db_url)
    database.upgrade()
    return database


def test_a_unit_of_work_imports_only_the_repositories_it_is_asked_for(db_url: str, tmp_path: Path) -> None:
    _migrated(db_url, tmp_path).dispose()

    done = subprocess.run(
        [sys.executable, "-c", _FRESH, db_url], capture_output=True, text=True, check=False, timeout=120
    )

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.splitlines()[-1])
    assert report["answers"] == [None, None]
    loaded = set(report["loaded"])
    assert {"certfleet.store._repositories", "certfleet.store._discovery"} <= loaded
    assert loaded.isdisjoint(_UNASKED), sorted(loaded.intersection(_UNASKED))


def test_each_repository_is_built_once_per_unit_of_work_over_its_session(db_url: str, tmp_path: Path) -> None:
    database = _migrated(db_url, tmp_path)
    store = Store(database)
    try:
        with store.unit_of_work() as first, store.unit_of_work(read_only=True) as second:
            assert first.certificates is first.certificates
            assert first.certificates is not second.certificates
            assert first.acme is first.acme and first.outbox is first.outbox
            assert first.certificates.get_by_fingerprint("ab" * 32) is None
            # What a unit of work is never asked for is never built.
            assert "acme" not in vars(second) and "certificates" in vars(second)
    finally:
        database.dispose()
