"""``certfleet crypto report``: the table (summary, groups, certificates weak first), JSON,
CSV and a CycloneDX 1.6 CBOM in local mode; the same output from a real server in remote
mode; bad input in one line with exit 2."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from certfleet.app import Platform
from tests.cli.remote import RemoteCli
from tests.conftest import Cli
from tests.services.crypto_fleet import mixed_fleet


def test_every_format_locally(cli: Cli, platform: Platform, tmp_path: Path) -> None:
    fleet = mixed_fleet(platform, tmp_path)
    table = cli("crypto", "report")
    assert table.exit_code == 0, table.stderr
    assert table.stdout.startswith(
        "7 certificates (2 CA certificates besides): 6 quantum-vulnerable, 2 weak\n"
    )
    assert "RSA key of 1024 bits (under 2048)" in table.stdout and "ml-dsa-65" in table.stdout
    document = json.loads(cli("crypto", "report", "--format", "json").stdout)
    assert document["certificates"][0]["weak"] is True
    rows = list(
        csv.DictReader(io.StringIO(cli("crypto", "report", "--format", "csv", "--team", "web").stdout))
    )
    assert {r["team"] for r in rows} == {"web"}
    assert rows[0]["weakness"] == "SHA-1 signature" and rows[0]["locations"] == fleet.sha1_path
    bom = cli("crypto", "report", "--format", "cyclonedx")
    assert bom.exit_code == 0
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(bom.stdout) is None
    refs = {c["bom-ref"] for c in json.loads(bom.stdout)["components"]}
    assert {f"crypto/certificate/{fp}" for fp in fleet.discovered} <= refs


def test_a_bad_format_is_one_line_and_exit_2(cli: Cli, platform: Platform) -> None:
    result = cli("crypto", "report", "--format", "xml")
    assert result.exit_code == 2
    assert "xml" in result.stderr and "Traceback" not in result.stderr


def test_remote_mode_prints_what_local_mode_prints(remote_cli: RemoteCli) -> None:
    remote = json.loads(remote_cli("crypto", "report", "--format", "json").stdout)
    local = json.loads(remote_cli.local("crypto", "report", "--format", "json").stdout)
    assert remote["summary"] == local["summary"]
    assert [c["fingerprint_sha256"] for c in remote["certificates"]] == [
        c["fingerprint_sha256"] for c in local["certificates"]
    ]
    assert remote_cli("crypto", "report").stdout == remote_cli.local("crypto", "report").stdout
    bom = remote_cli("crypto", "report", "--format", "cyclonedx")
    assert bom.exit_code == 0 and JsonStrictValidator(SchemaVersion.V1_6).validate_str(bom.stdout) is None
