"""A real ``certfleet rotate`` replacing every RSA-2048 certificate with a P-256 one is killed
with SIGKILL halfway, then ``certfleet rotate resume`` finishes it: each old certificate ends
with exactly one P-256 successor whose key file matches, and the old ones are revoked."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import stat
import subprocess
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from certfleet.config import load_settings
from certfleet.inventory import Status
from certfleet.x509 import KeyType, generate_private_key
from tests.conftest import FakeClock, make_platform
from tests.integration.test_serve import CERTFLEET, _env, certfleet
from tests.lifecycle.fleet import certificates_named, issue

pytestmark = pytest.mark.integration

FLEET = 60
KILL_AFTER = 20
PROGRESS = re.compile(r"^progress: reissued \S+ (\d+)/(\d+)$")


def test_a_killed_campaign_resumes_and_finishes(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    certfleet("init", "--data-dir", str(data_dir))
    # Short leases so the resume need not wait long for the killed run's items.
    (data_dir / "config.toml").write_text("[lifecycle]\nlease_seconds = 2\nbatch_size = 5\n")
    settings = load_settings({}, data_dir=data_dir)
    platform = make_platform(data_dir, settings.database_url, FakeClock(dt.datetime.now(dt.UTC)))
    try:
        keys = [generate_private_key(KeyType.RSA_2048) for _ in range(3)]
        fleet = [
            issue(platform, f"r{i}.example.test", key=keys[i % 3], team="web").record for i in range(FLEET)
        ]
        keep = issue(platform, "ec.example.test").record
    finally:
        platform.close()
    out = tmp_path / "keys"
    argv = [
        CERTFLEET,
        "rotate",
        "--select",
        "key=rsa-2048",
        "--to-key-type",
        "ec-p256",
        "--generate-keys",
        str(out),
        "--revoke-old-after",
        "0",
        "--data-dir",
        str(data_dir),
    ]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    assert process.stdout is not None
    header = process.stdout.readline()
    match = re.match(r"campaign (\w+): (\d+) certificates", header)
    assert match, header + (process.stderr.read() if process.stderr else "")
    campaign_id, total = match.group(1), int(match.group(2))
    assert total == FLEET
    done = 0
    deadline = time.monotonic() + 120
    while done < KILL_AFTER and time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        found = PROGRESS.match(line.strip())
        if found:
            done = int(found.group(1))
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    assert done >= KILL_AFTER
    # Halfway: the campaign knows what was done and what was not
    halfway = json.loads(
        certfleet("rotate", "status", campaign_id, "--format", "json", "--data-dir", str(data_dir)).stdout
    )
    assert halfway["status"] == "running"
    assert KILL_AFTER <= halfway["progress"]["reissued"] < FLEET
    # When resumed, it finishes
    resumed = certfleet("rotate", "resume", campaign_id, "--data-dir", str(data_dir))
    assert "completed" in resumed.stdout
    final = json.loads(
        certfleet("rotate", "status", campaign_id, "--format", "json", "--data-dir", str(data_dir)).stdout
    )
    assert final["status"] == "completed"
    assert final["progress"]["reissued"] == final["progress"]["old_revoked"] == FLEET
    # Then each RSA-2048 certificate has exactly one P-256 successor, with its key on disk
    platform = make_platform(data_dir, settings.database_url, FakeClock(dt.datetime.now(dt.UTC)))
    try:
        for old in fleet:
            named = certificates_named(platform, old.sans[0])
            assert len(named) == 2, f"{old.sans[0]}: {len(named)} certificates"
            first, new = named
            assert first.id == old.id and first.status is Status.REVOKED
            assert first.revocation_reason == "superseded"
            assert (new.key_algorithm, new.key_size, new.status, new.team) == (
                "ec",
                256,
                Status.ACTIVE,
                "web",
            )
            assert platform.renewal.lineage(old)[-1].id == new.id
            key_file = out / old.serial / "key.pem"
            assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
            key = serialization.load_pem_private_key(key_file.read_bytes(), None)
            assert new.certificate().public_key() == key.public_key()
            chain = x509.load_pem_x509_certificates((out / old.serial / "fullchain.pem").read_bytes())
            assert chain[0].serial_number == int(new.serial, 16)
        assert len(certificates_named(platform, "ec.example.test")) == 1  # not selected
        assert platform.inventory.find(keep.serial).status is Status.ACTIVE
    finally:
        platform.close()
