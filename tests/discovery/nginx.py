"""Run Debian's nginx as a test server: its own prefix and config in a temporary directory,
one process (``master_process off``), loopback listeners only, stopped by the fixture."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

NGINX = "/usr/sbin/nginx"

_CONF = """daemon off;
master_process off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
worker_rlimit_nofile {files};
events {{ worker_connections {connections}; }}
http {{
  access_log off;
  client_body_temp_path {prefix}/tmp/body;
  proxy_temp_path {prefix}/tmp/proxy;
  fastcgi_temp_path {prefix}/tmp/fastcgi;
  uwsgi_temp_path {prefix}/tmp/uwsgi;
  scgi_temp_path {prefix}/tmp/scgi;
{servers}
}}
"""


def tls_server(
    listen: str,
    cert: Path,
    key: Path,
    *,
    extra: str = "",
    hsts: bool = True,
    name: str = "",
    protocols: str = "TLSv1.2 TLSv1.3",
) -> str:
    """One HTTPS server block answering 200 to every request."""
    header = 'add_header Strict-Transport-Security "max-age=31536000" always;' if hsts else ""
    server_name = f"server_name {name};" if name else ""
    return (
        f"  server {{ listen {listen} ssl; {server_name} ssl_certificate {cert}; ssl_certificate_key {key};\n"
        f'    ssl_protocols {protocols}; {extra} {header} location / {{ return 200 "ok\\n"; }} }}\n'
    )


class Nginx:
    def __init__(self, prefix: Path, servers: Sequence[str], listens: Sequence[tuple[str, int]]) -> None:
        self.prefix = prefix
        self.listens = list(listens)
        (prefix / "tmp").mkdir(parents=True, exist_ok=True)
        connections = max(1024, 4 * len(self.listens))
        self.conf = prefix / "nginx.conf"
        self.conf.write_text(
            _CONF.format(
                prefix=prefix, servers="".join(servers), connections=connections, files=connections * 2
            )
        )
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_seconds: float = 20.0) -> None:
        self._process = subprocess.Popen(
            [NGINX, "-p", str(self.prefix), "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout_seconds
        pending = list(self.listens)
        while pending:
            if self._process.poll() is not None:
                raise RuntimeError(f"nginx exited: {(self.prefix / 'error.log').read_text()[-2000:]}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"nginx did not listen on {pending[:3]} in time")
            host, port = pending[-1]
            try:
                with socket.create_connection((host, port), timeout=0.5):
                    pending.pop()
            except OSError:
                time.sleep(0.05)  # polling a condition with a deadline, not a fixed wait

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None
