"""Two real ``certfleet serve`` nodes on one real PostgreSQL, each reaching it through a
loopback TCP proxy the test controls, behind a round-robin proxy that plays the load balancer:

- certbot's ``acme`` client, a new connection per request, gets a certificate whichever node
  each request reaches (accounts, orders and nonces live in the database);
- a revocation made on one node is what OCSP and the CRL say on the other;
- a node that loses its database reports 503 on /healthz and refuses issuance with 503
  problem+json, issues nothing while the other keeps issuing, and recovers by itself;
- ``kill -9`` of a node under load: the other keeps serving, an ACME order begun on the dead
  node completes on the survivor, and the renewal jobs the dead node had leased are renewed
  by the survivor once their (test-short) lease expired, each exactly once.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import josepy as jose
import psycopg
import pytest
from acme import challenges, client, crypto_util, messages
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp

from certfleet import __version__
from certfleet.lifecycle.scheduler import MIN_LEASE
from certfleet.store import Database
from certfleet.store._nodes import NodeBeat, node_beats
from certfleet.x509 import KeyType, generate_private_key
from tests.api.conftest import make_csr
from tests.conftest import FakeClock, _pg_admin_url, make_platform
from tests.integration.test_renewal_two_servers import NamedServer, _processes, _query
from tests.integration.test_serve import certfleet
from tests.lifecycle.fleet import issue
from tests.ports import free_port

pytestmark = pytest.mark.integration

TIMEOUT = 60  # seconds: a deadline on a loaded 2-core machine, never a wait
LEASE_SECONDS = 3  # test-only: a dead node's jobs move after 3 s, not the default 300


class TcpProxy:
    """A loopback TCP proxy: each new connection goes to the next backend in turn (and to the
    one after when a backend refuses, as a load balancer's retry of a failed connect does);
    :meth:`cut` drops every connection and refuses new ones, :meth:`restore` listens again."""

    def __init__(self, backends: list[tuple[str, int]]) -> None:
        self.backends = backends
        self.port = free_port()
        self.hits: Counter[int] = Counter()  # connections per backend port
        self._lock = threading.Lock()
        self._next = 0
        self._open: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self.restore()

    def restore(self) -> None:
        listener = socket.create_server(("127.0.0.1", self.port))
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            doomed, self._open = list(self._open), set()
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread
            listener.close()
        for sock in doomed:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                downstream, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(downstream,), daemon=True).start()

    def _relay(self, downstream: socket.socket) -> None:
        upstream = None
        with self._lock:
            first = self._next
            self._next += 1
        # Each backend once, from this connection's turn on: with the shared counter read
        # again per try, a relay running beside another could be given the dead node twice.
        for offset in range(len(self.backends)):
            backend = self.backends[(first + offset) % len(self.backends)]
            try:
                upstream = socket.create_connection(backend, timeout=5)
                break
            except OSError:
                continue
        if upstream is None:
            downstream.close()
            return
        upstream.settimeout(None)
        for sock in (upstream, downstream):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            self.hits[backend[1]] += 1
            self._open |= {upstream, downstream}
        threading.Thread(target=self._pump, args=(upstream, downstream), daemon=True).start()
        self._pump(downstream, upstream)

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
            sink.shutdown(socket.SHUT_WR)
        except OSError:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        finally:
            with self._lock:
                self._open.discard(source)


class Http01:
    """The http-01 answers (token -> key authorization) for the address the nodes validate."""

    def __init__(self) -> None:
        answers: dict[str, str] = {}
        self.answers = answers

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = answers.get(self.path.rsplit("/", 1)[-1], "").encode()
                self.send_response(200 if body else 404)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@dataclass
class Node:
    name: str
    server: NamedServer
    database: TcpProxy  # this node's only way to PostgreSQL

    def pid(self) -> int:
        assert self.server.process is not None
        return self.server.process.pid

    def alive(self) -> bool:
        return self.server.process is not None and self.server.process.poll() is None


@dataclass
class Cluster:
    url: str  # PostgreSQL, straight (the test's own look-ups)
    a: Node
    b: Node
    https: TcpProxy  # the load balancer in front of both nodes' HTTPS listeners
    root: Path
    token: str
    http01: Http01
    issued: list[str] = field(default_factory=list)

    @property
    def nodes(self) -> tuple[Node, Node]:
        return self.a, self.b

    @property
    def balanced(self) -> str:
        return f"https://127.0.0.1:{self.https.port}"

    def api(self) -> httpx.Client:
        return httpx.Client(
            verify=ssl.create_default_context(cafile=self.root),
            headers={"Authorization": f"Bearer {self.token}", "Connection": "close"},
            timeout=TIMEOUT,
        )

    def issue(self, base: str, name: str) -> httpx.Response:
        pem = make_csr((name,), common_name=name)
        with self.api() as api:
            return api.post(f"{base}/api/v1/certificates", json={"csr": pem, "validity_days": 30})

    def ensure_running(self) -> None:
        """Both nodes up and connected (a test before may have killed one or cut its line)."""
        for node in self.nodes:
            if node.database._listener is None:
                node.database.restore()
            if not node.alive():
                node.server.start()
            wait_until(lambda n=node: _health(n.server.http) == 200, f"node {node.name} healthy")


def wait_until(predicate: object, what: str, timeout: float = TIMEOUT) -> None:
    """Poll a condition another process makes true, with a deadline (not a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out: {what}"
        time.sleep(0.05)


def _health(base: str) -> int:
    try:
        return httpx.get(f"{base}/healthz", timeout=TIMEOUT, headers={"Connection": "close"}).status_code
    except httpx.HTTPError:
        return 0


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    base = _pg_admin_url()
    name = f"certfleet_multinode_{secrets.token_hex(4)}"
    plain = base.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = base.rsplit("/", 1)[0] + "/" + name
    pg = psycopg.conninfo.conninfo_to_dict(plain)
    pg_address = (str(pg.get("host", "127.0.0.1")), int(pg.get("port", 5432)))
    http01 = Http01()
    root_dir = tmp_path_factory.mktemp("multinode")
    first = root_dir / "a" / "data"
    certfleet("init", "--data-dir", str(first), "--db", url)
    (first / "config.toml").write_text(
        f"[acme]\nhttp01_port = {http01.port}\n"
        f"[lifecycle]\ninterval_seconds = 0.2\nlease_seconds = {LEASE_SECONDS}\nbatch_size = 2\n"
    )
    nodes: list[Node] = []
    for label, data_dir in (("a", first), ("b", root_dir / "b" / "data")):
        if label == "b":  # the same CA keys (the listener's CA's too, made by a's first start)
            shutil.copytree(first, data_dir, ignore=shutil.ignore_patterns("*.log"))
        line = TcpProxy([pg_address])
        via = url.replace(f"{pg_address[0]}:{pg_address[1]}", f"127.0.0.1:{line.port}")
        server = NamedServer(data_dir, name=label, extra=["--workers", "1", "--db", via])
        server.start()
        nodes.append(Node(label, server, line))
    a, b = nodes
    balancer = TcpProxy([("127.0.0.1", a.server.https_port), ("127.0.0.1", b.server.https_port)])
    token = certfleet(
        "token", "create", "--team", "ops", "--scope", "admin", "--data-dir", str(first), "--db", url
    )
    cluster = Cluster(
        url, a, b, balancer, a.server.root_pem(root_dir / "root.pem"), token.stdout.strip(), http01
    )
    yield cluster
    for node in cluster.nodes:
        node.database.restore() if node.database._listener is None else None
        if node.alive():
            node.server.stop()
    balancer.cut()
    http01.server.shutdown()
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def nodes(cluster: Cluster) -> Cluster:
    cluster.ensure_running()
    return cluster


def _acme_client(cluster: Cluster) -> client.ClientV2:
    """certbot's ``acme`` client through the load balancer, a new connection per request: the
    requests alternate between the nodes."""
    key = jose.JWKEC(key=ec.generate_private_key(ec.SECP256R1()))
    net = client.ClientNetwork(key, alg=jose.ES256, verify_ssl=str(cluster.root), user_agent="multinode-test")
    net.session.headers["Connection"] = "close"
    directory = client.ClientV2.get_directory(f"{cluster.balanced}/acme/directory", net)
    acme = client.ClientV2(directory, net)
    acme.new_account(messages.NewRegistration.from_data(terms_of_service_agreed=True))
    return acme


def _order_validated(cluster: Cluster, acme: client.ClientV2) -> tuple[messages.OrderResource, bytes]:
    """A new order for 127.0.0.1 (an IP identifier, RFC 8738) with its http-01 challenge
    answered and its authorization valid. Returns the order and the CSR's key."""
    key_pem = generate_private_key(KeyType.EC_P256).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    csr = crypto_util.make_csr(key_pem, ipaddrs=[ipaddress.ip_address("127.0.0.1")])
    order = acme.new_order(csr)
    for authz in order.authorizations:
        challenge = next(c for c in authz.body.challenges if isinstance(c.chall, challenges.HTTP01))
        response, validation = challenge.response_and_validation(acme.net.key)
        cluster.http01.answers[challenge.chall.encode("token")] = validation
        acme.answer_challenge(challenge, response)
        deadline = time.monotonic() + TIMEOUT
        while True:  # the validation runs on whichever node took the answer
            authz, _ = acme.poll(authz)
            if authz.body.status != messages.STATUS_PENDING:
                break
            assert time.monotonic() < deadline, "authorization still pending"
            time.sleep(0.05)
        assert authz.body.status == messages.STATUS_VALID, authz.body
    return order, key_pem


def _finished(acme: client.ClientV2, order: messages.OrderResource) -> x509.Certificate:
    done = acme.poll_and_finalize(order, dt.datetime.now() + dt.timedelta(seconds=TIMEOUT))
    assert done.fullchain_pem is not None
    return x509.load_pem_x509_certificates(done.fullchain_pem.encode())[0]


def test_acme_works_whichever_node_each_request_reaches(nodes: Cluster) -> None:
    acme = _acme_client(nodes)
    nodes.https.hits.clear()

    leaves = [_finished(acme, _order_validated(nodes, acme)[0]) for _ in range(2)]

    # Both nodes answered part of every order (nonces from one were spent on the other).
    assert nodes.https.hits[nodes.a.server.https_port] >= 5, nodes.https.hits
    assert nodes.https.hits[nodes.b.server.https_port] >= 5, nodes.https.hits
    for leaf in leaves:
        sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
        [(count,)] = _query(
            nodes.url, f"SELECT count(*) FROM certificates WHERE serial = '{leaf.serial_number:x}'"
        )
        assert count == 1


def test_every_node_records_its_heartbeat_and_clock(nodes: Cluster) -> None:
    """What ``certfleet db check`` lists (its output is tested in tests/cli/test_db_check.py)."""

    def listed() -> dict[str, NodeBeat]:
        database = Database(nodes.url)
        try:
            return {beat.node_id.rsplit(":", 1)[1]: beat for beat in node_beats(database)}
        finally:
            database.dispose()

    # Each node's first heartbeat is written when its scheduler starts.
    wait_until(lambda: all(_processes(n.server) & set(listed()) for n in nodes.nodes), "both nodes listed")
    seen = listed()
    for node in nodes.nodes:
        [pid] = _processes(node.server) & set(seen)
        assert abs(seen[pid].clock_skew_seconds) < 1  # one machine, one clock
        assert seen[pid].version == __version__


def _ocsp(base: str, leaf: x509.Certificate, issuer: x509.Certificate) -> ocsp.OCSPCertStatus:
    request = ocsp.OCSPRequestBuilder().add_certificate(leaf, issuer, hashes.SHA1()).build()
    response = httpx.post(
        f"{base}/ocsp",
        content=request.public_bytes(serialization.Encoding.DER),
        headers={"Content-Type": "application/ocsp-request", "Connection": "close"},
        timeout=TIMEOUT,
    )
    assert response.status_code == 200, response.text
    answer = ocsp.load_der_ocsp_response(response.content)
    assert answer.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    return answer.certificate_status


def _crl(base: str, leaf: x509.Certificate) -> x509.CertificateRevocationList:
    points = leaf.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    full_name = points[0].full_name
    assert full_name is not None
    path = httpx.URL(str(full_name[0].value)).path
    response = httpx.get(f"{base}{path}", timeout=TIMEOUT, headers={"Connection": "close"})
    assert response.status_code == 200, response.text
    return x509.load_der_x509_crl(response.content)


def _crl_number(crl: x509.CertificateRevocationList) -> int:
    return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number


def test_ocsp_and_crls_agree_on_every_node(nodes: Cluster) -> None:
    response = nodes.issue(nodes.a.server.https, "agree.multinode.example.test")
    assert response.status_code == 201, response.text
    body = response.json()
    leaf = x509.load_pem_x509_certificate(body["certificate_pem"].encode())
    issuer = x509.load_pem_x509_certificates(body["chain_pem"].encode())[0]
    for node in nodes.nodes:
        assert _ocsp(node.server.http, leaf, issuer) == ocsp.OCSPCertStatus.GOOD

    with nodes.api() as api:  # revoked on b
        revoked = api.post(
            f"{nodes.b.server.https}/api/v1/certificates/{leaf.serial_number:x}/revoke",
            json={"reason": "keyCompromise"},
        )
    assert revoked.status_code == 200, revoked.text

    # OCSP on a says so at once (the revocation generation is read from the database).
    assert _ocsp(nodes.a.server.http, leaf, issuer) == ocsp.OCSPCertStatus.REVOKED
    assert _ocsp(nodes.b.server.http, leaf, issuer) == ocsp.OCSPCertStatus.REVOKED
    # The CRLs of both nodes list it, under the same CRL number, with the same entries.
    wait_until(
        lambda: all(
            _crl(n.server.http, leaf).get_revoked_certificate_by_serial_number(leaf.serial_number)
            for n in nodes.nodes
        ),
        "both CRLs list the revoked certificate",
    )
    crls = [_crl(n.server.http, leaf) for n in nodes.nodes]
    assert _crl_number(crls[0]) == _crl_number(crls[1])
    assert {r.serial_number for r in crls[0]} == {r.serial_number for r in crls[1]}
    assert crls[0].tbs_certlist_bytes == crls[1].tbs_certlist_bytes


def test_a_node_that_loses_the_database_stops_issuing_and_recovers(nodes: Cluster) -> None:
    a, b = nodes.nodes
    [(before,)] = _query(nodes.url, "SELECT count(*) FROM certificates")

    a.database.cut()

    wait_until(lambda: _health(a.server.http) == 503, "a reports unhealthy")
    health = httpx.get(f"{a.server.http}/healthz", timeout=TIMEOUT)
    assert health.headers["content-type"] == "application/problem+json"
    assert "database unreachable" in health.json()["detail"]
    with nodes.api() as api:
        https_health = api.get(f"{a.server.https}/healthz")
    assert https_health.status_code == 503 and "database" in https_health.json()["detail"]
    refused = nodes.issue(a.server.https, "alone.multinode.example.test")
    assert refused.status_code == 503, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.headers["retry-after"]
    assert "database is unavailable" in refused.json()["detail"]
    # ACME too: a node without its database hands out no nonce.
    nonce = httpx.head(
        f"{a.server.https}/acme/new-nonce", verify=ssl.create_default_context(cafile=nodes.root)
    )
    assert nonce.status_code == 503 and "replay-nonce" not in nonce.headers
    order = httpx.post(
        f"{a.server.https}/acme/new-order",
        content=b'{"protected": "", "payload": "", "signature": ""}',
        headers={"Content-Type": "application/jose+json"},
        verify=ssl.create_default_context(cafile=nodes.root),
    )
    assert order.status_code == 503, order.text  # RFC 8555 has no type for it: serverInternal
    assert order.headers["content-type"] == "application/problem+json" and order.headers["retry-after"]
    assert order.json()["type"] == "urn:ietf:params:acme:error:serverInternal"
    assert "database is unavailable" in order.json()["detail"]
    # b is unaffected
    assert _health(b.server.http) == 200
    served = nodes.issue(b.server.https, "meanwhile.multinode.example.test")
    assert served.status_code == 201, served.text
    [(during,)] = _query(nodes.url, "SELECT count(*) FROM certificates")
    assert during == before + 1  # b's only: a issued nothing on its own

    a.database.restore()

    wait_until(lambda: _health(a.server.http) == 200, "a healthy again")
    again = nodes.issue(a.server.https, "back.multinode.example.test")
    assert again.status_code == 201, again.text


class Receiver:
    """A webhook receiver: the event ids (the body's ``id``) it was sent, each time."""

    def __init__(self) -> None:
        received: list[int] = []
        self.received = received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                received.append(int(json.loads(body)["id"]))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_each_notification_is_sent_once_by_one_node(nodes: Cluster) -> None:
    receiver = Receiver()
    with nodes.api() as api:
        channel = api.post(
            f"{nodes.balanced}/api/v1/notifications/channels",
            json={
                "type": "webhook",
                "name": f"hook-{secrets.token_hex(3)}",
                "options": {"url": receiver.url},
                "events": ["revoked"],
            },
        )
        assert channel.status_code == 201, channel.text
        try:
            serials = []
            for index, node in enumerate(nodes.nodes * 3):  # issued and revoked on both nodes
                issued = nodes.issue(node.server.https, f"notice{index}.multinode.example.test")
                assert issued.status_code == 201, issued.text
                serial = issued.headers["location"].rsplit("/", 1)[1]
                revoked = api.post(
                    f"{node.server.https}/api/v1/certificates/{serial}/revoke", json={"reason": "superseded"}
                )
                assert revoked.status_code == 200, revoked.text
                serials.append(serial)

            seen: list[dict[str, object]] = []

            def settled() -> bool:
                # This test's notices only: a revocation of a test before that was not routed
                # yet when the channel appeared (its dispatch lease held by a node killed
                # meanwhile) is routed to it as well.
                seen[:] = [
                    d
                    for d in api.get(f"{nodes.balanced}/api/v1/notifications/deliveries").json()
                    if d["channel"] == channel.json()["id"] and d["subject"] in serials
                ]
                return len(seen) == len(serials) and all(d["state"] == "delivered" for d in seen)

            # The dispatch job runs every 5 s on whichever node holds its lease; when a test
            # before killed the node that held it (tests may run in any order on a worker),
            # the lease moves only when it expires: scheduler.MIN_LEASE later.
            try:
                wait_until(
                    settled,
                    "every revocation notice delivered",
                    timeout=TIMEOUT + MIN_LEASE.total_seconds(),
                )
            except AssertionError as timed_out:
                jobs = _query(
                    nodes.url, "SELECT name, lease_owner, lease_until, failures FROM scheduled_jobs"
                )
                raise AssertionError(f"{timed_out}; deliveries {seen}; jobs {jobs}") from None
        finally:
            api.delete(f"{nodes.balanced}/api/v1/notifications/channels/{channel.json()['id']}")
    ours = {int(str(d["event_id"])) for d in seen}
    assert len(ours) == len(serials)
    # each event once, by whichever node held the job
    assert sorted(e for e in receiver.received if e in ours) == sorted(ours)
    assert len(receiver.received) == len(set(receiver.received))
    receiver.server.shutdown()


@dataclass
class Load:
    """REST issuance through the load balancer, one thread, until stopped: status codes, and
    when each request that failed without an answer (in flight on a node killed under it) was
    sent."""

    cluster: Cluster
    statuses: Counter[int] = field(default_factory=Counter)
    unanswered: list[float] = field(default_factory=list)  # time.monotonic() when sent
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Load:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        index = 0
        while not self._stop.is_set():
            index += 1
            sent = time.monotonic()
            try:
                response = self.cluster.issue(self.cluster.balanced, f"load{index}.multinode.example.test")
                self.statuses[response.status_code] += 1
            except httpx.TransportError:
                self.unanswered.append(sent)

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(TIMEOUT)


def _due_renewals(cluster: Cluster, count: int) -> list[int]:
    """``count`` certificates issued three days ago for three days: due for renewal now."""
    then = FakeClock(dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(days=3))
    platform = make_platform(cluster.a.server.data_dir, cluster.url, then)
    try:
        key = generate_private_key(KeyType.EC_P256)
        tag = secrets.token_hex(3)
        ids = [
            issue(platform, f"due{i}-{tag}.multinode.example.test", key=key, days=3).record.id
            for i in range(count)
        ]
        then.set(dt.datetime.now(dt.UTC))
        platform.renewal.plan()
    finally:
        platform.close()
    return [i for i in ids if i is not None]


def test_kill_9_of_a_node_under_load(nodes: Cluster) -> None:
    a = nodes.a
    acme = _acme_client(nodes)
    order, _ = _order_validated(nodes, acme)  # begun across both nodes, not finalized
    due = _due_renewals(nodes, 30)
    with Load(nodes) as load:
        # Catch a holding leases: stop it (it finishes nothing more), note what it holds, kill it.
        marker = f"%:{a.pid()}:%"

        def a_holds_leases() -> bool:
            return bool(
                _query(
                    nodes.url,
                    f"SELECT 1 FROM renewal_jobs WHERE state = 'leased' AND lease_owner LIKE '{marker}'",
                )
            )

        held: list[tuple[int, object]] = []

        def a_stopped_holding_leases() -> bool:
            # a may finish what it held between the look and the stop: then let it go on
            if not a_holds_leases():
                return False
            os.kill(a.pid(), signal.SIGSTOP)
            held[:] = _query(
                nodes.url,
                "SELECT certificate_id, due_at FROM renewal_jobs "  # due_at: a leased job's lease end
                f"WHERE state = 'leased' AND lease_owner LIKE '{marker}'",
            )
            if not held:
                os.kill(a.pid(), signal.SIGCONT)
            return bool(held)

        wait_until(a_stopped_holding_leases, "a stopped while it leases renewal jobs")
        os.kill(a.pid(), signal.SIGKILL)
        assert a.server.process is not None
        a.server.process.wait(TIMEOUT)
        a_gone = time.monotonic()  # its sockets closed: the balancer now only reaches b
        served_before = load.statuses[201]
        # The survivor serves the load, and the order begun on both completes on it.
        leaf = _finished(acme, order)
        wait_until(lambda: load.statuses[201] >= served_before + 5, "the load served after the kill")
        wait_until(
            lambda: (
                _query(
                    nodes.url,
                    f"SELECT count(*) FROM renewal_jobs WHERE certificate_id IN "
                    f"({','.join(map(str, due))}) AND state = 'done'",
                )[0][0]
                == len(due)
            ),
            "every due certificate renewed",
        )
    assert set(load.statuses) == {201}, load.statuses  # no 5xx, no refusal
    # At most the one request in flight on a (the load is one thread, and a was stopped, so
    # that one hung), sent before a was gone: every one sent after reached b.
    assert len(load.unanswered) <= 1, load.unanswered
    assert all(sent < a_gone for sent in load.unanswered), (load.unanswered, a_gone)
    [(count,)] = _query(
        nodes.url, f"SELECT count(*) FROM certificates WHERE serial = '{leaf.serial_number:x}'"
    )
    assert count == 1
    # Each due certificate renewed exactly once; what a held was renewed by b after its lease.
    per_old = _query(
        nodes.url,
        "SELECT supersedes_id, count(*) FROM certificate_lineage "
        f"WHERE supersedes_id IN ({','.join(map(str, due))}) GROUP BY supersedes_id",
    )
    assert sorted(n for _, n in per_old) == [1] * len(due)
    assert held, "a held no lease when stopped"
    for certificate_id, lease_end in held:
        [(attempts, state, finished)] = _query(
            nodes.url,
            f"SELECT attempts, state, updated_at FROM renewal_jobs WHERE certificate_id = {certificate_id}",
        )
        # b leased it again only once a's lease had expired, and finished it (a may have issued
        # the successor just before it was stopped: then b found it and issued none, which the
        # exactly-once count above shows).
        assert (attempts, state) == (2, "done")
        assert finished >= lease_end  # type: ignore[operator]
