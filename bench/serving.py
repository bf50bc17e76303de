"""The HTTP serving stack alone: which ASGI server certfleet should run on.

One tiny FastAPI app (a JSON GET, like the API's cheapest routes) served over HTTPS by:

* uvicorn with h11 and asyncio (certfleet before issue 11);
* uvicorn with httptools and uvloop (what ``certfleet serve`` runs now);
* granian (Rust HTTP stack, ASGI interface).

each with 1 and 2 worker processes, driven by wrk (``-t2 -c64``) on the same 2 cores. The
ratio column is against uvicorn h11 with one worker. granian is not a certfleet dependency:
pass ``--python`` a venv that has ``granian``, ``uvicorn[standard]`` and ``fastapi``, e.g.::

    python3 -m venv /tmp/srv && /tmp/srv/bin/pip install fastapi 'uvicorn[standard]' granian
    .venv/bin/python bench/serving.py --python /tmp/srv/bin/python
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

APP = """
from fastapi import FastAPI
app = FastAPI()

@app.get("/api/v1/ping")
async def ping() -> dict[str, str]:
    return {"status": "ok"}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tls(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_file, key_file


def _wait_port(port: int, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(500):
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError("server did not start")


def _wrk(url: str, seconds: int) -> float:
    out = subprocess.run(
        ["wrk", "-t2", "-c64", f"-d{seconds}s", url], capture_output=True, text=True, check=True
    ).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not match:
        raise RuntimeError(out)
    return float(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--python", default=sys.executable, help="a Python with granian and uvicorn[standard]"
    )
    parser.add_argument("--seconds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        (directory / "pingapp.py").write_text(APP)
        cert, key = _tls(directory)
        tls = ["--ssl-certfile", str(cert), "--ssl-keyfile", str(key)]
        stacks = {
            "uvicorn h11+asyncio": [
                "-m",
                "uvicorn",
                "pingapp:app",
                "--http",
                "h11",
                "--loop",
                "asyncio",
                *tls,
            ],
            "uvicorn httptools+uvloop": [
                *["-m", "uvicorn", "pingapp:app", "--http", "httptools", "--loop", "uvloop", *tls]
            ],
            "granian (asgi)": [
                *["-m", "granian", "--interface", "asgi", "pingapp:app", "--ssl-certificate", str(cert)],
                *["--ssl-keyfile", str(key), "--ssl-protocol-min", "tls1.2"],
            ],
        }
        rows: list[tuple[str, int, float]] = []
        for name, command in stacks.items():
            for workers in (1, 2):
                port = _free_port()
                extra = ["--port", str(port), "--workers", str(workers), "--log-level", "warning"]
                if name.startswith("granian"):
                    extra = ["--port", str(port), "--workers", str(workers), "--no-log"]
                proc = subprocess.Popen([args.python, *command, *extra], cwd=directory)
                try:
                    _wait_port(port, proc)
                    _wrk(f"https://127.0.0.1:{port}/api/v1/ping", 1)  # warm-up
                    rows.append((name, workers, _wrk(f"https://127.0.0.1:{port}/api/v1/ping", args.seconds)))
                finally:
                    proc.terminate()
                    proc.wait(timeout=30)
    base = rows[0][2]
    print("FastAPI JSON GET over HTTPS, wrk -t2 -c64")
    print(f"{'server':28} {'workers':>7} {'req/s':>9} {'vs uvicorn h11 x1':>18}")
    for name, workers, rate in rows:
        print(f"{name:28} {workers:7d} {rate:9.0f} {rate / base:17.2f}x")


if __name__ == "__main__":
    main()
