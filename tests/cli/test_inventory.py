"""`certfleet inventory list|show|import`: filters, the three formats, imports that report
bad files one line each and go on."""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import functools
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from certfleet.app import open_platform
from certfleet.cli.main import main as cli_main
from certfleet.x509 import fingerprint_sha256, to_pem
from tests.conftest import Cli, FakeClock
from tests.inventory.test_records import ISO_Z, JSON_FIELDS
from tests.services.snapshot import private_database
from tests.x509.factories import external_certificate


def _list(cli: Cli, *filters: str) -> list[dict[str, object]]:
    result = cli("inventory", "list", "--format", "json", *filters)
    assert result.exit_code == 0, result.stderr
    rows: list[dict[str, object]] = json.loads(result.stdout)
    return rows


def _serials(cli: Cli, *filters: str) -> set[object]:
    return {r["serial"] for r in _list(cli, *filters)}


@dataclass
class FleetEnv:
    data_dir: Path
    db_url: str
    clock: FakeClock
    start: dt.datetime
    serials: dict[str, str]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def fleet_env(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FleetEnv]:
    """One inventory per module and backend, built on a FakeClock: web (90 days, team web),
    api (10 days, team api), old (imported, long expired). Tests here only read it (and
    move the clock, which ``fleet`` puts back)."""
    clock = FakeClock(dt.datetime.now(dt.UTC).replace(microsecond=0))
    tmp = tmp_path_factory.mktemp("fleet")
    pg_url = request.getfixturevalue("pg_database_url") if request.param == "postgresql" else None
    with pytest.MonkeyPatch.context() as patch, private_database(request.param, tmp / "data", pg_url) as url:
        patch.setattr("certfleet.cli._common.open_platform", functools.partial(open_platform, clock=clock))
        patch.setattr("certfleet.cli._common.system_clock", lambda: clock)  # commands that only read

        def run(*args: str) -> str:
            with contextlib.redirect_stdout(io.StringIO()) as out:
                assert cli_main([*args, "--data-dir", str(tmp / "data"), "--db", url]) == 0
            return out.getvalue()

        def issue(san: str, *extra: str) -> str:
            return run("issue", "--san", san, "--out", str(tmp / san), *extra).split()[2]

        run("init", "--ca-name", "Example")
        web = issue("www.example.com", "--team", "web")
        api = issue("api.example.com", "--team", "api", "--days", "10", "--profile", "tls-server-client")
        old_cert = external_certificate("old.example.net", clock.now() - dt.timedelta(days=400), days=90)
        (tmp / "old.pem").write_text(to_pem([old_cert]))
        run("inventory", "import", str(tmp / "old.pem"))
        serials = {"web": web, "api": api, "old": format(old_cert.serial_number, "x")}
        yield FleetEnv(tmp / "data", url, clock, clock.now(), serials)


@pytest.fixture
def fleet_cli(
    fleet_env: FleetEnv, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Cli]:
    monkeypatch.setattr(
        "certfleet.cli._common.open_platform", functools.partial(open_platform, clock=fleet_env.clock)
    )
    monkeypatch.setattr("certfleet.cli._common.system_clock", lambda: fleet_env.clock)
    yield Cli(capsys, fleet_env.data_dir, fleet_env.db_url)
    fleet_env.clock.set(fleet_env.start)


@pytest.fixture
def fleet(fleet_env: FleetEnv) -> dict[str, str]:
    return fleet_env.serials


def test_json_rows_carry_every_documented_field(fleet_cli: Cli, fleet: dict[str, str]) -> None:
    rows = _list(fleet_cli)
    assert len(rows) == 3
    for row in rows:
        assert set(row) >= set(JSON_FIELDS)
        assert ISO_Z.match(str(row["not_before"])) and ISO_Z.match(str(row["not_after"]))
        assert re.fullmatch(r"[0-9a-f]{64}", str(row["fingerprint_sha256"]))
        assert isinstance(row["sans"], list)
    web = next(r for r in rows if r["serial"] == fleet["web"])
    assert (web["status"], web["source"], web["team"], web["sans"]) == (
        "active",
        "issued",
        "web",
        ["www.example.com"],
    )
    assert web["subject"] == "" and "Issuing CA 1" in str(web["issuer"])
    old = next(r for r in rows if r["serial"] == fleet["old"])
    assert (old["status"], old["source"], old["team"]) == ("expired", "imported", None)


def test_filters(fleet_cli: Cli, fleet: dict[str, str]) -> None:
    assert _serials(fleet_cli, "--expiring", "30") == {fleet["api"]}
    assert _serials(fleet_cli, "--expiring", "120") == {fleet["api"], fleet["web"]}
    assert _serials(fleet_cli, "--status", "active") == {fleet["api"], fleet["web"]}
    assert _serials(fleet_cli, "--status", "expired") == {fleet["old"]}
    assert _serials(fleet_cli, "--status", "revoked") == set()
    assert _serials(fleet_cli, "--issuer", "Other CA") == {fleet["old"]}
    assert _serials(fleet_cli, "--issuer", "Issuing CA") == {fleet["api"], fleet["web"]}
    assert _serials(fleet_cli, "--san", "API.example.com") == {fleet["api"]}
    assert _serials(fleet_cli, "--team", "web") == {fleet["web"]}
    assert _serials(fleet_cli, "--team", "web", "--status", "expired") == set()


def test_expired_is_derived_from_the_clock(
    fleet_cli: Cli, fleet_env: FleetEnv, fleet: dict[str, str]
) -> None:
    fleet_env.clock.advance(dt.timedelta(days=11))
    assert _serials(fleet_cli, "--status", "expired") == {fleet["old"], fleet["api"]}
    assert _serials(fleet_cli, "--expiring", "30") == set()
    fleet_env.clock.advance(dt.timedelta(days=80))
    assert _serials(fleet_cli, "--status", "active") == set()


def test_csv_and_table(fleet_cli: Cli, fleet: dict[str, str]) -> None:
    result = fleet_cli("inventory", "list", "--format", "csv", "--team", "web")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["serial"] for r in rows] == [fleet["web"]]
    assert rows[0]["sans"] == "www.example.com" and rows[0]["status"] == "active"
    assert list(rows[0]) == ["serial", "status", "source", "team", "subject", "sans", "issuer", "not_after"]
    table = fleet_cli("inventory", "list")
    assert table.exit_code == 0
    assert "3 certificates" in table.stdout
    for serial in fleet.values():
        assert serial in table.stdout  # one row per certificate, not wrapped


@pytest.mark.parametrize(
    "filters",
    [(), ("--status", "expired"), ("--expiring", "90"), ("--san", "www.example.com"), ("--team", "api")],
)
def test_the_csv_listing_shows_what_the_full_records_say(
    fleet_cli: Cli, fleet_env: FleetEnv, filters: tuple[str, ...]
) -> None:
    # Table and CSV read only the listed columns (CertificateSummary); JSON reads full records.
    fleet_env.clock.advance(dt.timedelta(days=11))  # the api certificate has expired since
    result = fleet_cli("inventory", "list", "--format", "csv", *filters)
    assert result.exit_code == 0, result.stderr
    listed = list(csv.DictReader(io.StringIO(result.stdout)))
    columns = list(listed[0]) if listed else []

    records = _list(fleet_cli, *filters)

    assert listed, filters
    assert listed == [
        {c: ", ".join(map(str, r[c])) if isinstance(r[c], list) else str(r[c] or "") for c in columns}
        for r in records
    ]


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (("--status", "valid"), "unknown status 'valid'"),
        (("--expiring", "-1"), "--expiring must be between 0 and 36600 days"),
    ],
)
def test_bad_filters_are_refused(
    fleet_cli: Cli, fleet: dict[str, str], args: tuple[str, ...], reason: str
) -> None:
    result = fleet_cli("inventory", "list", *args)
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and reason in result.stderr


def test_show_by_serial_or_fingerprint(fleet_cli: Cli, fleet: dict[str, str]) -> None:
    by_serial = fleet_cli("inventory", "show", fleet["web"], "--format", "json")
    assert by_serial.exit_code == 0, by_serial.stderr
    record = json.loads(by_serial.stdout)
    assert record["serial"] == fleet["web"] and record["team"] == "web"
    assert set(record) >= set(JSON_FIELDS)
    fingerprint = str(record["fingerprint_sha256"])
    by_fingerprint = fleet_cli("inventory", "show", fingerprint.upper(), "--format", "json")
    assert json.loads(by_fingerprint.stdout) == record
    table = fleet_cli("inventory", "show", fleet["web"])
    assert "fingerprint_sha256: " + fingerprint in table.stdout
    missing = fleet_cli("inventory", "show", "deadbeef")
    assert missing.exit_code == 2
    assert missing.stderr == "error: no certificate with serial or fingerprint 'deadbeef'\n"


def test_import_bundles_and_der_deduplicated_bad_files_reported(
    clocked: Cli, clock: FakeClock, tmp_path: Path
) -> None:
    a = external_certificate("a.example.net", clock.now())
    b = external_certificate("b.example.net", clock.now())
    c = external_certificate("c.example.net", clock.now())
    bundle = tmp_path / "bundle.pem"
    bundle.write_text(to_pem([a, b]))
    single = tmp_path / "c.der"
    single.write_bytes(c.public_bytes(Encoding.DER))
    overlap = tmp_path / "overlap.pem"
    overlap.write_text(to_pem([b, c]))
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n")
    empty = tmp_path / "empty.der"
    empty.write_bytes(b"")
    missing = tmp_path / "missing.pem"

    result = clocked(
        "inventory",
        "import",
        str(garbage),
        str(bundle),
        str(empty),
        str(single),
        str(missing),
        str(overlap),
        "--team",
        "ops",
    )

    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        f"{bundle}: 2 added, 0 already known",
        f"{single}: 1 added, 0 already known",
        f"{overlap}: 0 added, 2 already known",
    ]
    errors = result.stderr.splitlines()
    assert len(errors) == 3 and "Traceback" not in result.stderr
    assert errors[0].startswith(f"{garbage}: ")
    assert errors[1].startswith(f"{empty}: ")
    assert errors[2] == f"{missing}: cannot read: No such file or directory"
    rows = _list(clocked, "--team", "ops")
    assert {r["fingerprint_sha256"] for r in rows} == {fingerprint_sha256(x) for x in (a, b, c)}
    assert {r["source"] for r in rows} == {"imported"}


def test_import_of_only_good_files_exits_zero(clocked: Cli, clock: FakeClock, tmp_path: Path) -> None:
    path = tmp_path / "one.pem"
    path.write_text(to_pem([external_certificate("one.example.net", clock.now())]))
    result = clocked("inventory", "import", str(path))
    assert result.exit_code == 0 and result.stderr == ""
    again = clocked("inventory", "import", str(path))
    assert again.stdout.strip() == f"{path}: 0 added, 1 already known"
