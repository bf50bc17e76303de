"""OCSP responder throughput at concurrency 64: certfleet beside ``openssl ocsp`` and
``cfssl ocspserve`` on the same certificates, measured with wrk in the same run.

Setup: a fresh certfleet data directory with an EC P-256 CA; ``--certs`` certificates issued,
one in four revoked (keyCompromise). One SHA-1 CertID request per certificate, no nonce (the
RFC 5019 profile: responses can be pre-signed and cached).

1. certfleet: ``certfleet serve`` (``--workers N``, default one per core) on its plain-HTTP
   listener (a bare ASGI app). After one warm-up request per certificate every answer is in
   the worker's memory; each request still checks the revocation generation (SQLite: one
   ``PRAGMA data_version``), so a revocation from any process is seen by the next request.
   The same cached path is also timed in-process (no sockets, no HTTP parser): the
   responder's memory look-up alone, and the whole ASGI app for GET and POST.
2. ``openssl ocsp -index index.txt -port N`` with the same serials and revocations, signing
   with a delegated responder certificate issued by the same CA. It binds every interface, so
   it runs inside a private network namespace (``unshare -n``, loopback only), wrk with it.
   It signs each response as it is asked (no cache) and closes the connection each time.
3. ``cfssl ocspserve`` serving certfleet's own pre-signed responses from a file (one base64
   response per line): a Go server doing a lookup and a write, the ceiling for this design.

wrk cycles through the requests: GET ``{url}/{url-encoded base64}`` and POST
``application/ocsp-request``, ``-t2 -c64 -d5s`` each. Run as root (for ``unshare``):
``.venv/bin/python bench/ocsp.py [--certs 20] [--duration 5] [--workers N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp

from certfleet.api import create_public_app
from certfleet.app import open_platform
from certfleet.ca import IssuanceRequest, new_serial_number
from certfleet.ca.keys import SoftwareKeyBackend, load_or_create_passphrase
from certfleet.config import load_settings
from certfleet.revocation import build_responder_certificate
from certfleet.x509 import KeyType, generate_private_key

CERTFLEET = str(Path(sys.executable).with_name("certfleet"))
CONCURRENCY = 64
OPENSSL = "openssl ocsp -index"
CFSSL = "cfssl ocspserve"
READY_DEADLINE_SECONDS = 60


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class Fixture:
    """What every responder is asked about, and what it needs to answer."""

    requests: list[bytes]
    revoked: set[int]
    root: Path
    issuing: Path
    signer_cert: Path
    signer_key: Path
    index: Path


def prepare(work: Path, data_dir: Path, http_port: int, count: int) -> Fixture:
    data_dir.mkdir(mode=0o700)
    (data_dir / "config.toml").write_text(f'public_base_url = "http://127.0.0.1:{http_port}"\n')
    settings = load_settings({}, data_dir=data_dir)
    platform = open_platform(settings, create=True)
    try:
        platform.authorities.initialize("Bench", KeyType.EC_P256, actor="bench")
        issued = []
        for i in range(count):
            key = generate_private_key(KeyType.EC_P256)
            request = IssuanceRequest("tls-server", key.public_key(), (f"h{i}.bench.example.test",))
            issued.append(platform.issuance.issue(request, actor="bench").issued)
        revoked = set()
        lines = []
        for i, item in enumerate(issued):
            cert = item.certificate
            expiry = f"{cert.not_valid_after_utc:%y%m%d%H%M%SZ}"
            serial = format(cert.serial_number, "X")
            if i % 4 == 0:
                record = platform.revocation.revoke(serial, "keyCompromise", actor="bench")
                revoked.add(cert.serial_number)
                assert record.revoked_at is not None
                lines.append(
                    f"R\t{expiry}\t{record.revoked_at:%y%m%d%H%M%SZ},keyCompromise\t{serial}\tunknown\t/CN=h{i}"
                )
            else:
                lines.append(f"V\t{expiry}\t\t{serial}\tunknown\t/CN=h{i}")
        issuing_ca = platform.authorities.issuing_authority().issuer
        issuing_cert = issuing_ca.certificate
        requests = [
            ocsp.OCSPRequestBuilder()
            .add_certificate(item.certificate, issuing_cert, hashes.SHA1())
            .build()
            .public_bytes(serialization.Encoding.DER)
            for item in issued
        ]
        root_cert = platform.authorities.root().certificate
        # openssl's responder gets a delegated responder certificate like certfleet's own.
        keys = SoftwareKeyBackend(
            settings.data_dir.keys, load_or_create_passphrase(settings.passphrase_file, create=False)
        )
        signer_key = ec.generate_private_key(ec.SECP256R1())
        signer = build_responder_certificate(
            ca=issuing_ca,
            ca_key=keys.load(issuing_ca.key_ref),
            public_key=signer_key.public_key(),
            serial_number=new_serial_number(),
            now=dt.datetime.now(dt.UTC),
            lifetime=dt.timedelta(days=14),
        )
    finally:
        platform.close()
    pem = serialization.Encoding.PEM
    paths = {
        name: work / name for name in ("root.pem", "issuing.pem", "signer.pem", "signer.key", "index.txt")
    }
    paths["root.pem"].write_bytes(root_cert.public_bytes(pem))
    paths["issuing.pem"].write_bytes(issuing_cert.public_bytes(pem))
    paths["signer.pem"].write_bytes(signer.public_bytes(pem))
    paths["signer.key"].write_bytes(
        signer_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    paths["signer.key"].chmod(0o600)
    paths["index.txt"].write_text("\n".join(lines) + "\n")
    (work / "index.txt.attr").write_text("unique_subject = no\n")
    return Fixture(
        requests,
        revoked,
        paths["root.pem"],
        paths["issuing.pem"],
        paths["signer.pem"],
        paths["signer.key"],
        paths["index.txt"],
    )


def lua_string(data: bytes) -> str:
    return '"' + "".join(f"\\{b}" for b in data) + '"'


# wrk checks the address by connecting and closing at once before it starts; OpenSSL 3.0's
# responder then spins for ever on that empty connection (read() returning 0 in a loop, seen
# with strace) and answers nothing more. The scripts resolve without that probe.
NO_PROBE = "wrk.resolve = function(host, service) wrk.addrs = wrk.lookup(host, service) end\n"


def write_scripts(work: Path, name: str, prefix: str, requests: list[bytes]) -> tuple[Path, Path]:
    """wrk scripts cycling through the requests: GET paths and POST bodies."""
    paths = [f"{prefix}/{urllib.parse.quote(base64.b64encode(r).decode(), safe='')}" for r in requests]
    get = work / f"{name}-get.lua"
    get.write_text(
        NO_PROBE + "local paths = {" + ", ".join(f'"{p}"' for p in paths) + "}\n"
        "local i = 0\n"
        "request = function()\n  i = i % #paths + 1\n  return wrk.format('GET', paths[i])\nend\n"
    )
    post = work / f"{name}-post.lua"
    post.write_text(
        NO_PROBE + "local bodies = {" + ", ".join(lua_string(r) for r in requests) + "}\n"
        "local i = 0\n"
        "local headers = {['Content-Type'] = 'application/ocsp-request'}\n"
        "request = function()\n  i = i % #bodies + 1\n"
        f"  return wrk.format('POST', '{prefix or '/'}', headers, bodies[i])\nend\n"
    )
    return get, post


@dataclass(frozen=True)
class Rate:
    system: str
    method: str
    requests_per_second: float
    errors: str


def parse_wrk(system: str, method: str, output: str) -> Rate:
    match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if match is None:
        raise RuntimeError(f"wrk printed no rate for {system} {method}:\n{output}")
    problems = [line.strip() for line in output.splitlines() if "Non-2xx" in line or "Socket errors" in line]
    rate = Rate(system, method, float(match.group(1)), "; ".join(problems) or "-")
    print(f"# {system} {method}: {rate.requests_per_second:.0f} req/s ({rate.errors})", file=sys.stderr)
    return rate


def wrk(script: Path, url: str, duration: int) -> str:
    argv = ["wrk", "-t2", f"-c{CONCURRENCY}", f"-d{duration}s", "-s", str(script), url]
    return subprocess.run(argv, capture_output=True, text=True, check=True, timeout=duration + 60).stdout


def check_answers(system: str, fetch: dict[int, bytes], fixture: Fixture) -> None:
    """Every responder must give the same statuses before its rate counts."""
    for request, der in zip(fixture.requests, fetch.values(), strict=True):
        serial = ocsp.load_der_ocsp_request(request).serial_number
        response = ocsp.load_der_ocsp_response(der)
        assert response.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL, (
            system,
            response.response_status,
        )
        expected = ocsp.OCSPCertStatus.REVOKED if serial in fixture.revoked else ocsp.OCSPCertStatus.GOOD
        assert response.certificate_status is expected, (system, serial, response.certificate_status)


@contextmanager
def process(argv: list[str], log: Path, ready_url: str) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + READY_DEADLINE_SECONDS
        while True:
            try:
                httpx.get(ready_url, timeout=1)
                break
            except httpx.HTTPError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{argv[0]} did not start: {log.read_text()[-2000:]}") from None
                time.sleep(0.1)
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


IN_PROCESS_SECONDS = 2.0


def _per_second(call: Callable[[], object], seconds: float = IN_PROCESS_SECONDS) -> float:
    done = 0
    started = time.perf_counter()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        for _ in range(200):
            call()
        done += 200
    return done / (time.perf_counter() - started)


def bench_in_process(data_dir: Path, fixture: Fixture) -> list[Rate]:
    """The cached path without sockets or an HTTP parser, one thread: what one worker can do
    at most, and where the time goes when the HTTP figure is far below it."""
    platform = open_platform(load_settings({}, data_dir=data_dir), migrate=False)
    try:
        for request in fixture.requests:  # warm: every answer signed and in memory
            platform.revocation.ocsp(request)
        request = fixture.requests[1]
        remembered = platform.revocation.ocsp_remembered
        assert remembered(request) is not None
        rates = [Rate("in-process memory", "-", _per_second(lambda: remembered(request)), "-")]
        app = create_public_app(platform)
        path = "/ocsp/" + urllib.parse.quote(base64.b64encode(request).decode(), safe="")
        scopes = {
            "GET": {"type": "http", "method": "GET", "path": path, "raw_path": path.encode(), "headers": []},
            "POST": {
                "type": "http",
                "method": "POST",
                "path": "/ocsp",
                "raw_path": b"/ocsp",
                "headers": [
                    (b"content-type", b"application/ocsp-request"),
                    (b"content-length", str(len(request)).encode()),
                ],
            },
        }
        body = {"type": "http.request", "body": request, "more_body": False}
        statuses: list[int] = []

        async def receive() -> dict[str, object]:
            return body

        async def send(message: dict[str, object]) -> None:
            if message["type"] == "http.response.start":
                statuses.append(int(message["status"]))  # type: ignore[call-overload]

        async def loop(method: str) -> float:
            scope = scopes[method]
            done = 0
            started = time.perf_counter()
            while time.perf_counter() < started + IN_PROCESS_SECONDS:
                for _ in range(200):
                    await app(scope, receive, send)  # type: ignore[arg-type]
                done += 200
            return done / (time.perf_counter() - started)

        for method in ("GET", "POST"):
            statuses.clear()
            per_second = asyncio.run(loop(method))
            assert set(statuses) == {200}, (method, set(statuses))
            rates.append(Rate("in-process ASGI app", method, per_second, "-"))
        for rate in rates:
            print(f"# {rate.system} {rate.method}: {rate.requests_per_second:.0f} req/s", file=sys.stderr)
        return rates
    finally:
        platform.close()


def bench_certfleet(
    work: Path, data_dir: Path, http_port: int, fixture: Fixture, duration: int, workers: int | None
) -> tuple[list[Rate], list[bytes]]:
    https_port = free_port()
    base = f"http://127.0.0.1:{http_port}"
    argv = [
        CERTFLEET,
        "serve",
        "--data-dir",
        str(data_dir),
        "--http",
        f"127.0.0.1:{http_port}",
        "--https",
        f"127.0.0.1:{https_port}",
        *(["--workers", str(workers)] if workers else []),
    ]
    with process(argv, work / "certfleet.log", f"{base}/healthz"):
        answers = {}
        for i, request in enumerate(fixture.requests):  # warm: every response signed and cached
            path = urllib.parse.quote(base64.b64encode(request).decode(), safe="")
            answers[i] = httpx.get(f"{base}/ocsp/{path}").content
            for _ in range(8):  # and in each worker's memory (connections land on any worker)
                httpx.post(
                    f"{base}/ocsp", content=request, headers={"Content-Type": "application/ocsp-request"}
                )
        check_answers("certfleet", answers, fixture)
        get, post = write_scripts(work, "certfleet", "/ocsp", fixture.requests)
        healthz = work / "healthz.lua"
        healthz.write_text(NO_PROBE + "request = function() return wrk.format('GET', '/healthz') end\n")
        rates = [
            parse_wrk("certfleet serve", "GET", wrk(get, base, duration)),
            parse_wrk("certfleet serve", "POST", wrk(post, base, duration)),
            # The same server's empty /healthz: the HTTP stack's own ceiling on this machine.
            parse_wrk("certfleet /healthz", "GET", wrk(healthz, base, duration)),
        ]
    return rates, list(answers.values())


def bench_cfssl(work: Path, fixture: Fixture, responses: list[bytes], duration: int) -> list[Rate]:
    port = free_port()
    file = work / "responses.b64"
    file.write_text("\n".join(base64.b64encode(r).decode() for r in responses) + "\n")
    base = f"http://127.0.0.1:{port}"
    argv = ["cfssl", "ocspserve", "-address", "127.0.0.1", "-port", str(port), "-responses", str(file)]
    with process(argv, work / "cfssl.log", f"{base}/"):
        answers = {
            i: httpx.post(base, content=r, headers={"Content-Type": "application/ocsp-request"}).content
            for i, r in enumerate(fixture.requests)
        }
        check_answers("cfssl", answers, fixture)
        get, post = write_scripts(work, "cfssl", "", fixture.requests)
        rates = []
        # cfssl 1.2.0 decodes a GET path with its leading '/' and turns '+' into a space,
        # so it answers every GET with 400: there is no GET rate to measure.
        probe = urllib.parse.quote(base64.b64encode(fixture.requests[0]).decode(), safe="")
        got = httpx.get(f"{base}/{probe}")
        if got.status_code == 200:
            rates.append(parse_wrk(CFSSL, "GET", wrk(get, base, duration)))
        else:
            rates.append(Rate(CFSSL, "GET", 0.0, f"every GET answered HTTP {got.status_code}"))
        rates.append(parse_wrk(CFSSL, "POST", wrk(post, base, duration)))
        return rates


def bench_openssl(work: Path, fixture: Fixture, duration: int) -> list[Rate]:
    """Inside ``unshare -n``: openssl binds every interface, which there means loopback only.

    A fresh single ``openssl ocsp`` process serves each wrk run: at the end of a run wrk
    drops connections whose requests were never sent, and the responder would spin on one of
    them for ever (see NO_PROBE). Readiness is read from ``ss``, never probed by connecting.
    """
    port = 9080
    get, post = write_scripts(work, "openssl", "", fixture.requests)
    check_dir = work / "openssl-check"
    check_dir.mkdir()
    for i, request in enumerate(fixture.requests):
        (check_dir / f"{i}.req").write_bytes(request)
    responder = (
        f"openssl ocsp -index {fixture.index} -port {port} -rsigner {fixture.signer_cert} "
        f"-rkey {fixture.signer_key} -CA {fixture.issuing} -nmin 60 -ignore_err "
        f">> {work / 'openssl.log'} 2>&1 &"
    )
    ready = f"""for _ in $(seq 1 200); do
  ss -ltnH "sport = :{port}" | grep -q LISTEN && break
  sleep 0.05
done"""
    script = work / "openssl-bench.sh"
    script.write_text(
        f"""set -eu
ip link set lo up
{responder}
server=$!
{ready}
for request in {check_dir}/*.req; do
  curl -s --max-time 10 --data-binary @"$request" -H 'Content-Type: application/ocsp-request' \\
    -o "${{request%.req}}.der" http://127.0.0.1:{port}/
done
kill $server; wait $server || true
for method in get post; do
  {responder}
  server=$!
  {ready.replace(chr(10), chr(10) + "  ")}
  wrk -t2 -c{CONCURRENCY} -d{duration}s -s {work}/openssl-$method.lua http://127.0.0.1:{port} \\
    > {work}/openssl-$method.out
  kill $server; wait $server || true
done
"""
    )
    subprocess.run(["unshare", "-n", "bash", str(script)], check=True, timeout=4 * duration + 120)
    answers = {i: (check_dir / f"{i}.der").read_bytes() for i in range(len(fixture.requests))}
    check_answers("openssl", answers, fixture)
    assert get.name == "openssl-get.lua" and post.name == "openssl-post.lua"
    return [
        parse_wrk(OPENSSL, "GET", (work / "openssl-get.out").read_text()),
        parse_wrk(OPENSSL, "POST", (work / "openssl-post.out").read_text()),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--certs", type=int, default=20)
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--workers", type=int, default=None, help="certfleet serve --workers")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: openssl's responder is confined with unshare -n")
    with tempfile.TemporaryDirectory(prefix="certfleet-ocsp-bench-") as tmp:
        work = Path(tmp)
        data_dir = work / "data"
        http_port = free_port()
        fixture = prepare(work, data_dir, http_port, args.certs)
        in_process = bench_in_process(data_dir, fixture)
        certfleet_rates, responses = bench_certfleet(
            work, data_dir, http_port, fixture, args.duration, args.workers
        )
        rates = (
            certfleet_rates
            + bench_openssl(work, fixture, args.duration)
            + bench_cfssl(work, fixture, responses, args.duration)
        )
    workers = f"--workers {args.workers}" if args.workers else "default workers"
    print(
        f"{args.certs} certificates ({len(fixture.revoked)} revoked), SHA-1 CertIDs, no nonce; "
        f"wrk -t2 -c{CONCURRENCY} -d{args.duration}s; certfleet serve {workers}"
    )
    by = {(r.system, r.method): r.requests_per_second for r in rates}
    print(f"{'system':<22}{'method':<7}{'req/s':>10}{'vs openssl':>12}{'vs cfssl':>10}  errors")
    for rate in rates:
        ratios = [
            f"{rate.requests_per_second / base:.2f}x" if base else "n/a"
            for base in (by[(OPENSSL, rate.method)], by[(CFSSL, rate.method)])
        ]
        print(
            f"{rate.system:<22}{rate.method:<7}{rate.requests_per_second:>10.0f}"
            f"{ratios[0]:>12}{ratios[1]:>10}  {rate.errors}"
        )
    print("in-process, one thread, no sockets (the cached path's own cost; not comparable to wrk):")
    for rate in in_process:
        print(f"{rate.system:<22}{rate.method:<7}{rate.requests_per_second:>10.0f}")


if __name__ == "__main__":
    main()
