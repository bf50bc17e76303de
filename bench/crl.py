"""CRL build time and peak memory: certfleet beside ``openssl ca -gencrl`` on the same list.

For each size (100,000 and 1,000,000 revoked serials by default) the script writes one
revocation list twice: into a certfleet data directory (SQLite; the serials and revocations
tables, as ``certfleet revoke`` leaves them) and into an ``openssl ca`` index.txt with the same
serials, dates and reasons, signed by the same P-256 issuing CA key. Then, each in a fresh
process whose peak resident memory is read from ``getrusage``:

1. certfleet: open the platform and ask for the CA's CRL, which is stale after the bulk
   revocation, so it is rebuilt: a streamed query, one RevokedCertificate per row, one
   builder call, signed and stored. Timed around that call; memory is the process peak,
   shown beside the process's size before the build.
2. baseline: ``openssl ca -gencrl`` with the same key (the encrypted PKCS#8 file certfleet
   keeps, opened with its passphrase file).

Run: ``.venv/bin/python bench/crl.py [--sizes 100000 1000000]`` (about two minutes).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import insert, text

from certfleet.app import Platform, open_platform
from certfleet.config import load_settings
from certfleet.revocation import CrlKind
from certfleet.store._revocation_models import CrlStateRow, RevocationRow
from certfleet.store.models import SerialRow
from certfleet.x509 import KeyType

REASONS = ("keyCompromise", "superseded", "cessationOfOperation", "affiliationChanged")
BATCH = 20_000


def _platform(data_dir: Path) -> Platform:
    return open_platform(load_settings({}, data_dir=data_dir), create=True)


def _issuing(platform: Platform) -> tuple[str, str]:
    ca = next(ca for ca in platform.authorities.hierarchy() if ca.role == "intermediate")
    return ca.id, ca.key_ref


def populate(platform: Platform, size: int, index: Path) -> None:
    """The same revoked serials into certfleet's tables and an openssl index.txt."""
    ca_id, _ = _issuing(platform)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    expires = now + dt.timedelta(days=90)
    engine = platform.database.engine
    with engine.begin() as conn:
        for table in ("revocations", "crls", "crl_state", "ocsp_responses"):
            conn.execute(text(f"DELETE FROM {table}"))
        conn.execute(text("DELETE FROM serials WHERE issuer_ca_id = :ca"), {"ca": ca_id})
    with index.open("w") as out, engine.begin() as conn:
        for start in range(0, size, BATCH):
            serials, revocations = [], []
            for seq in range(start + 1, min(start + BATCH, size) + 1):
                serial = format(secrets.randbits(127) | (1 << 126), "x")
                revoked_at = now - dt.timedelta(seconds=seq)
                reason = REASONS[seq % len(REASONS)]
                serials.append(
                    {"serial": serial, "issuer_ca_id": ca_id, "reserved_at": revoked_at, "state": "issued"}
                )
                revocations.append(
                    {
                        "serial": serial,
                        "issuer_ca_id": ca_id,
                        "revoked_at": revoked_at,
                        "reason": reason,
                        "expires_at": expires,
                        "seq": seq,
                    }
                )
                out.write(
                    f"R\t{expires:%y%m%d%H%M%SZ}\t{revoked_at:%y%m%d%H%M%SZ},{reason}\t{serial.upper()}\t"
                    f"unknown\t/CN=bench-{seq}\n"
                )
            conn.execute(insert(SerialRow), serials)
            conn.execute(insert(RevocationRow), revocations)
        conn.execute(
            insert(CrlStateRow),
            [{"ca_id": ca_id, "revocation_seq": size, "last_number": 0, "base_seq": 0}],
        )
    index.with_name("index.txt.attr").write_text("unique_subject = no\n")


def openssl_config(work: Path, data_dir: Path, platform: Platform) -> Path:
    ca_id, key_ref = _issuing(platform)
    issuing = next(ca for ca in platform.authorities.hierarchy() if ca.id == ca_id)
    cert = work / "issuing.pem"
    cert.write_bytes(issuing.certificate.public_bytes(Encoding.PEM))
    (work / "crlnumber").write_text("1000\n")
    config = work / "ca.cnf"
    config.write_text(
        "[ca]\ndefault_ca = bench\n[bench]\n"
        f"database = {work / 'index.txt'}\ncrlnumber = {work / 'crlnumber'}\n"
        f"certificate = {cert}\nprivate_key = {data_dir / 'keys' / (key_ref + '.key.pem')}\n"
        "default_md = sha256\ndefault_crl_days = 7\ncrl_extensions = crl_ext\n"
        "[crl_ext]\nauthorityKeyIdentifier = keyid:always\n"
    )
    return config


def measured(argv: list[str]) -> dict[str, float]:
    """Run ``argv`` in a fresh wrapper process: wall time and the child's peak RSS (KiB)."""
    probe = (
        "import resource, subprocess, sys, time, json\n"
        "t = time.perf_counter(); r = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "e = time.perf_counter() - t\n"
        "print(json.dumps({'seconds': e, 'peak_kib': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,"
        " 'rc': r.returncode, 'stdout': r.stdout, 'stderr': r.stderr[-2000:]}))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe, *argv], capture_output=True, text=True, check=True)
    report: dict[str, float] = json.loads(result.stdout)
    if report["rc"] != 0:
        raise RuntimeError(f"{argv[0]} failed: {report['stderr']}")
    return report


def child_build(data_dir: Path) -> None:
    """In a fresh process: rebuild the stale CRL and report time, sizes and memory."""
    platform = open_platform(load_settings({}, data_dir=data_dir))
    ca_id, _ = _issuing(platform)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    published = platform.revocation.crl(ca_id, CrlKind.FULL)
    seconds = time.perf_counter() - started
    entries = len(x509.load_der_x509_crl(published.der))
    print(
        json.dumps(
            {"build_seconds": seconds, "start_kib": before, "bytes": len(published.der), "entries": entries}
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--child-build", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_build:
        child_build(args.child_build)
        return
    with tempfile.TemporaryDirectory(prefix="certfleet-crl-bench-") as tmp:
        work = Path(tmp)
        data_dir = work / "data"
        platform = _platform(data_dir)
        platform.authorities.initialize("Bench", KeyType.EC_P256, actor="bench")
        config = openssl_config(work, data_dir, platform)
        passphrase = data_dir / "ca-passphrase"
        rows = []
        for size in args.sizes:
            started = time.perf_counter()
            populate(platform, size, work / "index.txt")
            print(f"# {size} revocations written in {time.perf_counter() - started:.1f} s", file=sys.stderr)
            cf = measured([sys.executable, __file__, "--child-build", str(data_dir)])
            built = json.loads(str(cf["stdout"]))
            crl_pem = work / "openssl-crl.pem"
            ossl = measured(
                [
                    "openssl",
                    "ca",
                    "-gencrl",
                    "-config",
                    str(config),
                    "-passin",
                    f"file:{passphrase}",
                    "-out",
                    str(crl_pem),
                ]
            )
            openssl_entries = len(x509.load_pem_x509_crl(crl_pem.read_bytes()))
            assert built["entries"] == openssl_entries == size, (built["entries"], openssl_entries, size)
            rows.append((size, built, cf, ossl, crl_pem.stat().st_size))
        platform.close()
    line = "{:>9}  {:<28}{:>9.2f}{:>10.0f}{:>28}"
    print(f"{'entries':>9}  {'system':<28}{'seconds':>9}{'peak MiB':>10}{'vs openssl (time, memory)':>28}")
    for size, built, cf, ossl, _pem_size in rows:
        ossl_mib = ossl["peak_kib"] / 1024
        cf_mib = cf["peak_kib"] / 1024
        print(line.format(size, "openssl ca -gencrl", ossl["seconds"], ossl_mib, "1.00x, 1.00x"))
        ratio = f"{built['build_seconds'] / ossl['seconds']:.2f}x, {cf_mib / ossl_mib:.2f}x"
        print(line.format(size, "certfleet (rebuild, SQLite)", built["build_seconds"], cf_mib, ratio))
        print(
            f"{'':>9}  certfleet process before the build: {built['start_kib'] / 1024:.0f} MiB; "
            f"CRL {built['bytes'] / 1e6:.1f} MB DER"
        )


if __name__ == "__main__":
    main()
