"""Planted keystores cannot stall a file scan: key-derivation iteration counts are read and
capped before any derivation, and each file has a time budget after which it is skipped
with the reason while the scan goes on with the next file."""

from __future__ import annotations

import hashlib
import struct
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from certfleet.discovery import FileOutcome, FileScanner, FileScanOptions, FileStatus
from certfleet.discovery._der import max_iteration_count
from certfleet.x509.der import INTEGER, OCTET_STRING, OID, SEQUENCE, elements, encode, read_element
from tests.discovery.pki import Pki, pem

_JCE_PBE_OID = bytes.fromhex("2b06010401 2a021301".replace(" ", ""))  # 1.3.6.1.4.1.42.2.19.1


@pytest.fixture(scope="module")
def pki() -> Pki:
    return Pki("Hostile")


def _p12(pki: Pki, password: bytes) -> bytes:
    leaf = pki.leaf(["p12.test"])
    encryption = (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(2048)
        .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
        .hmac_hash(hashes.SHA256())
        .build(password)
    )
    return pkcs12.serialize_key_and_certificates(b"p12", leaf.key, leaf.cert, [], encryption)


def _with_mac_iterations(pfx: bytes, iterations: int) -> bytes:
    """PFX ::= SEQUENCE { version, authSafe, macData MacData }, MacData ::= SEQUENCE { mac
    DigestInfo, macSalt OCTET STRING, iterations INTEGER } (RFC 7292 section 4): re-encode
    the last INTEGER, and the two SEQUENCEs whose lengths change with it."""
    outer = read_element(pfx)
    version, auth_safe, mac_data = elements(pfx, outer.start, outer.end)
    digest_info, salt, _ = elements(pfx, mac_data.start, mac_data.end)
    count = encode(INTEGER, iterations.to_bytes(iterations.bit_length() // 8 + 1, "big"))
    return encode(
        SEQUENCE, version.raw + auth_safe.raw + encode(SEQUENCE, digest_info.raw + salt.raw + count)
    )


def _utf(text: str) -> bytes:
    raw = text.encode()
    return struct.pack(">H", len(raw)) + raw


def _jceks(alias: str, chain: list[bytes], iterations: int, password: str) -> bytes:
    """A JCEKS keystore as keytool lays it out (magic, version 2, entries, then SHA-1 over the
    UTF-16BE password, "Mighty Aphrodite" and the rest), with one private key entry whose
    PBEWithMD5AndTripleDES parameters ask for ``iterations``. The ciphertext is filler: a
    scanner that derives the key spins before it could find out."""
    params = encode(
        SEQUENCE,
        encode(OCTET_STRING, b"saltsalt")
        + encode(INTEGER, iterations.to_bytes(iterations.bit_length() // 8 + 1, "big")),
    )
    epki = encode(
        SEQUENCE,
        encode(SEQUENCE, encode(OID, _JCE_PBE_OID) + params) + encode(OCTET_STRING, bytes(48)),
    )
    body = b"\xce\xce\xce\xce" + struct.pack(">II", 2, 1)
    body += struct.pack(">I", 1) + _utf(alias) + struct.pack(">Q", 1_700_000_000_000)
    body += struct.pack(">I", len(epki)) + epki + struct.pack(">I", len(chain))
    for der in chain:
        body += _utf("X.509") + struct.pack(">I", len(der)) + der
    return body + hashlib.sha1(password.encode("utf-16-be") + b"Mighty Aphrodite" + body).digest()


def _by_name(result_outcomes: list[FileOutcome]) -> dict[str, FileOutcome]:
    return {Path(o.path).name: o for o in result_outcomes}


@pytest.mark.timeout(60)
def test_planted_keystores_are_reported_and_the_scan_goes_on(pki: Pki, tmp_path: Path) -> None:
    # Given a folder with a PKCS#12 whose MAC asks for 2**30 iterations, a JCEKS whose key
    # asks for 2**31 - 1 (its store password in the list, so the key would be decrypted),
    # and an ordinary certificate
    hostile_p12 = _with_mac_iterations(_p12(pki, b"changeit"), 2**30)
    assert max_iteration_count(hostile_p12) == 2**30
    (tmp_path / "a-mac.p12").write_bytes(hostile_p12)
    leaf = pki.leaf(["jceks.test"]).cert.public_bytes(serialization.Encoding.DER)
    (tmp_path / "b-huge.jceks").write_bytes(_jceks("srv", [leaf], 2**31 - 1, "changeit"))
    normal = pki.leaf(["normal.test"]).cert
    (tmp_path / "c-normal.pem").write_bytes(pem(normal))

    # When the folder is scanned with that password list
    result = FileScanner(FileScanOptions(passwords=(b"wrong", b"changeit"))).scan([tmp_path])

    # Then the ordinary certificate is found and each planted file says why it was not opened
    found = _by_name(result.outcomes)
    assert found["c-normal.pem"].status is FileStatus.OK
    assert found["c-normal.pem"].certificates == (normal,)
    p12 = found["a-mac.p12"]
    assert (p12.status, p12.format) == (FileStatus.SKIPPED, "pkcs12")
    assert p12.reason == "keystore skipped: iteration count 1073741824 exceeds the cap of 1000000"
    jceks = found["b-huge.jceks"]
    # Its certificates are stored in clear: read, while its key stays encrypted.
    assert (jceks.status, jceks.format, len(jceks.certificates)) == (FileStatus.OK, "jceks", 1)
    assert jceks.notes == ("key 'srv' not decrypted: iteration count 2147483647 exceeds the cap of 200000",)
    assert [k.encrypted for k in jceks.keys] == [True]


def test_a_lower_jceks_cap_applies_to_keytool_keystores(tmp_path: Path) -> None:
    """keytool writes 200,000 iterations for a JCEKS key: within the default cap (the
    keytool test in test_files decrypts it), refused under a lower one."""
    store = tmp_path / "store.jceks"
    subprocess.run(
        [
            "keytool", "-genkeypair", "-alias", "srv", "-keyalg", "EC", "-groupname", "secp256r1",
            "-dname", "CN=jceks.test", "-validity", "60", "-storetype", "JCEKS",
            "-keystore", str(store), "-storepass", "changeit", "-keypass", "changeit",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    options = FileScanOptions(passwords=(b"changeit",))
    opened = _by_name(FileScanner(options).scan([store]).outcomes)["store.jceks"]
    assert opened.keys[0].spki_sha256 is not None and opened.notes == ()
    capped = FileScanOptions(passwords=(b"changeit",), max_jceks_iterations=100_000)
    refused = _by_name(FileScanner(capped).scan([store]).outcomes)["store.jceks"]
    assert refused.status is FileStatus.OK and len(refused.certificates) == 1
    assert refused.notes == ("key 'srv' not decrypted: iteration count 200000 exceeds the cap of 100000",)


class TickingClock:
    """Each reading is one second later than the last: every budget check costs a second."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def test_a_file_over_its_time_budget_is_skipped_and_the_next_one_read(pki: Pki, tmp_path: Path) -> None:
    # Given a PKCS#12 that none of five passwords opens, a PEM bundle of ten certificates
    # and a lone certificate, scanned with a budget of 2.5 s per file on a clock that moves
    # one second per step
    (tmp_path / "a-locked.p12").write_bytes(_p12(pki, b"not-in-the-list"))
    (tmp_path / "b-bundle.pem").write_bytes(pem(*(pki.leaf([f"h{i}.test"]).cert for i in range(10))))
    lone = pki.leaf(["lone.test"]).cert
    (tmp_path / "c-lone.der").write_bytes(lone.public_bytes(serialization.Encoding.DER))
    options = FileScanOptions(passwords=(b"p1", b"p2", b"p3", b"p4", b"p5"), file_budget_seconds=2.5)

    # When the folder is scanned
    result = FileScanner(options, clock=TickingClock()).scan([tmp_path])

    # Then the two costly files are skipped with the step they had reached, and the lone
    # certificate after them is still read
    found = _by_name(result.outcomes)
    assert (found["a-locked.p12"].status, found["a-locked.p12"].reason) == (
        FileStatus.SKIPPED,
        "time budget of 2.5 s per file exceeded before trying password 3 of 7",
    )
    assert (found["b-bundle.pem"].status, found["b-bundle.pem"].reason) == (
        FileStatus.SKIPPED,
        "time budget of 2.5 s per file exceeded before PEM block 3",
    )
    assert found["c-lone.der"].status is FileStatus.OK and found["c-lone.der"].certificates == (lone,)
    # And with the same clock and an ample budget every file is read to the end.
    ample = FileScanOptions(passwords=options.passwords, file_budget_seconds=100.0)
    again = _by_name(FileScanner(ample, clock=TickingClock()).scan([tmp_path]).outcomes)
    assert again["a-locked.p12"].status is FileStatus.LOCKED
    assert len(again["b-bundle.pem"].certificates) == 10
