"""`certfleet scan net` runs its handshakes in a child interpreter (cli._scan_child) while it
imports the store and opens the database (issue 11). What that may never leave behind: a
child process, a run stuck 'running', half of a scan's results. Real processes, a real port
that never answers and the real database; no test here measures time."""

from __future__ import annotations

import fcntl
import io
import json
import os
import pickle
import signal
import socket
import struct
import subprocess
import sys
import termios
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy
from cryptography.hazmat.primitives import serialization

from certfleet.cli._scan_child import ChildScan, _DeferredChains, _parsed, _Pickler, _Unpickler
from certfleet.discovery import Endpoint, EndpointOutcome, NetScanOptions, NetStatus, TlsObservation
from certfleet.discovery.probes.tls import ProbeFailure, read_chain
from tests.agent.peers import wait_for
from tests.conftest import Cli
from tests.discovery.pki import Pki, key_pem, pem
from tests.discovery.servers import tls

CERTFLEET = str(Path(sys.executable).with_name("certfleet"))


def _scan_children(parent: int) -> list[int]:
    """The scanner processes whose parent is ``parent``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue  # gone meanwhile
        ppid = int(stat.rpartition(")")[2].split()[1])
        if ppid == parent and b"certfleet.cli._scan_child" in command:
            found.append(int(entry.name))
    return found


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def _runs(db_url: str) -> list[tuple[str, str | None]]:
    engine = sqlalchemy.create_engine(db_url)
    try:
        with engine.connect() as conn:
            return [
                (row[0], row[1])
                for row in conn.execute(sqlalchemy.text("SELECT status, error FROM scan_runs"))
            ]
    finally:
        engine.dispose()


@pytest.fixture
def silent_port() -> Iterator[str]:
    """A port whose connections are accepted (by the kernel) and never answered: a scan of
    it lasts until its timeout."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield f"127.0.0.1:{server.getsockname()[1]}"


def _start(cli: Cli, target: str) -> subprocess.Popen[str]:
    command = [CERTFLEET, "scan", "net", target, "--timeout", "120", "--quiet", "--format", "json"]
    command += ["--data-dir", str(cli.data_dir), "--db", cli.db_url]
    return subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        # As from a terminal: a suite started in the background (nohup, a CI runner's shell)
        # passes SIGINT on ignored, and Ctrl-C would then reach nobody.
        preexec_fn=_interruptible,
    )


def _interruptible() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _under_way(cli: Cli, process: subprocess.Popen[str]) -> int:
    """Wait until the scan is under way (its run recorded, its child scanning): the child's pid."""
    wait_for(lambda: _runs(cli.db_url) == [("running", None)], what="the run recorded as running")
    [child] = wait_for(lambda: _scan_children(process.pid), what="the scanner process")
    return child


@pytest.mark.parametrize(("how", "code"), [("ctrl-c", 130), ("sigterm", 143)])
def test_an_interrupted_scan_leaves_no_process_and_no_running_run(
    initialized: Cli, silent_port: str, how: str, code: int
) -> None:
    process = _start(initialized, silent_port)
    try:
        # Given a scan under way
        child = _under_way(initialized, process)

        # When it is interrupted: Ctrl-C reaches the whole foreground group, SIGTERM the command
        if how == "ctrl-c":
            os.killpg(process.pid, signal.SIGINT)
        else:
            process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    # Then the command ends at once, its scanner with it, and the run says what happened
    assert process.returncode == code, err
    assert "Traceback" not in err, err
    assert not _running(child)
    assert _runs(initialized.db_url) == [("failed", "interrupted")]
    listed = initialized("inventory", "list", "--format", "json")
    assert json.loads(listed.stdout) == []


def test_the_scanner_does_not_outlive_a_killed_command(initialized: Cli, silent_port: str) -> None:
    process = _start(initialized, silent_port)
    try:
        child = _under_way(initialized, process)

        process.kill()  # nothing runs in the command after SIGKILL: the child must notice
        process.wait()

        wait_for(lambda: not _running(child), what="the scanner process to exit")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_database_that_cannot_be_opened_stops_the_scanner(cli: Cli, silent_port: str) -> None:
    assert cli("init").exit_code == 0
    nowhere = "postgresql+psycopg://nobody@127.0.0.1:1/none"

    result = cli.raw(
        "scan", "net", silent_port, "--timeout", "120", "--data-dir", str(cli.data_dir), "--db", nowhere
    )

    assert result.exit_code != 0
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert _scan_children(os.getpid()) == []
    assert _runs(cli.db_url) == []


def test_the_protocol_builds_only_what_it_carries() -> None:
    with pytest.raises(pickle.UnpicklingError, match=r"no posix\.system"):
        _Unpickler(io.BytesIO(pickle.dumps(os.system))).load()


def _unread(pipe: int) -> int:
    return int(struct.unpack("i", fcntl.ioctl(pipe, termios.FIONREAD, b"\0\0\0\0"))[0])


def test_outcomes_larger_than_the_pipe_arrive_whole(tmp_path: Path) -> None:
    """The child's answer outgrows the pipe (64 KiB) while the command is still busy opening
    the database: the child must wait for the reader, not drop the rest (it did, after
    uvloop had run in it)."""
    pki = Pki("Pipe")
    leaf = pki.leaf(["127.0.0.1"])
    (tmp_path / "chain.pem").write_bytes(pem(leaf.cert, pki.intermediate.cert))
    (tmp_path / "key.pem").write_bytes(key_pem(leaf.key))
    server = tls(tmp_path / "chain.pem", tmp_path / "key.pem")
    # Each distinct certificate travels once: the names sent make the answer large.
    padding = "x" * 60 + "."
    endpoints = [Endpoint("127.0.0.1", server.port, f"n{i}.{padding * 3}pipe.test") for i in range(360)]
    options = NetScanOptions(concurrency=16, per_host=16, timeout_seconds=60)
    try:
        with ChildScan.start(endpoints, options, progress=None) as scan:
            # Given a command that reads nothing until the pipe is full
            pipe = scan._process.stdout
            assert pipe is not None
            wait_for(lambda: _unread(pipe.fileno()) >= 65536, what="a full pipe")

            # When it reads
            outcomes = scan.run(endpoints)
    finally:
        server.stop()

    # Then every outcome is there, in order, with its chain, parsed by the command; the
    # intermediate every endpoint presented travelled and was parsed once
    assert [o.endpoint for o in outcomes] == endpoints
    assert all(o.observation is not None and len(o.observation.chain) == 2 for o in outcomes), outcomes[0]
    chains = [o.observation.chain for o in outcomes if o.observation is not None]
    assert chains[0] == (leaf.cert, pki.intermediate.cert)
    assert len({id(chain[1]) for chain in chains}) == 1


def _through_the_pipe(outcome: EndpointOutcome) -> EndpointOutcome:
    buffer = io.BytesIO()
    _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(("ok", [outcome]))
    [received] = _Unpickler(io.BytesIO(buffer.getvalue())).load()[1]
    return _parsed(received)


def test_a_malformed_certificate_gets_the_outcome_it_gets_in_process() -> None:
    """The child does not parse what servers present; a certificate that does not parse
    gives the command the outcome the probe gives it in-process (TLS error, same reason)."""
    pki = Pki("Malformed")
    good, bad = pki.intermediate.cert.public_bytes(serialization.Encoding.DER), b"\x30\x03\x02\x01\x01"
    with pytest.raises(ProbeFailure) as in_process:
        read_chain([bad, good])
    endpoint = Endpoint("127.0.0.1", 443, None)
    observation = TlsObservation(
        "127.0.0.1", "TLSv1.3", "TLS_AES_128_GCM_SHA256", None, _DeferredChains()([bad, good])
    )

    outcome = _through_the_pipe(EndpointOutcome(endpoint, NetStatus.OK, None, observation, 0.25))

    assert (outcome.status, outcome.reason, outcome.observation) == (
        in_process.value.status,
        in_process.value.reason,
        None,
    )
    assert outcome.status is NetStatus.TLS_ERROR and outcome.duration_seconds == 0.25
    assert "malformed certificate" in (outcome.reason or "")


def test_the_working_directory_cannot_stand_in_for_the_scanner(initialized: Cli, tmp_path: Path) -> None:
    """The child is started with ``python -P -m``: a folder named ``certfleet`` where the
    command runs is not imported in its place."""
    (tmp_path / "certfleet").mkdir()
    (tmp_path / "certfleet" / "__init__.py").write_text('raise SystemExit("not certfleet")\n')
    with socket.create_server(("127.0.0.1", 0)) as closed:
        target = f"127.0.0.1:{closed.getsockname()[1]}"
    command = [CERTFLEET, "scan", "net", target, "--timeout", "5", "--quiet", "--format", "json"]
    command += ["--data-dir", str(initialized.data_dir), "--db", initialized.db_url]

    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, check=False, timeout=120)

    assert done.returncode == 0, done.stderr
    [outcome] = json.loads(done.stdout)["outcomes"]
    assert outcome["status"] == "refused", outcome
