"""The audit log streamed to a real rsyslog (Debian's, with rsyslog-gnutls and rsyslog-relp)
over TLS, with octet-counting frames or with RELP: every entry arrives exactly as sent, in
order, at least once, even when the collector is frozen with entries in its socket buffers,
killed, and restarted; with RELP the cursor never passes an entry rsyslog did not
acknowledge."""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from certfleet.app import Platform
from certfleet.audit import AuditEntry, AuditLog
from certfleet.audit._syslog import format_rfc5424
from certfleet.config._siem import SiemSettings
from certfleet.services.siem import SiemSender, SiemUnavailable
from certfleet.x509 import KeyType
from tests.conftest import FakeClock, make_platform
from tests.discovery.pki import Pki, key_pem, pem
from tests.ports import free_port

RSYSLOGD = Path("/usr/sbin/rsyslogd")
IMRELP = Path("/usr/lib/x86_64-linux-gnu/rsyslog/imrelp.so")
HOSTNAME = "certfleet-test-node"
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not RSYSLOGD.exists(), reason="rsyslog is not installed"),
]
_SEQ = re.compile(rb'\[certfleet@32473 seq="(\d+)"')


class Rsyslog:
    """rsyslogd as a child process: imtcp with the gtls stream driver on loopback (and, when
    rsyslog-relp is installed, imrelp over TLS that admits only the client certificate
    ``client.pem``), every message's raw text (header, structured data, BOM and all) one line
    in a file."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.relp_port = free_port() if IMRELP.exists() else None
        self.output = workdir / "received.log"
        pki = Pki("SIEM collector")
        server = pki.leaf(["localhost", "127.0.0.1"], issuer=pki.root)
        (workdir / "ca.pem").write_bytes(pem(pki.root.cert))
        (workdir / "server.pem").write_bytes(pem(server.cert))
        (workdir / "server.key").write_bytes(key_pem(server.key))
        (workdir / "server.key").chmod(0o600)
        client = pki.leaf(["certfleet-node"], issuer=pki.root)
        (workdir / "client.pem").write_bytes(pem(client.cert))
        (workdir / "client.key").write_bytes(key_pem(client.key))
        (workdir / "client.key").chmod(0o600)
        (workdir / "spool").mkdir()
        relp = ""
        if self.relp_port is not None:
            # imrelp's TLS (librelp 1.11, GnuTLS by default): the collector's certificate and,
            # with authMode "name", only peers whose certificate names certfleet-node.
            relp = f"""module(load="imrelp")
input(type="imrelp" address="127.0.0.1" port="{self.relp_port}" tls="on"
      tls.caCert="{workdir / "ca.pem"}" tls.myCert="{workdir / "server.pem"}"
      tls.myPrivKey="{workdir / "server.key"}" tls.authMode="name"
      tls.permittedPeer=["certfleet-node"])
"""
        self.conf = workdir / "rsyslog.conf"
        self.conf.write_text(
            f"""
global(workDirectory="{workdir / "spool"}"
       defaultNetstreamDriver="gtls"
       defaultNetstreamDriverCAFile="{workdir / "ca.pem"}"
       defaultNetstreamDriverCertFile="{workdir / "server.pem"}"
       defaultNetstreamDriverKeyFile="{workdir / "server.key"}"
       maxMessageSize="64k")
module(load="imtcp" streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon")
input(type="imtcp" address="127.0.0.1" port="{self.port}")
{relp}template(name="raw" type="string" string="%rawmsg%\\n")
action(type="omfile" file="{self.output}" template="raw")
"""
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        pidfile = self.workdir / "rsyslogd.pid"
        pidfile.unlink(missing_ok=True)
        self.process = subprocess.Popen(
            [str(RSYSLOGD), "-n", "-f", str(self.conf), "-i", str(pidfile)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 15
        for port in (self.port, self.relp_port):
            while port is not None:  # listening once a TCP connection is accepted
                if self.process.poll() is not None:
                    raise RuntimeError(f"rsyslogd exited: {self.process.stderr.read().decode()}")  # type: ignore[union-attr]
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)

    def freeze(self) -> None:
        """SIGSTOP: the kernel still accepts bytes into the socket, nobody reads them."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def kill(self) -> None:
        """SIGKILL: whatever sat unread in its socket buffers is gone."""
        assert self.process is not None
        self.process.kill()
        self.process.wait()
        assert self.process.stderr is not None
        self.process.stderr.close()
        self.process = None

    def lines(self) -> list[bytes]:
        return self.output.read_bytes().splitlines() if self.output.exists() else []

    def wait_for(self, seqs: set[int], timeout: float = 20) -> list[bytes]:
        """The lines once every seq in ``seqs`` was written (omfile flushes per batch)."""
        deadline = time.monotonic() + timeout
        while True:
            lines = self.lines()
            seen = {int(m.group(1)) for line in lines if (m := _SEQ.search(line))}
            if seqs <= seen:
                return lines
            if time.monotonic() > deadline:
                raise AssertionError(f"rsyslog never received seqs {sorted(seqs - seen)[:10]}...")
            time.sleep(0.05)


@pytest.fixture(scope="module")
def rsyslog(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rsyslog]:
    collector = Rsyslog(tmp_path_factory.mktemp("rsyslog"))
    yield collector
    if collector.process is not None:
        collector.kill()


def _record(platform: Platform, count: int, label: str) -> None:
    with platform.store.unit_of_work() as uow:
        log = AuditLog(uow.audit, platform.clock)
        for i in range(count):
            # Characters RFC 5424 escapes in SD params, and UTF-8 in both params and MSG.
            log.record(f'ops "{label}"', "certificate.issued", f"svc-{i}]\\ü", {"n": i, "note": "größe ✓"})
        platform.clock.advance(dt.timedelta(seconds=1))  # type: ignore[attr-defined]


def _entries(platform: Platform) -> list[AuditEntry]:
    with platform.store.unit_of_work(read_only=True) as uow:
        return list(uow.audit.entries())


def _restart_with_empty_output(rsyslog: Rsyslog) -> None:
    if rsyslog.process is not None:  # still running from another test's run
        rsyslog.kill()
    rsyslog.output.unlink(missing_ok=True)
    rsyslog.start()


def _received_intact(entries: list[AuditEntry], lines: list[bytes]) -> list[int]:
    """The seqs of the audit lines received, in their order, each checked byte for byte."""
    sent = {e.seq: format_rfc5424(e, hostname=HOSTNAME) for e in entries}
    received = [(int(m.group(1)), line) for line in lines if (m := _SEQ.search(line))]
    for seq, line in received:
        assert line == sent[seq], f"entry {seq} arrived altered"
    return [seq for seq, _ in received]


def test_every_audit_entry_reaches_rsyslog_in_order_across_a_collector_crash(
    platform: Platform, rsyslog: Rsyslog
) -> None:
    _restart_with_empty_output(rsyslog)
    settings = SiemSettings(
        host="127.0.0.1",
        port=rsyslog.port,
        ca_file=str(rsyslog.workdir / "ca.pem"),
        hostname=HOSTNAME,
        batch_size=16,
    )
    sender = SiemSender(platform.store.unit_of_work, platform.store.siem_cursor(), settings, platform.clock)
    try:
        # Given entries delivered while the collector is up
        _record(platform, 30, "before")
        first = sender.deliver_once()
        assert first.delivered_seq == _entries(platform)[-1].seq
        rsyslog.wait_for({e.seq for e in _entries(platform)})

        # When the collector freezes, takes more entries into its socket buffers, and dies
        rsyslog.freeze()
        _record(platform, 25, "into the void")
        swallowed = sender.deliver_once()  # the kernel accepted them: the cursor moves on
        assert swallowed.delivered_seq == _entries(platform)[-1].seq
        rsyslog.kill()
        _record(platform, 10, "during the outage")
        with pytest.raises(SiemUnavailable):
            sender.deliver_once()
        assert sender.backlog() == 10  # the cursor stayed; nothing was dropped

        # Then after a restart every entry arrives, the swallowed ones included
        rsyslog.start()
        _record(platform, 5, "after")
        resumed = sender.deliver_once()
        entries = _entries(platform)
        assert resumed.reconnected and resumed.delivered_seq == entries[-1].seq
        assert sender.backlog() == 0
        lines = rsyslog.wait_for({e.seq for e in entries})
    finally:
        sender.close()

    received = _received_intact(entries, lines)
    assert list(dict.fromkeys(received)) == [e.seq for e in entries]  # every entry, first seen in order
    # each connection's stream is in order: a seq only goes down where a reconnect replayed
    drops = [i for i in range(1, len(received)) if received[i] <= received[i - 1]]
    assert len(drops) <= 1


@pytest.mark.skipif(not IMRELP.exists(), reason="rsyslog-relp is not installed")
def test_with_relp_the_cursor_moves_only_over_entries_rsyslog_acknowledged(
    platform: Platform, rsyslog: Rsyslog
) -> None:
    _restart_with_empty_output(rsyslog)
    assert rsyslog.relp_port is not None
    settings = SiemSettings(
        host="localhost",
        transport="relp",
        port=rsyslog.relp_port,
        ca_file=str(rsyslog.workdir / "ca.pem"),
        client_cert=str(rsyslog.workdir / "client.pem"),
        client_key=str(rsyslog.workdir / "client.key"),
        hostname=HOSTNAME,
        batch_size=16,
        ack_timeout_seconds=0.5,  # test-only: how long a frozen collector is given
    )
    sender = SiemSender(platform.store.unit_of_work, platform.store.siem_cursor(), settings, platform.clock)
    try:
        # Given entries delivered and acknowledged while the collector is up
        _record(platform, 30, "before")
        first = sender.deliver_once()
        assert first.delivered_seq == _entries(platform)[-1].seq and sender.backlog() == 0
        rsyslog.wait_for({e.seq for e in _entries(platform)})
        _record(platform, 3, "same session")
        again = sender.deliver_once()  # the RELP session (and its TLS connection) is kept
        assert not again.reconnected and again.sent == 3 and sender.backlog() == 0
        rsyslog.wait_for({e.seq for e in _entries(platform)})

        # When the collector freezes with entries in its socket buffers: no acknowledgement,
        # so the cursor stays before every one of them (plain TCP moved past them here)
        rsyslog.freeze()
        _record(platform, 25, "into the void")
        with pytest.raises(SiemUnavailable, match=r"no acknowledgement within 0\.5 s"):
            sender.deliver_once()
        assert sender.backlog() == 25  # exactly the unacknowledged ones

        # and dies, and more entries are written during the outage
        rsyslog.kill()
        _record(platform, 10, "during the outage")
        with pytest.raises(SiemUnavailable, match="unreachable"):
            sender.deliver_once()
        assert sender.backlog() == 35

        # Then after a restart every entry arrives, from the first unacknowledged one
        rsyslog.start()
        _record(platform, 5, "after")
        resumed = sender.deliver_once()
        entries = _entries(platform)
        assert resumed.reconnected and resumed.delivered_seq == entries[-1].seq
        assert resumed.sent == 40  # no replay window: only what was never acknowledged
        assert sender.backlog() == 0
        lines = rsyslog.wait_for({e.seq for e in entries})
    finally:
        sender.close()

    received = _received_intact(entries, lines)
    assert list(dict.fromkeys(received)) == [e.seq for e in entries]  # every one, in order


@pytest.mark.skipif(not IMRELP.exists(), reason="rsyslog-relp is not installed")
def test_serve_configured_for_relp_streams_to_rsyslog_from_its_scheduler(
    data_dir: Path, db_url: str, clock: FakeClock, rsyslog: Rsyslog
) -> None:
    _restart_with_empty_output(rsyslog)  # only this test's lines
    assert rsyslog.relp_port is not None
    (data_dir / "config.toml").write_text(
        f"""[audit.siem]
transport = "relp"
host = "localhost"
port = {rsyslog.relp_port}
ca_file = "{rsyslog.workdir / "ca.pem"}"
client_cert = "{rsyslog.workdir / "client.pem"}"
client_key = "{rsyslog.workdir / "client.key"}"
hostname = "{HOSTNAME}-serve"
"""
    )
    platform = make_platform(data_dir, db_url, clock)
    try:
        platform.authorities.initialize("Test", KeyType.EC_P256, actor="test")
        assert "audit.siem" in platform.scheduler.tick()
        entries = _entries(platform)
        assert "certfleet_siem_undelivered_entries 0.0" in platform.metrics.exposition(None).decode()
        lines = rsyslog.wait_for({e.seq for e in entries})
    finally:
        platform.close()
    audit_lines = [line for line in lines if _SEQ.search(line)]  # not rsyslog's own messages
    assert audit_lines == [format_rfc5424(e, hostname=f"{HOSTNAME}-serve") for e in entries]


@pytest.mark.skipif(not IMRELP.exists(), reason="rsyslog-relp is not installed")
def test_relp_without_the_permitted_client_certificate_delivers_nothing(
    platform: Platform, rsyslog: Rsyslog
) -> None:
    if rsyslog.process is None:
        rsyslog.start()
    assert rsyslog.relp_port is not None
    settings = SiemSettings(
        host="localhost",
        transport="relp",
        port=rsyslog.relp_port,
        ca_file=str(rsyslog.workdir / "ca.pem"),
        connect_timeout_seconds=5,
    )
    sender = SiemSender(platform.store.unit_of_work, platform.store.siem_cursor(), settings, platform.clock)
    _record(platform, 3, "anonymous")
    backlog = sender.backlog()
    try:
        with pytest.raises(SiemUnavailable) as caught:
            sender.deliver_once()  # imrelp (authMode name) ends the session: no open answer
    finally:
        sender.close()
    assert "RELP session not opened" in caught.value.detail, caught.value.detail
    assert sender.backlog() == backlog == len(_entries(platform))
