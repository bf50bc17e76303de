"""`certfleet audit checkpoint` anchors the chain outside the database, and `audit verify
--checkpoint` catches what the chain alone cannot: a log wiped and restarted, or rewritten
consistently from entry 1 by someone with write access to the database."""

from __future__ import annotations

import base64
import json
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
)
from sqlalchemy import inspect, text, update

from certfleet.access import Scope
from certfleet.app import Platform
from certfleet.audit import CHECKPOINT_KEY_FILE, Checkpoint, entry_hash
from certfleet.store import Database
from certfleet.store.models import AuditHeadRow, AuditRow
from tests.conftest import Cli


@pytest.fixture
def logged(platform: Platform, cli: Cli) -> Cli:
    """A data directory whose log holds a few entries (the CA's, two tokens)."""
    platform.tokens.create("web", Scope("issue"), ["*.example.test"], actor="test")
    platform.tokens.create("ops", Scope("admin"), [], actor="test")
    return cli


def _checkpoint(cli: Cli, path: Path) -> Checkpoint:
    result = cli("audit", "checkpoint", "--out", str(path))
    assert result.exit_code == 0, result.stderr
    return Checkpoint.parse(path.read_text().splitlines()[-1])


def _verify(cli: Cli, path: Path, *extra: str) -> tuple[int, str]:
    result = cli("audit", "verify", "--checkpoint", str(path), *extra)
    if result.exit_code != 0:
        assert result.stdout == "" and result.stderr.count("\n") == 1, result.stderr
        assert "Traceback" not in result.stderr
        return result.exit_code, result.stderr.strip()
    return 0, result.stdout.strip()


def _sql(cli: Cli, *statements: str) -> None:
    database = Database(cli.db_url)
    try:
        with database.engine.begin() as conn:
            for statement in statements:
                conn.execute(text(statement))
    finally:
        database.dispose()


def test_a_good_log_matches_its_checkpoints(logged: Cli, tmp_path: Path, platform: Platform) -> None:
    out = tmp_path / "anchor" / "checkpoints.jsonl"
    out.parent.mkdir()
    first = _checkpoint(logged, out)
    platform.tokens.create("db", Scope("read"), [], actor="test")
    second = _checkpoint(logged, out)

    assert (first.seq, second.seq) == (4, 5)
    assert second.hash == _head(platform)[1]
    assert stat.S_IMODE(out.stat().st_mode) == 0o644
    code, line = _verify(logged, out)
    assert code == 0 and line == "audit log OK: 5 entries, chain intact, consistent with 2 signed checkpoints"


def _head(platform: Platform) -> tuple[int, str]:
    with platform.store.unit_of_work() as uow:
        return uow.audit.head()


def test_the_key_is_0600_encrypted_in_the_data_dir_and_not_in_the_database(
    logged: Cli, tmp_path: Path, platform: Platform
) -> None:
    result = logged("audit", "checkpoint", "--out", str(tmp_path / "cp"))
    assert result.exit_code == 0, result.stderr
    path = logged.data_dir / "keys" / CHECKPOINT_KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    pem = path.read_bytes()
    assert b"ENCRYPTED PRIVATE KEY" in pem
    with pytest.raises(TypeError):
        load_pem_private_key(pem, None)
    passphrase = platform.settings.passphrase_file.read_bytes().strip()
    key = load_pem_private_key(pem, passphrase)
    assert isinstance(key, Ed25519PrivateKey)
    raw = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    public = base64.b64encode(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()
    assert public in result.stdout  # printed, so operators can keep it elsewhere
    # Same key on the next run; nothing of it in any table.
    assert logged("audit", "checkpoint", "--out", str(tmp_path / "cp")).exit_code == 0
    assert path.read_bytes() == pem
    dump = _dump_database(logged.db_url)
    for needle in (raw.hex(), base64.b64encode(raw).decode(), pem.decode().splitlines()[1]):
        assert needle not in dump


def _dump_database(url: str) -> str:
    database = Database(url)
    try:
        parts: list[str] = []
        with database.engine.connect() as conn:
            # Every table the database has, not only the models this process happens to
            # have imported (repositories are imported on first use).
            for table in inspect(conn).get_table_names():
                for row in conn.execute(text(f'SELECT * FROM "{table}"')):
                    for value in row:
                        parts.append(value.hex() if isinstance(value, bytes) else str(value))
        return "\n".join(parts)
    finally:
        database.dispose()


@pytest.mark.parametrize("fresh_entries", [1, 6], ids=["shorter", "longer"])
def test_a_wiped_and_restarted_log_is_detected(
    logged: Cli, tmp_path: Path, platform: Platform, fresh_entries: int
) -> None:
    out = tmp_path / "cp"
    signed = _checkpoint(logged, out)
    _sql(logged, "DELETE FROM audit_log", "DELETE FROM audit_head")
    for n in range(fresh_entries):
        platform.tokens.create(f"t{n}", Scope("read"), [], actor="test")
    assert logged("audit", "verify").exit_code == 0  # the fresh chain alone looks fine

    code, line = _verify(logged, out)

    assert code == 1
    if fresh_entries < signed.seq:
        assert f"the log ends at entry {fresh_entries}, before the checkpoint of entry {signed.seq}" in line
        assert "wiped or truncated" in line
    else:
        assert f"entry {signed.seq} differs from the checkpoint of entry {signed.seq}" in line
    assert line.startswith("audit log FAILED checkpoint verification:")


def test_a_log_rewritten_consistently_from_entry_1_is_detected(
    logged: Cli, tmp_path: Path, platform: Platform
) -> None:
    out = tmp_path / "cp"
    signed = _checkpoint(logged, out)
    # An attacker with database access changes entry 1 and recomputes every hash and the head.
    database = Database(logged.db_url)
    try:
        with database.engine.begin() as conn:
            entries = list(platform.audit.entries())
            prev = "0" * 64
            for entry in entries:
                actor = "mallory" if entry.seq == 1 else entry.actor
                digest = entry_hash(
                    prev, entry.seq, entry.at, actor, entry.action, entry.subject, entry.details
                )
                conn.execute(
                    update(AuditRow)
                    .where(AuditRow.seq == entry.seq)
                    .values(actor=actor, prev_hash=prev, hash=digest)
                )
                prev = digest
            conn.execute(update(AuditHeadRow).where(AuditHeadRow.id == 1).values(hash=prev))
    finally:
        database.dispose()
    assert logged("audit", "verify").exit_code == 0  # consistent: the chain alone cannot tell

    code, line = _verify(logged, out)

    assert code == 1
    assert line == (
        f"audit log FAILED checkpoint verification: entry {signed.seq} differs from the checkpoint of "
        f"entry {signed.seq} signed {json.loads(out.read_text())['at']} (the log was rewritten or replaced)"
    )


@pytest.mark.parametrize("field", ["seq", "hash", "sig"])
def test_a_tampered_checkpoint_file_is_detected(logged: Cli, tmp_path: Path, field: str) -> None:
    out = tmp_path / "cp"
    _checkpoint(logged, out)
    fields = json.loads(out.read_text())
    if field == "seq":
        fields["seq"] -= 1
    elif field == "hash":
        fields["hash"] = "a" * 64
    else:
        sig = bytearray(base64.b64decode(fields["sig"]))
        sig[0] ^= 1
        fields["sig"] = base64.b64encode(bytes(sig)).decode()
    out.write_text(json.dumps(fields) + "\n")

    code, line = _verify(logged, out)

    assert code == 1
    assert line.startswith(
        f"checkpoint file {out} FAILED checkpoint verification: line 1 has a bad signature"
    )


def test_a_checkpoint_by_another_key_is_refused(logged: Cli, tmp_path: Path) -> None:
    out = tmp_path / "cp"
    _checkpoint(logged, out)
    other = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    code, line = _verify(logged, out, "--public-key", base64.b64encode(other).decode())

    assert code == 1 and "line 1 is signed by key" in line and "not the checkpoint key" in line


def test_a_broken_log_is_not_checkpointed(logged: Cli, tmp_path: Path) -> None:
    _sql(logged, "UPDATE audit_log SET actor = 'mallory' WHERE seq = 2")
    result = logged("audit", "checkpoint", "--out", str(tmp_path / "cp"))
    assert result.exit_code == 1
    assert result.stderr.startswith("audit log FAILED verification at entry 2:")
    assert not (tmp_path / "cp").exists()


@pytest.fixture
def syslog_receiver() -> Iterator[socket.socket]:
    """A real syslog transport: a UDP socket on loopback, as a syslog daemon listens."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(10)  # a bound on a lost datagram, not a wait for something to happen
    yield sock
    sock.close()


def test_checkpoint_to_syslog(logged: Cli, tmp_path: Path, syslog_receiver: socket.socket) -> None:
    port = syslog_receiver.getsockname()[1]
    result = logged("audit", "checkpoint", "--syslog", "--syslog-address", f"127.0.0.1:{port}")
    assert result.exit_code == 0, result.stderr
    message = syslog_receiver.recv(65536).decode()

    # RFC 3164 framing: <PRI> then our tag; facility auth (4), severity info (6).
    assert message.startswith(f"<{4 * 8 + 6}>certfleet-audit-checkpoint: ")
    line = message.split(": ", 1)[1].rstrip("\x00\n")
    saved = tmp_path / "from-syslog"
    saved.write_text(line + "\n")
    assert Checkpoint.parse(line).seq == 4
    assert _verify(logged, saved)[0] == 0


def test_checkpoint_to_a_local_syslog_socket(logged: Cli, tmp_path: Path) -> None:
    # A Unix datagram socket like /dev/log (which this machine lacks), bound by the test.
    path = tmp_path / "log"
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(str(path))
    receiver.settimeout(10)
    try:
        result = logged("audit", "checkpoint", "--syslog", "--syslog-address", str(path))
        assert result.exit_code == 0, result.stderr
        assert f"sent to syslog at {path}" in result.stdout
        message = receiver.recv(65536).decode()
    finally:
        receiver.close()
    assert message.startswith(f"<{4 * 8 + 6}>certfleet-audit-checkpoint: ")
    assert Checkpoint.parse(message.split(": ", 1)[1].rstrip("\x00\n")).seq == 4


def test_bad_syslog_address_and_missing_file_are_one_line_errors(logged: Cli, tmp_path: Path) -> None:
    bad = logged("audit", "checkpoint", "--syslog", "--syslog-address", "nowhere")
    assert bad.exit_code == 2 and "bad syslog address" in bad.stderr and bad.stderr.count("\n") == 1
    missing = logged("audit", "verify", "--checkpoint", str(tmp_path / "absent"))
    assert missing.exit_code == 2 and "cannot read checkpoint file" in missing.stderr
    (tmp_path / "empty").write_text("")
    empty = logged("audit", "verify", "--checkpoint", str(tmp_path / "empty"))
    assert empty.exit_code == 2 and "holds no checkpoint" in empty.stderr
