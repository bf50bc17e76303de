"""Issuance with CA keys in an HSM (SoftHSM2 over PKCS#11) against software keys, same run.

Two data directories are initialised the same way except for the key backend: ``certfleet
init`` (encrypted key files) and ``certfleet init --key-backend pkcs11`` (a SoftHSM2 token
made for the run in a temporary directory). Each is served by ``certfleet serve`` (HTTPS,
SQLite, default workers) and driven by wrk posting the same ECDSA P-256 CSR to ``POST
/api/v1/certificates`` (bench/issuance.py's helpers). The two servers alternate, one round
each per level, so a load change on the machine hits both; after the runs every certificate
wrk received is checked in the inventory and the audit chain verified (issuance.py's check).

Target (issue 16): HSM issuance at least 0.5x software issuance. Each HSM certificate costs
one CKM_ECDSA signature in the token (the leaf; OCSP is signed on first request), plus the
stand-in signature cryptography's builder makes before the TBS is re-signed in the token.

Run: ``.venv/bin/python bench/hsm.py [--seconds 10] [--connections 8 64] [--rounds 2]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from issuance import (  # bench/issuance.py: wrk, /proc CPU, inventory checks
    CERTFLEET,
    WARMUP_SECONDS,
    Run,
    certfleet_cli,
    free_port,
    make_csr,
    measure,
    running,
    verify_certfleet,
)

MODULE = Path("/usr/lib/softhsm/libsofthsm2.so")
LABEL = "certfleet-bench"
PIN = "bench-pin-0000"


def softhsm_token(work: Path) -> Path:
    """A fresh SoftHSM2 token; sets SOFTHSM2_CONF for every process started after it.
    Returns the PIN file."""
    tokens = work / "tokens"
    tokens.mkdir()
    conf = work / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    subprocess.run(
        ["softhsm2-util", "--init-token", "--free", "--label", LABEL, "--pin", PIN, "--so-pin", "so-" + PIN],
        check=True,
        capture_output=True,
    )
    pin_file = work / "pin"
    pin_file.write_text(PIN + "\n")
    pin_file.chmod(0o600)
    return pin_file


@contextmanager
def served(work: Path, name: str, init_flags: list[str]) -> Iterator[tuple[str, dict[str, str], int, Path]]:
    """(URL, headers, server pid, data directory) of one initialised, running server."""
    data = work / name
    certfleet_cli("init", *init_flags, data=data)
    token = certfleet_cli("token", "create", "--team", "bench", "--scope", "admin", data=data).strip()
    https, http = free_port(), free_port()
    log = work / f"{name}.log"
    argv = [CERTFLEET, "serve", "--https", f"127.0.0.1:{https}", "--http", f"127.0.0.1:{http}"]
    argv += ["--data-dir", str(data)]
    url = f"https://127.0.0.1:{https}/api/v1/certificates"
    ready = lambda: "certfleet API:" in log.read_text()  # noqa: E731
    with running(argv, log, ready, f"certfleet serve ({name})") as server:
        yield url, {"Authorization": f"Bearer {token}"}, server.pid, data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=int, default=10, help="wrk duration per run (default 10)")
    parser.add_argument("--connections", type=int, nargs="+", default=[8, 64], help="wrk -c levels")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds per level (default 2)")
    args = parser.parse_args()
    for tool in ("wrk", "softhsm2-util"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found: apt-get install wrk softhsm2")
    csr = make_csr()
    body = {"csr": csr}
    runs: dict[tuple[str, int], list[Run]] = {}
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="certfleet-bench-hsm-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        pin_file = softhsm_token(work)
        hsm_flags = ["--key-backend", "pkcs11", "--pkcs11-module", str(MODULE), "--token-label", LABEL]
        systems = {
            "software": stack.enter_context(served(work, "software", [])),
            "pkcs11": stack.enter_context(served(work, "pkcs11", [*hsm_flags, "--pin-file", str(pin_file)])),
        }
        handed_out = dict.fromkeys(systems, 0)
        for name, (url, headers, _pid, _data) in systems.items():
            handed_out[name] += measure("warm-up", url, body, headers, 8, WARMUP_SECONDS, work).ok
        for level in args.connections:
            for _ in range(args.rounds):
                for name, (url, headers, pid, _data) in systems.items():
                    run = measure(name, url, body, headers, level, args.seconds, work, pid)
                    handed_out[name] += run.ok
                    runs.setdefault((name, level), []).append(run)
        stack.close()  # stop both servers before checking their databases
        for name, (_url, _headers, _pid, data) in systems.items():
            problems += [f"{name}: {p}" for p in verify_certfleet(data, handed_out[name])]
    print(f"\nREST issuance, ECDSA P-256 CA and CSR, wrk -t2 -cN -d{args.seconds}s x {args.rounds} rounds")
    header = f"{'keys':<10} {'conns':>5} {'certs/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'failed':>6}"
    print(f"{header} {'CPU ms/cert':>12}")
    for level in args.connections:
        rates = {}
        for name in ("software", "pkcs11"):
            done = runs[(name, level)]
            ok = sum(r.ok for r in done)
            seconds = sum(r.seconds for r in done)
            cpu = sum(r.server_cpu or 0.0 for r in done)
            rates[name] = ok / seconds
            p50 = max(r.p50_ms for r in done)
            p99 = max(r.p99_ms for r in done)
            failed = sum(r.failed for r in done)
            print(
                f"{name:<10} {level:>5} {rates[name]:>9.1f} {p50:>7.1f} {p99:>7.1f} {failed:>6} "
                f"{1000 * cpu / ok if ok else 0:>12.2f}"
            )
        ratio = rates["pkcs11"] / rates["software"]
        verdict = "met" if ratio >= 0.5 else "missed"
        print(f"{'HSM / software':<16} {level:>5} {ratio:>8.2f}x (target >= 0.5x: {verdict})")
    if problems:
        raise SystemExit("check failed: " + "; ".join(problems))


if __name__ == "__main__":
    main()
