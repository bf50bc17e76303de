"""The Workload API as workloads see it: real py-spiffe clients in their own processes
(under other uids), and gRPC calls made with py-spiffe's stubs from this process."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from spiffe._proto import workload_pb2, workload_pb2_grpc

from certfleet.agent.workload import WorkloadEndpoint, WorkloadError
from tests.agent.workload.fakes import FakeSvidSource
from tests.agent.workload.workloads import (
    HEADER,
    NOBODY,
    OTHER_UID,
    line,
    needs_root,
    started,
    workload,
    workload_env,
)
from tests.conftest import FakeClock

PYTHON = os.path.realpath(sys.executable)

pytestmark = needs_root


def test_workloads_under_different_uids_get_their_own_identity(
    endpoint: WorkloadEndpoint, source: FakeSvidSource
) -> None:
    # Given entries for uid 1000 and for root; none for nobody
    source.add("web", "ns/web", f"unix:uid:{OTHER_UID}")
    source.add("root", "ns/root", "unix:uid:0", f"unix:path:{PYTHON}")
    endpoint.refresh_now()
    # Then each workload gets the SVID of its own entry, and nobody gets none
    assert workload(endpoint.socket_path, "x509", uid=OTHER_UID)["spiffe_id"] == "spiffe://example.org/ns/web"
    assert workload(endpoint.socket_path, "x509")["spiffe_id"] == "spiffe://example.org/ns/root"
    refused = workload(endpoint.socket_path, "x509", uid=NOBODY)
    assert "PERMISSION_DENIED" in str(refused["error"])


def test_a_copy_of_the_binary_elsewhere_does_not_match_a_path_selector(
    endpoint: WorkloadEndpoint, source: FakeSvidSource, socket_path: Path
) -> None:
    # Given an entry for root running the interpreter from its real path
    source.add("root", "ns/root", "unix:uid:0", f"unix:path:{PYTHON}")
    endpoint.refresh_now()
    copy = socket_path.parent.parent / "python-copy"
    shutil.copy2(PYTHON, copy)
    # When the same bytes run from another path, the entry does not match
    env = workload_env(socket_path, PYTHONPATH=os.pathsep.join(sys.path))
    done = subprocess.run(
        [str(copy), "-m", "tests.agent.workload.workload", "x509"],
        cwd=Path(__file__).resolve().parents[3],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert "PERMISSION_DENIED" in done.stdout, done.stderr


def _stub(channel: grpc.Channel) -> workload_pb2_grpc.SpiffeWorkloadAPIStub:
    return workload_pb2_grpc.SpiffeWorkloadAPIStub(channel)  # type: ignore[no-untyped-call]


@pytest.mark.parametrize(
    "call",
    [
        lambda stub, md: next(stub.FetchX509SVID(workload_pb2.X509SVIDRequest(), metadata=md)),
        lambda stub, md: next(stub.FetchX509Bundles(workload_pb2.X509BundlesRequest(), metadata=md)),
        lambda stub, md: stub.FetchJWTSVID(workload_pb2.JWTSVIDRequest(audience=["a"]), metadata=md),
        lambda stub, md: next(stub.FetchJWTBundles(workload_pb2.JWTBundlesRequest(), metadata=md)),
        lambda stub, md: stub.ValidateJWTSVID(
            workload_pb2.ValidateJWTSVIDRequest(audience="a", svid="x.y.z"), metadata=md
        ),
    ],
    ids=["FetchX509SVID", "FetchX509Bundles", "FetchJWTSVID", "FetchJWTBundles", "ValidateJWTSVID"],
)
def test_calls_without_the_workload_header_are_invalid(
    channel: grpc.Channel, source: FakeSvidSource, endpoint: WorkloadEndpoint, call: object
) -> None:
    source.add("root", "ns/root", "unix:uid:0")
    endpoint.refresh_now()
    stub = _stub(channel)
    for metadata in ((), (("workload.spiffe.io", "false"),)):
        with pytest.raises(grpc.RpcError) as raised:
            call(stub, metadata)  # type: ignore[operator]
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "security header" in str(raised.value.details())


def test_a_caller_matching_no_entry_is_denied(
    channel: grpc.Channel, source: FakeSvidSource, endpoint: WorkloadEndpoint
) -> None:
    # Given entries for other callers only (this test runs as root)
    source.add("web", "ns/web", f"unix:uid:{OTHER_UID}")
    source.add("root-elsewhere", "ns/other", "unix:uid:0", "unix:path:/usr/bin/not-python")
    endpoint.refresh_now()
    stub = _stub(channel)
    for call in (
        lambda: next(stub.FetchX509SVID(workload_pb2.X509SVIDRequest(), metadata=HEADER)),
        lambda: stub.FetchJWTSVID(workload_pb2.JWTSVIDRequest(audience=["a"]), metadata=HEADER),
    ):
        with pytest.raises(grpc.RpcError) as raised:
            call()
        assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_bundles_reach_any_caller_with_the_header(channel: grpc.Channel, source: FakeSvidSource) -> None:
    stub = _stub(channel)
    x509 = next(stub.FetchX509Bundles(workload_pb2.X509BundlesRequest(), metadata=HEADER))
    assert dict(x509.bundles) == {"spiffe://example.org": source.bundle().x509_authorities_der[0]}
    jwt = next(stub.FetchJWTBundles(workload_pb2.JWTBundlesRequest(), metadata=HEADER))
    assert json.loads(jwt.bundles["spiffe://example.org"])["keys"][0]["kid"] == source.kid


def test_the_stream_pushes_the_rotated_svid_at_half_its_lifetime(
    endpoint: WorkloadEndpoint, source: FakeSvidSource, clock: FakeClock
) -> None:
    # Given a workload streaming its SVID (1 hour TTL)
    source.add("web", "ns/web", f"unix:uid:{OTHER_UID}", ttl_seconds=3600)
    endpoint.refresh_now()
    watcher = started(endpoint.socket_path, "stream", "2", uid=OTHER_UID)
    try:
        first = line(watcher)
        # When a pass runs before half the lifetime, nothing is reissued
        clock.advance(dt.timedelta(minutes=29))
        endpoint.refresh_now()
        assert source.issued == {"web": 1}
        # When half the lifetime has passed, the agent rotates and the stream pushes it
        clock.advance(dt.timedelta(minutes=2))
        endpoint.refresh_now()
        second = line(watcher)
    finally:
        watcher.wait(60)
    assert source.issued == {"web": 2}
    assert first["spiffe_id"] == second["spiffe_id"] == "spiffe://example.org/ns/web"
    assert first["serial"] != second["serial"]
    assert watcher.returncode == 0


def test_cached_svids_are_served_while_the_server_is_down(
    endpoint: WorkloadEndpoint, source: FakeSvidSource, clock: FakeClock
) -> None:
    source.add("web", "ns/web", f"unix:uid:{OTHER_UID}", ttl_seconds=3600)
    endpoint.refresh_now()
    before = workload(endpoint.socket_path, "x509", uid=OTHER_UID)
    # Given the server unreachable past the rotation time (but before expiry)
    source.down = True
    clock.advance(dt.timedelta(minutes=45))
    endpoint.refresh_now()
    # Then the workload still gets the cached SVID
    assert workload(endpoint.socket_path, "x509", uid=OTHER_UID)["serial"] == before["serial"]
    # And once the server is back, the next pass rotates it
    source.down = False
    endpoint.refresh_now()
    assert workload(endpoint.socket_path, "x509", uid=OTHER_UID)["serial"] != before["serial"]


def test_an_expired_svid_is_never_served(
    endpoint: WorkloadEndpoint, source: FakeSvidSource, clock: FakeClock
) -> None:
    entry = source.add("web", "ns/web", f"unix:uid:{OTHER_UID}", ttl_seconds=3600)
    endpoint.refresh_now()
    source.down = True
    clock.advance(dt.timedelta(minutes=61))
    endpoint.refresh_now()
    assert endpoint.cache is not None
    assert endpoint.cache.x509_svids([entry]) == []


def test_a_jwt_svid_is_fetched_and_validated(
    endpoint: WorkloadEndpoint, source: FakeSvidSource, channel: grpc.Channel
) -> None:
    source.add("web", "ns/web", f"unix:uid:{OTHER_UID}")
    endpoint.refresh_now()
    fetched = workload(endpoint.socket_path, "token", "billing", uid=OTHER_UID)
    assert fetched["spiffe_id"] == "spiffe://example.org/ns/web"
    stub = _stub(channel)
    token = str(fetched["token"])
    valid = stub.ValidateJWTSVID(
        workload_pb2.ValidateJWTSVIDRequest(audience="billing", svid=token), metadata=HEADER
    )
    assert valid.spiffe_id == "spiffe://example.org/ns/web"
    assert list(valid.claims["aud"]) == ["billing"]
    head, body, signature = token.split(".")
    for bad, reason in (
        (token, "audience"),  # asked about another audience
        (f"{head}.{body}.{signature[::-1]}", "signature"),
    ):
        with pytest.raises(grpc.RpcError) as raised:
            stub.ValidateJWTSVID(
                workload_pb2.ValidateJWTSVIDRequest(audience="other" if reason == "audience" else "billing",
                                                    svid=bad),
                metadata=HEADER,
            )  # fmt: skip
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert reason in str(raised.value.details())


FORK_AND_EXIT = """
import os, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
if os.fork():
    os._exit(0)              # the process the agent attested exits at once
s.settimeout(60)
while s.recv(65536):         # the gRPC server's settings frame, then end-of-file
    pass
print("closed", flush=True)
"""


def test_the_connection_is_closed_when_the_attested_process_exits(endpoint: WorkloadEndpoint) -> None:
    # Given a connection whose attested process exits, leaving the socket to its child
    child = subprocess.run(
        [sys.executable, "-c", FORK_AND_EXIT, str(endpoint.socket_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # Then the agent closes it: the child reads end-of-file (not a timeout after 60 s)
    assert child.stdout.strip() == "closed", child.stderr


def test_two_workloads_authenticate_each_other_with_only_what_the_api_gave(
    endpoint: WorkloadEndpoint, source: FakeSvidSource
) -> None:
    # Given two workloads under different uids, each with its own entry
    source.add("web", "ns/web", f"unix:uid:{OTHER_UID}")
    source.add("api", "ns/api", f"unix:uid:{OTHER_UID + 1}")
    endpoint.refresh_now()
    # When api serves mutual TLS with its SVID and web connects with its own
    server = started(endpoint.socket_path, "serve", "spiffe://example.org/ns/web", uid=OTHER_UID + 1)
    try:
        port = line(server)["port"]
        client = workload(
            endpoint.socket_path, "connect", str(port), "spiffe://example.org/ns/api", uid=OTHER_UID
        )
        served = line(server)
    finally:
        server.wait(60)
    # Then each saw the other's SPIFFE ID, through a chain to the bundle
    assert client == {
        "me": "spiffe://example.org/ns/web",
        "server": "spiffe://example.org/ns/api",
        "answer": "hello spiffe://example.org/ns/web, I am spiffe://example.org/ns/api",
    }
    assert served == {
        "me": "spiffe://example.org/ns/api",
        "client": "spiffe://example.org/ns/web",
        "received": "ping from spiffe://example.org/ns/web",
    }


def test_jwt_source_fetches_and_validates_a_jwt_svid(
    endpoint: WorkloadEndpoint, source: FakeSvidSource
) -> None:
    source.add("web", "ns/web", f"unix:uid:{OTHER_UID}")
    endpoint.refresh_now()
    result = workload(endpoint.socket_path, "jwt", "billing", uid=OTHER_UID)
    assert result["local"] == result["remote"] == "spiffe://example.org/ns/web"
    assert "INVALID_ARGUMENT" in str(result["other"])


def test_a_rotation_pushes_the_full_set(
    endpoint: WorkloadEndpoint, source: FakeSvidSource, clock: FakeClock
) -> None:
    # Given a workload matching two entries, one of them short-lived
    source.add("short", "ns/short", f"unix:uid:{OTHER_UID}", ttl_seconds=600)
    source.add("long", "ns/long", f"unix:uid:{OTHER_UID}", "unix:gid:1000", ttl_seconds=3600)
    endpoint.refresh_now()
    watcher = started(endpoint.socket_path, "stream", "2", uid=OTHER_UID)
    try:
        first = line(watcher)
        # When only the short one rotates
        clock.advance(dt.timedelta(minutes=6))
        endpoint.refresh_now()
        second = line(watcher)
    finally:
        watcher.wait(60)
    # Then the push holds both: the new short one and the unchanged long one
    assert source.issued == {"short": 2, "long": 1}
    before, after = first["all"], second["all"]
    assert isinstance(before, dict) and isinstance(after, dict)
    assert set(before) == set(after) == {"spiffe://example.org/ns/short", "spiffe://example.org/ns/long"}
    assert after["spiffe://example.org/ns/long"] == before["spiffe://example.org/ns/long"]
    assert after["spiffe://example.org/ns/short"] != before["spiffe://example.org/ns/short"]


def test_a_deleted_entry_ends_its_workloads_stream(
    endpoint: WorkloadEndpoint, source: FakeSvidSource
) -> None:
    source.add("web", "ns/web", f"unix:uid:{OTHER_UID}")
    endpoint.refresh_now()
    watcher = started(endpoint.socket_path, "stream", "2", uid=OTHER_UID)
    try:
        assert line(watcher)["spiffe_id"] == "spiffe://example.org/ns/web"
        # When the entry is deleted on the server and the agent syncs
        del source._entries["web"]
        source.revision += 1
        endpoint.refresh_now()
        ended = line(watcher)
    finally:
        watcher.wait(60)
    assert "PERMISSION_DENIED" in str(ended["error"])


def test_an_existing_socket_directory_keeps_its_mode(
    socket_path: Path, source: FakeSvidSource, clock: FakeClock
) -> None:
    # A socket configured in /tmp-like directory must not take its sticky bit away.
    socket_path.parent.mkdir()
    socket_path.parent.chmod(0o1777)
    served = WorkloadEndpoint(socket_path, source, clock, background=False)
    served.start()
    try:
        assert socket_path.parent.stat().st_mode & 0o7777 == 0o1777
        assert socket_path.stat().st_mode & 0o777 == 0o777
    finally:
        served.stop()
    assert not socket_path.exists()


def test_the_socket_directory_is_made_0755_and_the_socket_0777_whatever_the_umask(
    socket_path: Path, source: FakeSvidSource, clock: FakeClock
) -> None:
    previous = os.umask(0o077)
    try:
        served = WorkloadEndpoint(socket_path, source, clock, background=False)
        served.start()
    finally:
        os.umask(previous)
    try:
        assert socket_path.parent.stat().st_mode & 0o7777 == 0o755
        assert socket_path.stat().st_mode & 0o777 == 0o777
    finally:
        served.stop()


def test_a_second_agent_does_not_take_over_a_served_socket(
    endpoint: WorkloadEndpoint, source: FakeSvidSource, clock: FakeClock
) -> None:
    second = WorkloadEndpoint(endpoint.socket_path, source, clock, background=False)
    with pytest.raises(WorkloadError, match="another process serves the Workload API"):
        second.start()
    # The first one still answers on its socket
    assert "error" in workload(endpoint.socket_path, "x509", uid=NOBODY)


def test_a_socket_left_behind_is_replaced(
    socket_path: Path, source: FakeSvidSource, clock: FakeClock
) -> None:
    socket_path.parent.mkdir(mode=0o755)
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(socket_path))
    stale.close()  # bound, never listening: what a killed agent leaves
    source.add("root", "ns/root", "unix:uid:0")
    served = WorkloadEndpoint(socket_path, source, clock, background=False)
    served.start()
    try:
        assert workload(socket_path, "x509")["spiffe_id"] == "spiffe://example.org/ns/root"
    finally:
        served.stop()
