"""Workload attestation from the socket's peer: selectors from the kernel and /proc, and a
process that is gone or whose pid was reused is never attested."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from certfleet.agent.workload.attestation import (
    ExecutableHashes,
    PeerCredentials,
    attest,
    peer_credentials,
    start_time,
)
from certfleet.agent.workload.errors import AttestationFailed
from tests.agent.workload.workloads import OTHER_UID, as_uid, needs_root

CONNECT = "import socket, sys; s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); sys.stdin.read()"

pytestmark = needs_root


@pytest.fixture
def listener(socket_path: Path) -> socket.socket:
    socket_path.parent.mkdir(mode=0o755)
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(socket_path))
    socket_path.chmod(0o777)
    server.listen(1)
    return server


def test_selectors_name_uid_gid_executable_and_its_digest(listener: socket.socket, socket_path: Path) -> None:
    # Given a process under another uid connected to the socket
    peer = subprocess.Popen(
        [*as_uid(OTHER_UID), sys.executable, "-c", CONNECT, str(socket_path)], stdin=subprocess.PIPE
    )
    try:
        accepted, _ = listener.accept()
        # When the agent attests it
        credentials = peer_credentials(accepted)
        workload = attest(credentials, start_time(credentials.pid), ExecutableHashes())
        assert workload is not None
    finally:
        peer.communicate(b"")
    # Then the kernel's view of it becomes its selectors (setpriv execs: same pid)
    executable = Path(os.path.realpath(sys.executable))
    assert credentials == PeerCredentials(peer.pid, OTHER_UID, OTHER_UID)
    assert workload.selectors == {
        f"unix:uid:{OTHER_UID}",
        f"unix:gid:{OTHER_UID}",
        f"unix:path:{executable}",
        f"unix:sha256:{hashlib.sha256(executable.read_bytes()).hexdigest()}",
    }


def test_a_reused_pid_is_not_attested() -> None:
    # A start time other than the process's is what a pid reused by another process shows.
    me = PeerCredentials(os.getpid(), os.getuid(), os.getgid())
    started = start_time(os.getpid())
    attested = attest(me, started, ExecutableHashes())
    assert attested is not None and attested.credentials == me
    with pytest.raises(AttestationFailed, match="reused"):
        attest(me, started + 1, ExecutableHashes())


def test_a_process_that_exited_is_not_attested() -> None:
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    pid = int(gone.stdout)
    with pytest.raises(AttestationFailed):
        attest(PeerCredentials(pid, 0, 0), 1, ExecutableHashes())
