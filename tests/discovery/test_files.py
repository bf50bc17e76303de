"""The filesystem scanner over real files of every format, and hostile ones."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12

from certfleet.discovery import (
    CertificatePool,
    ChainAnalyzer,
    EvaluationPolicy,
    FileScanner,
    FileScanOptions,
    FileStatus,
    file_findings,
    fingerprint,
)
from certfleet.discovery._der import max_iteration_count
from tests.discovery.pki import Pki, key_pem, pem

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def pki() -> Pki:
    return Pki("Files")


def scan(*paths: Path, **options: object) -> dict[str, object]:
    result = FileScanner(FileScanOptions(**options)).scan(list(paths))  # type: ignore[arg-type]
    return {o.path: o for o in result.outcomes}


def _p12(pki: Pki, password: bytes | None, rounds: int = 2048) -> bytes:
    leaf = pki.leaf(["p12.test"])
    if password is None:
        encryption: serialization.KeySerializationEncryption = serialization.NoEncryption()
    else:
        encryption = (
            serialization.PrivateFormat.PKCS12.encryption_builder()
            .kdf_rounds(rounds)
            .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
            .hmac_hash(hashes.SHA256())
            .build(password)
        )
    return pkcs12.serialize_key_and_certificates(
        b"p12", leaf.key, leaf.cert, [pki.intermediate.cert], encryption
    )


def test_pem_der_and_pkcs7(pki: Pki, tmp_path: Path) -> None:
    leaf = pki.leaf(["files.test"]).cert
    (tmp_path / "bundle.pem").write_bytes(b"junk before\n" + pem(leaf, pki.intermediate.cert, pki.root.cert))
    (tmp_path / "leaf.cer").write_bytes(leaf.public_bytes(serialization.Encoding.DER))
    (tmp_path / "chain.p7b").write_bytes(
        pkcs7.serialize_certificates([leaf, pki.intermediate.cert], serialization.Encoding.DER)
    )
    (tmp_path / "chain.p7c").write_bytes(pkcs7.serialize_certificates([leaf], serialization.Encoding.PEM))
    (tmp_path / "notes.txt").write_text("nothing to see\n")
    found = scan(tmp_path)
    got = {Path(p).name: (o.status, o.format, len(o.certificates)) for p, o in found.items()}  # type: ignore[attr-defined]
    assert got == {
        "bundle.pem": (FileStatus.OK, "pem", 3),
        "leaf.cer": (FileStatus.OK, "der", 1),
        "chain.p7b": (FileStatus.OK, "pkcs7", 2),
        "chain.p7c": (FileStatus.OK, "pem", 1),
    }


def test_pkcs12_passwords_locked_and_absurd_iterations(pki: Pki, tmp_path: Path) -> None:
    (tmp_path / "open.p12").write_bytes(_p12(pki, None))
    (tmp_path / "secret.pfx").write_bytes(_p12(pki, b"s3cret"))
    (tmp_path / "other.p12").write_bytes(_p12(pki, b"not-in-the-list"))
    absurd = _p12(pki, b"s3cret", rounds=50_000)
    assert max_iteration_count(absurd) == 50_000
    patched = absurd.replace(b"\x02\x03\x00\xc3\x50", b"\x02\x03\x7f\xff\xff")  # 8,388,607 rounds
    assert max_iteration_count(patched) == 0x7FFFFF
    (tmp_path / "absurd.p12").write_bytes(patched)
    found = scan(tmp_path, passwords=(b"wrong", b"s3cret"))
    by_name = {Path(p).name: o for p, o in found.items()}
    assert by_name["open.p12"].status is FileStatus.OK  # type: ignore[attr-defined]
    assert [k.encrypted for k in by_name["open.p12"].keys] == [False]  # type: ignore[attr-defined]
    assert by_name["secret.pfx"].status is FileStatus.OK and len(by_name["secret.pfx"].certificates) == 2  # type: ignore[attr-defined]
    assert [k.encrypted for k in by_name["secret.pfx"].keys] == [True]  # type: ignore[attr-defined]
    assert by_name["other.p12"].status is FileStatus.LOCKED  # type: ignore[attr-defined]
    assert "none of the 4 passwords" in by_name["other.p12"].reason  # type: ignore[attr-defined]
    assert by_name["absurd.p12"].status is FileStatus.SKIPPED  # type: ignore[attr-defined]
    assert "iteration count 8388607 exceeds the cap" in by_name["absurd.p12"].reason  # type: ignore[attr-defined]


def test_ber_indefinite_lengths_are_walked(pki: Pki) -> None:
    der = _p12(pki, b"pw", rounds=3000)
    assert der[0] == 0x30 and der[1] == 0x82  # a two-byte length: re-encode it as indefinite
    ber = b"\x30\x80" + der[4:] + b"\x00\x00"
    assert max_iteration_count(ber) == 3000


def test_java_keystores_from_keytool(pki: Pki, tmp_path: Path) -> None:
    for kind in ("JKS", "JCEKS"):
        subprocess.run(
            [
                "keytool",
                "-genkeypair",
                "-alias",
                "srv",
                "-keyalg",
                "EC",
                "-groupname",
                "secp256r1",
                "-dname",
                f"CN={kind.lower()}.test",
                "-validity",
                "60",
                "-storetype",
                kind,
                "-keystore",
                str(tmp_path / f"store.{kind.lower()}"),
                "-storepass",
                "changeit",
                "-keypass",
                "changeit",
            ],
            check=True,
            capture_output=True,
        )
    (tmp_path / "root.pem").write_bytes(pem(pki.root.cert))
    subprocess.run(
        [
            "keytool",
            "-importcert",
            "-noprompt",
            "-alias",
            "root",
            "-file",
            str(tmp_path / "root.pem"),
            "-storetype",
            "JKS",
            "-keystore",
            str(tmp_path / "store.jks"),
            "-storepass",
            "changeit",
        ],
        check=True,
        capture_output=True,
    )
    (tmp_path / "root.pem").unlink()
    with_password = scan(tmp_path, passwords=(b"changeit",))
    jks = with_password[str(tmp_path / "store.jks")]
    assert (jks.status, jks.format, len(jks.certificates), len(jks.keys)) == (FileStatus.OK, "jks", 2, 1)  # type: ignore[attr-defined]
    assert jks.keys[0].spki_sha256 is not None and jks.notes == ()  # type: ignore[attr-defined]
    jceks = with_password[str(tmp_path / "store.jceks")]
    assert (jceks.status, jceks.format, len(jceks.certificates)) == (FileStatus.OK, "jceks", 1)  # type: ignore[attr-defined]
    assert jceks.keys[0].spki_sha256 is not None and jceks.notes == ()  # type: ignore[attr-defined]
    # Without the password the certificates are still read, and the scan says what it lacked.
    without = scan(tmp_path)[str(tmp_path / "store.jks")]
    assert without.status is FileStatus.OK and len(without.certificates) == 2  # type: ignore[attr-defined]
    assert "integrity not verified" in without.notes[0]  # type: ignore[attr-defined]


def test_private_keys_pairing_encryption_and_permissions(pki: Pki, tmp_path: Path) -> None:
    leaf = pki.leaf(["keys.test"])
    (tmp_path / "cert.pem").write_bytes(pem(leaf.cert, pki.intermediate.cert))
    clear = tmp_path / "clear.key"
    clear.write_bytes(key_pem(leaf.key))
    clear.chmod(0o644)
    locked = tmp_path / "locked.key"
    locked.write_bytes(key_pem(leaf.key, b"pw"))
    locked.chmod(0o600)
    stray = tmp_path / "stray.key"
    stray.write_bytes(key_pem(pki.leaf(["other.test"]).key))
    stray.chmod(0o640)
    result = FileScanner(FileScanOptions(passwords=(b"pw",))).scan([tmp_path])
    findings = file_findings(
        result.outcomes, ChainAnalyzer(CertificatePool([pki.root.cert])), EvaluationPolicy(pki.now)
    )
    got = {(Path(f.location).name, f.code.value, f.fingerprint_sha256) for f in findings}
    leaf_fp = fingerprint(leaf.cert)
    assert got == {
        ("clear.key", "unencrypted-private-key", leaf_fp),
        ("clear.key", "private-key-permissions", None),
        ("stray.key", "unencrypted-private-key", None),
        ("stray.key", "private-key-permissions", None),
    }
    # The encrypted key opened with the password list, so it is paired too.
    locked_outcome = next(o for o in result.outcomes if o.path == str(locked))
    assert locked_outcome.keys[0].encrypted and locked_outcome.keys[0].spki_sha256 is not None


def test_hostile_files_are_outcomes(pki: Pki, tmp_path: Path) -> None:
    whole = pem(pki.leaf(["a.test"]).cert)
    (tmp_path / "truncated.pem").write_bytes(whole[: len(whole) // 2])
    (tmp_path / "garbage.crt").write_bytes(os.urandom(300).replace(b"\x30", b"\x31"))
    der = pki.leaf(["a.test"]).cert.public_bytes(serialization.Encoding.DER)
    (tmp_path / "truncated.der").write_bytes(der[:-20])
    (tmp_path / "huge.pem").write_bytes(whole * 200)
    (tmp_path / "loop-a").symlink_to(tmp_path / "loop-b")
    (tmp_path / "loop-b").symlink_to(tmp_path / "loop-a")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "up").symlink_to(tmp_path)
    os.mkfifo(tmp_path / "fifo.pem")
    os.mknod(tmp_path / "null.pem", stat.S_IFCHR | 0o600, os.makedev(1, 3))
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(tmp_path / "sock.pem"))
    try:
        found = scan(tmp_path, max_file_size=50_000, follow_symlinks=True)
    finally:
        sock.close()
    got = {Path(p).relative_to(tmp_path).as_posix(): (o.status.value, o.reason) for p, o in found.items()}  # type: ignore[attr-defined]
    assert got["truncated.pem"] == ("malformed", "a PEM block is truncated (no matching END line)")
    assert got["garbage.crt"] == ("malformed", "neither PEM nor DER: garbage or another format")
    assert got["truncated.der"] == (
        "malformed",
        "truncated DER: the length field runs past the end of the file",
    )
    assert got["huge.pem"][0] == "skipped" and "over the size cap" in got["huge.pem"][1]
    assert got["loop-a"] == got["loop-b"] == ("skipped", "symlink loop")
    assert got["sub/up"] == ("skipped", "directory already visited (symlink loop)")
    assert got["fifo.pem"] == ("skipped", "not a regular file (FIFO)")
    assert got["null.pem"] == ("skipped", "not a regular file (character device)")
    assert got["sock.pem"] == ("skipped", "not a regular file (socket)")
    # Without --follow-symlinks nested links are reported, not followed.
    assert scan(tmp_path / "sub")[str(tmp_path / "sub" / "up")].reason == "symlink not followed"  # type: ignore[attr-defined]


_UNREADABLE = """
import json, sys
from pathlib import Path
from certfleet.discovery import FileScanner, FileScanOptions
result = FileScanner(FileScanOptions()).scan([Path(sys.argv[1])])
print(json.dumps({o.path: [o.status.value, o.reason] for o in result.outcomes}))
"""


def test_unreadable_files_and_directories(pki: Pki, tmp_path: Path) -> None:
    """Root reads everything, so the scan runs without CAP_DAC_OVERRIDE (setpriv)."""
    (tmp_path / "secret.pem").write_bytes(pem(pki.leaf(["a.test"]).cert))
    (tmp_path / "secret.pem").chmod(0)
    (tmp_path / "closed").mkdir(mode=0)
    drop = "-dac_override,-dac_read_search"
    completed = subprocess.run(
        [
            "setpriv",
            f"--inh-caps={drop}",
            f"--bounding-set={drop}",
            sys.executable,
            "-c",
            _UNREADABLE,
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
    )
    assert completed.returncode == 0, completed.stderr
    got = json.loads(completed.stdout)
    assert got[str(tmp_path / "secret.pem")] == ["unreadable", "permission denied"]
    assert got[str(tmp_path / "closed")] == ["unreadable", "cannot list directory: permission denied"]
