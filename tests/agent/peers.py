"""Real processes for the agent's integration tests: ``certfleet serve``, the ``certfleet``
command (server and agent side), and nginx under its own prefix on a loopback port."""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from certfleet.x509 import KeyType, fingerprint_sha256, generate_private_key, load_certificates
from tests.ports import free_port

CERTFLEET = str(Path(sys.executable).with_name("certfleet"))
START_DEADLINE_SECONDS = 60
T = TypeVar("T")


def wait_for(predicate: Callable[[], T], timeout: float = 30.0, what: str = "condition") -> T:
    """Poll ``predicate`` until it returns something truthy (never a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CERTFLEET_")}
    env.update(extra)
    return env


def certfleet(*args: str, check: bool = True, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [CERTFLEET, *args], capture_output=True, text=True, env=clean_env(), check=False, timeout=timeout
    )
    if check:
        assert result.returncode == 0, f"certfleet {' '.join(args)}: {result.stdout}{result.stderr}"
    return result


@dataclass
class CertfleetServer:
    """``certfleet serve --init`` on loopback ports; output goes to files, never a pipe."""

    data_dir: Path
    https_port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    admin_token: str = ""

    @property
    def https(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    def start(self) -> None:
        out, err = self.data_dir.parent / "serve.out", self.data_dir.parent / "serve.err"
        argv = [
            CERTFLEET, "serve", "--init",
            "--https", f"127.0.0.1:{self.https_port}", "--http", f"127.0.0.1:{self.http_port}",
            "--data-dir", str(self.data_dir),
        ]  # fmt: skip
        with out.open("wb") as stdout, err.open("wb") as stderr:
            self.process = subprocess.Popen(argv, stdout=stdout, stderr=stderr, env=clean_env())
        deadline = time.monotonic() + START_DEADLINE_SECONDS
        while "certfleet API:" not in out.read_text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.process.kill()
                raise AssertionError(f"certfleet serve did not start: {err.read_text()}")
            time.sleep(0.05)
        for line in out.read_text().splitlines():
            if line.startswith("Admin API token (shown once): "):
                self.admin_token = line.rsplit(" ", 1)[1]
        assert self.admin_token, out.read_text()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return certfleet(*args, "--data-dir", str(self.data_dir), check=check)

    def root_fingerprint(self) -> str:
        pem = httpx.get(f"http://127.0.0.1:{self.http_port}/ca/root.pem", trust_env=False).content
        return fingerprint_sha256(load_certificates(pem)[0])

    def api(self, path: str) -> Any:
        """GET an admin API path over HTTPS verified against certfleet's root."""
        pem = httpx.get(f"http://127.0.0.1:{self.http_port}/ca/root.pem", trust_env=False).content
        context = ssl.create_default_context(cadata=pem.decode())
        response = httpx.get(
            f"{self.https}{path}",
            headers={"Authorization": f"Bearer {self.admin_token}"},
            verify=context,
            trust_env=False,
        )
        assert response.status_code == 200, response.text
        return response.json()

    def join_token(self, host: str, *allow: str, team: str = "web", ttl: str = "1h") -> str:
        args = ["agent", "token", "create", "--host", host, "--team", team, "--ttl", ttl]
        for pattern in allow:
            args += ["--allow-names", pattern]
        return self.cli(*args).stdout.strip()

    def enroll(self, token: str, state_dir: Path, *, check: bool = True) -> subprocess.CompletedProcess[str]:
        return certfleet(
            "agent", "enroll", "--server", self.https, "--token", token,
            "--ca-fingerprint", self.root_fingerprint(), "--state-dir", str(state_dir),
            check=check,
        )  # fmt: skip


def self_signed(names: list[str], ips: list[str] | None = None) -> tuple[bytes, bytes]:
    """A "snakeoil" key and certificate, as a package installs before any real one."""
    key = generate_private_key(KeyType.EC_P256)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(n) for n in names]
                + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips or []]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())  # type: ignore[arg-type]
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)


NGINX_CONF = """\
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    server {{
        listen 127.0.0.1:{port} ssl;
        server_name localhost;
        ssl_certificate {tls}/web.crt;
        ssl_certificate_key {tls}/web.key;
        location / {{ return 200 "ok\\n"; }}
    }}
}}
"""


@dataclass
class Nginx:
    """Debian's nginx under its own prefix, serving ``tls/web.crt`` on a loopback port."""

    prefix: Path
    port: int = field(default_factory=free_port)

    @property
    def conf(self) -> Path:
        return self.prefix / "nginx.conf"

    @property
    def tls(self) -> Path:
        return self.prefix / "tls"

    def reload_argv(self) -> list[str]:
        return ["nginx", "-p", str(self.prefix), "-c", str(self.conf), "-s", "reload"]

    def write_conf(self, extra: str = "") -> None:
        self.conf.write_text(NGINX_CONF.format(prefix=self.prefix, port=self.port, tls=self.tls) + extra)

    def start(self) -> None:
        (self.prefix / "tmp").mkdir(parents=True, exist_ok=True)
        self.tls.mkdir(exist_ok=True)
        key, cert = self_signed(["localhost"])
        (self.tls / "web.key").write_bytes(key)
        (self.tls / "web.key").chmod(0o600)
        (self.tls / "web.crt").write_bytes(cert)
        self.write_conf()
        subprocess.run(
            ["nginx", "-p", str(self.prefix), "-c", str(self.conf)], check=True, capture_output=True
        )
        wait_for(self._answers, what="nginx to listen")

    def _answers(self) -> bool:
        try:
            self.presented()
        except OSError:
            return False
        return True

    def presented(self) -> str:
        """SHA-256 of the certificate nginx presents now."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        with (
            socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock,
            context.wrap_socket(sock, server_hostname="localhost") as tls,
        ):
            der = tls.getpeercert(binary_form=True)
        assert der is not None
        return hashlib.sha256(der).hexdigest()

    def stop(self) -> None:
        pid_file = self.prefix / "nginx.pid"
        if not pid_file.exists():
            return
        pid = int(pid_file.read_text())
        subprocess.run(
            ["nginx", "-p", str(self.prefix), "-c", str(self.conf), "-s", "stop"], capture_output=True
        )
        try:
            wait_for(lambda: not Path(f"/proc/{pid}").exists(), timeout=20, what="nginx to stop")
        except AssertionError:
            os.kill(pid, signal.SIGKILL)


def deployed(tls: Path, name: str = "web") -> tuple[str, bool]:
    """Fingerprint of the deployed certificate, and whether the deployed key is its key."""
    cert = load_certificates((tls / f"{name}.crt").read_bytes())[0]
    key = serialization.load_pem_private_key((tls / f"{name}.key").read_bytes(), None)
    return fingerprint_sha256(cert), key.public_key() == cert.public_key()


def agent_yaml(path: Path, body: str) -> Path:
    path.write_text(body)
    return path


@dataclass
class Pebble:
    """Let's Encrypt's pebble with pebble-challtestsrv as its DNS (every name is 127.0.0.1):
    http-01 is validated against ``http_port``, where the agent's standalone listener waits."""

    workdir: Path
    http_port: int = field(default_factory=free_port)
    port: int = field(default_factory=free_port)
    management_port: int = field(default_factory=free_port)
    dns_port: int = field(default_factory=free_port)
    dns_management_port: int = field(default_factory=free_port)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def directory(self) -> str:
        return f"https://127.0.0.1:{self.port}/dir"

    @property
    def tls_cert(self) -> Path:
        return self.workdir / "pebble-tls.pem"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        key_pem, cert_pem = self_signed(["localhost"], ips=["127.0.0.1"])
        (self.workdir / "pebble-tls.key").write_bytes(key_pem)
        self.tls_cert.write_bytes(cert_pem)
        config = {
            "pebble": {
                "listenAddress": f"127.0.0.1:{self.port}",
                "managementListenAddress": f"127.0.0.1:{self.management_port}",
                "certificate": str(self.tls_cert),
                "privateKey": str(self.workdir / "pebble-tls.key"),
                "httpPort": self.http_port,
                "tlsPort": free_port(),
                "ocspResponderURL": "",
                "externalAccountBindingRequired": False,
            }
        }
        (self.workdir / "pebble.json").write_text(json.dumps(config))
        log = (self.workdir / "challtestsrv.log").open("wb")
        self.processes.append(
            subprocess.Popen(
                [
                    "pebble-challtestsrv", "-dns01", f"127.0.0.1:{self.dns_port}",
                    "-http01", "", "-https01", "", "-tlsalpn01", "",
                    "-management", f"127.0.0.1:{self.dns_management_port}",
                    "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "",
                ],
                stdout=log,
                stderr=log,
            )
        )  # fmt: skip
        wait_for(lambda: _listening(self.dns_management_port), what="pebble-challtestsrv")
        env = clean_env(PEBBLE_VA_NOSLEEP="1", PEBBLE_WFE_NONCEREJECT="0")
        log = (self.workdir / "pebble.log").open("wb")
        self.processes.append(
            subprocess.Popen(
                [
                    "pebble",
                    "-config",
                    str(self.workdir / "pebble.json"),
                    "-dnsserver",
                    f"127.0.0.1:{self.dns_port}",
                ],
                stdout=log,
                stderr=log,
                env=env,
            )
        )
        wait_for(lambda: _listening(self.port) and _listening(self.management_port), what="pebble")

    def root(self) -> bytes:
        """Pebble's issuing root (it makes a new one at each start)."""
        response = httpx.get(
            f"https://127.0.0.1:{self.management_port}/roots/0",
            verify=ssl.create_default_context(cafile=str(self.tls_cert)),
            trust_env=False,
        )
        response.raise_for_status()
        return response.content

    def dns_hook(self) -> Path:
        """A dns-01 hook for the agent: ``hook set|clear _acme-challenge.NAME VALUE``."""
        hook = self.workdir / "dns-hook"
        hook.write_text(
            f"""#!{sys.executable}
import json, sys, urllib.request
action, name, value = sys.argv[1:4]
path = "/set-txt" if action == "set" else "/clear-txt"
body = {{"host": name.rstrip(".") + "."}}
if action == "set":
    body["value"] = value
request = urllib.request.Request(
    "http://127.0.0.1:{self.dns_management_port}" + path, data=json.dumps(body).encode(), method="POST"
)
urllib.request.urlopen(request, timeout=5).read()
"""
        )
        hook.chmod(0o755)
        return hook

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False
