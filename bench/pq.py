"""Post-quantum hierarchies (issue 17): ML-DSA-44/65/87 against ECDSA P-256 and RSA-3072.

For each key type K the issuing CA and the leaf CSR use it (in 2 and 3 the root too), and each
figure is shown as a ratio to ECDSA P-256 measured in the same run:

1. REST issuance: ``certfleet init`` then ``certfleet ca rotate --key-type K`` in a fresh SQLite
   data directory (the issuing CA, which signs every leaf, is of type K under a P-256 root: see
   the note in ``rest_issuance``), ``certfleet serve`` (default workers), ``POST
   /api/v1/certificates`` with a CSR of key type K (profile tls-server-client), driven by wrk
   exactly as ``bench/issuance.py`` does (its machinery is reused: the same Lua script, server
   CPU read from /proc, and afterwards the inventory, audit and outbox row counts plus
   ``certfleet audit verify``). Reports certificates per
   second, server CPU per certificate, and the DER size of one issued leaf.
2. OCSP signing: ``certfleet.revocation.build_response`` for one CertID, signed by the issuing
   CA's key on every call (no cache, in-process, one thread): responses per second and size.
3. CRL: ``certfleet.revocation.build_crl`` with N revoked entries (100,000 by default) signed
   by the issuing CA's key: build time (best of --crl-repeats) and DER size.

2 and 3 are timed in CPU seconds of this process (``time.process_time``), so other work on a
shared machine does not distort the ratios; 1 reports both the rate and server CPU per
certificate, the latter being the figure to compare across loaded runs.

Run: ``.venv/bin/python bench/pq.py [--seconds 10] [--connections 8] [--crl-entries 100000]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import secrets
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import NameOID

from certfleet.ca import (
    Authority,
    CaCertificate,
    CaUrls,
    IssuanceRequest,
    build_intermediate,
    build_root,
    ca_id_for,
)
from certfleet.clock import SystemClock
from certfleet.revocation import (
    CertId,
    CertStatus,
    ResponseSigner,
    RevocationReason,
    RevokedEntry,
    SingleAnswer,
    build_crl,
    build_response,
)
from certfleet.x509 import KeyType, generate_private_key, signature_hash_for

sys.path.insert(0, str(Path(__file__).resolve().parent))
import issuance as rest  # bench/issuance.py: wrk, /proc CPU, inventory checks

KEY_TYPES = (KeyType.EC_P256, KeyType.RSA_3072, KeyType.ML_DSA_44, KeyType.ML_DSA_65, KeyType.ML_DSA_87)
BASELINE = KeyType.EC_P256
PROFILE = "tls-server-client"


@dataclass
class Figures:
    key_type: KeyType
    leaf_bytes: int = 0
    rest: rest.Run | None = None
    ocsp_per_second: float = 0.0
    ocsp_bytes: int = 0
    crl_seconds: float = 0.0
    crl_bytes: int = 0


@dataclass(frozen=True)
class Hierarchy:
    root: x509.Certificate
    issuing: CaCertificate
    key: CertificateIssuerPrivateKeyTypes


def hierarchy(key_type: KeyType) -> Hierarchy:
    now = dt.datetime.now(dt.UTC)
    urls = CaUrls("http://pki.bench.example")
    root_key, key = generate_private_key(key_type), generate_private_key(key_type)
    root = build_root("Bench", root_key, now)
    cert = build_intermediate("Bench", key, root, root_key, ca_id_for(root), urls, now)
    issuing = CaCertificate(
        ca_id_for(cert), "Bench Issuing CA 1", "intermediate", ca_id_for(root), cert, "-", "-", True
    )
    return Hierarchy(root, issuing, key)


def leaf_size(h: Hierarchy, key_type: KeyType) -> int:
    """The DER size of a leaf as certfleet's Authority signs it (AIA, CRL DP, SAN, EKU)."""
    authority = Authority(
        h.issuing, h.key, (h.issuing.certificate,), CaUrls("http://pki.bench.example"), SystemClock()
    )
    key = generate_private_key(key_type)
    request = IssuanceRequest(PROFILE, key.public_key(), (rest.BENCH_NAME,), rest.BENCH_NAME)
    issued = authority.sign(authority.validate(request), secrets.randbits(127) | 1 << 126)
    return len(issued.certificate.public_bytes(serialization.Encoding.DER))


def ocsp_rate(h: Hierarchy, seconds: float) -> tuple[float, int]:
    issuer = h.issuing.certificate
    name_hash = hashlib.sha1(issuer.subject.public_bytes(), usedforsecurity=False).digest()
    spki = issuer.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    key_hash = hashlib.sha1(_bit_string_value(spki), usedforsecurity=False).digest()
    answer = SingleAnswer(CertId("sha1", name_hash, key_hash, 0x1234567890ABCDEF), CertStatus.GOOD)
    signer = ResponseSigner(h.issuing.id, issuer, h.key, delegated=False)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    later = now + dt.timedelta(days=1)
    der = build_response([answer], signer, this_update=now, next_update=later)
    ocsp_answer = x509.ocsp.load_der_ocsp_response(der)
    assert ocsp_answer.certificate_status is x509.ocsp.OCSPCertStatus.GOOD
    # CPU time of this process, not wall time: other work on the machine does not count.
    count, start = 0, time.process_time()
    while (elapsed := time.process_time() - start) < seconds:
        build_response([answer], signer, this_update=now, next_update=later)
        count += 1
    return count / elapsed, len(der)


def _bit_string_value(spki: bytes) -> bytes:
    """The subjectPublicKey BIT STRING's value (RFC 6960 4.1.1 issuerKeyHash), from the DER
    SubjectPublicKeyInfo, with certfleet's minimal DER reader."""
    from certfleet.x509 import der

    _algorithm, bits = der.elements(der.single(spki).content)
    return bits.content[1:]


def crl_build(h: Hierarchy, entries: int, repeats: int) -> tuple[float, int]:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    revoked = [
        RevokedEntry(
            secrets.randbits(127) | 1 << 126,
            now - dt.timedelta(seconds=i % 86_400),
            RevocationReason.KEY_COMPROMISE,
        )
        for i in range(entries)
    ]
    best, size = float("inf"), 0
    for number in range(1, repeats + 1):
        start = time.process_time()  # CPU seconds (one thread): immune to other work
        der = build_crl(
            issuer=h.issuing.certificate,
            key=h.key,
            entries=revoked,
            number=number,
            this_update=now,
            next_update=now + dt.timedelta(days=7),
        )
        best = min(best, time.process_time() - start)
        size = len(der)
    crl = x509.load_der_x509_crl(der)
    assert crl.is_signature_valid(h.issuing.certificate.public_key())  # type: ignore[arg-type]
    assert len(crl) == entries
    return best, size


def make_csr(key_type: KeyType) -> str:
    key = generate_private_key(key_type)
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, rest.BENCH_NAME)]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(rest.BENCH_NAME)]), critical=False)
        .sign(key, signature_hash_for(key))  # type: ignore[arg-type]
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def rest_issuance(
    work: Path, key_type: KeyType, connections: int, seconds: int
) -> tuple[rest.Run, list[str]]:
    data = work / f"certfleet-{key_type.value}"
    # The root stays ECDSA P-256 and the issuing CA (what signs each leaf, CRL and OCSP answer)
    # takes key type K through `ca rotate`: the HTTPS listener's own identity is issued under
    # the root, and Debian 12's OpenSSL 3.0 cannot load a chain signed with ML-DSA.
    rest.certfleet_cli("init", data=data)
    rest.certfleet_cli("ca", "rotate", "--key-type", key_type.value, data=data)
    token = rest.certfleet_cli("token", "create", "--team", "bench", "--scope", "admin", data=data).strip()
    https, http = rest.free_port(), rest.free_port()
    log = work / f"certfleet-{key_type.value}.log"
    argv = [rest.CERTFLEET, "serve", "--https", f"127.0.0.1:{https}", "--http", f"127.0.0.1:{http}"]
    argv += ["--data-dir", str(data)]
    url = f"https://127.0.0.1:{https}/api/v1/certificates"
    body, headers = {"csr": make_csr(key_type), "profile": PROFILE}, {"Authorization": f"Bearer {token}"}
    with rest.running(argv, log, lambda: "certfleet API:" in log.read_text(), "certfleet serve") as server:
        warm = rest.measure("warm-up", url, body, headers, connections, rest.WARMUP_SECONDS, work)
        run = rest.measure(key_type.value, url, body, headers, connections, seconds, work, server.pid)
    if warm.failed or run.failed:
        raise SystemExit(f"{key_type.value}: {warm.failed + run.failed} failed requests (see {log})")
    return run, rest.verify_certfleet(data, warm.ok + run.ok)


def _ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}x" if base else "n/a"


def report(figures: list[Figures], args: argparse.Namespace) -> None:
    base = next(f for f in figures if f.key_type is BASELINE)
    print(f"\nleaf certificate (certfleet's Authority, profile {PROFILE}, CA and leaf of one key type)")
    print(f"{'key type':<10} {'DER bytes':>10} {'vs P-256':>9}")
    for f in figures:
        print(f"{f.key_type.value:<10} {f.leaf_bytes:>10,} {_ratio(f.leaf_bytes, base.leaf_bytes):>9}")
    if base.rest is not None:
        print(
            f"\nREST issuance, wrk -t2 -c{args.connections} -d{args.seconds}s, HTTPS, SQLite, default workers"
        )
        head = f"{'key type':<10} {'certs/s':>9} {'vs P-256':>9} {'p99 ms':>7}"
        print(f"{head} {'CPU ms/cert':>12} {'vs P-256':>9}")
        base_cpu = base.rest.cpu_ms_per_cert or 0.0
        for f in figures:
            assert f.rest is not None
            cpu = f.rest.cpu_ms_per_cert or 0.0
            print(
                f"{f.key_type.value:<10} {f.rest.rate:>9.1f} {_ratio(f.rest.rate, base.rest.rate):>9} "
                f"{f.rest.p99_ms:>7.1f} {cpu:>12.2f} {_ratio(cpu, base_cpu):>9}"
            )
    print(f"\nOCSP signing, build_response per call, one thread, {args.ocsp_seconds:g} CPU-seconds each")
    print(f"{'key type':<10} {'per CPU-s':>10} {'vs P-256':>9} {'bytes':>7} {'vs P-256':>9}")
    for f in figures:
        rate = _ratio(f.ocsp_per_second, base.ocsp_per_second)
        size = _ratio(f.ocsp_bytes, base.ocsp_bytes)
        print(f"{f.key_type.value:<10} {f.ocsp_per_second:>10,.0f} {rate:>9} {f.ocsp_bytes:>7,} {size:>9}")
    print(f"\nCRL of {args.crl_entries:,} entries, build_crl, CPU seconds, best of {args.crl_repeats}")
    print(f"{'key type':<10} {'CPU s':>8} {'vs P-256':>9} {'bytes':>11} {'vs P-256':>9}")
    for f in figures:
        print(
            f"{f.key_type.value:<10} {f.crl_seconds:>8.3f} {_ratio(f.crl_seconds, base.crl_seconds):>9} "
            f"{f.crl_bytes:>11,} {_ratio(f.crl_bytes, base.crl_bytes):>9}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=int, default=10, help="wrk duration per key type (default 10)")
    parser.add_argument("--connections", type=int, default=8, help="wrk -c (default 8)")
    parser.add_argument("--ocsp-seconds", type=float, default=3.0, help="OCSP signing time per key type")
    parser.add_argument("--crl-entries", type=int, default=100_000, help="revoked entries per CRL")
    parser.add_argument("--crl-repeats", type=int, default=3, help="CRL builds per key type (best kept)")
    parser.add_argument("--skip-http", action="store_true", help="only the in-process figures")
    args = parser.parse_args()
    if not args.skip_http and shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install wrk")
    figures: list[Figures] = []
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="certfleet-bench-pq-") as tmp:
        for key_type in KEY_TYPES:
            h = hierarchy(key_type)
            f = Figures(key_type, leaf_bytes=leaf_size(h, key_type))
            f.ocsp_per_second, f.ocsp_bytes = ocsp_rate(h, args.ocsp_seconds)
            f.crl_seconds, f.crl_bytes = crl_build(h, args.crl_entries, args.crl_repeats)
            if not args.skip_http:
                f.rest, found = rest_issuance(Path(tmp), key_type, args.connections, args.seconds)
                problems += [f"{key_type.value}: {p}" for p in found]
            figures.append(f)
            print(f"{key_type.value}: done", flush=True)
    report(figures, args)
    if problems:
        raise SystemExit("certfleet check failed: " + "; ".join(problems))


if __name__ == "__main__":
    main()
