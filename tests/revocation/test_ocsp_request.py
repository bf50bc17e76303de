"""Parsing OCSP requests: POST bodies, GET paths, nonces, several certificates, and every
malformed input refused (the responder answers those ``malformedRequest``)."""

from __future__ import annotations

import base64
import subprocess
import urllib.parse
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp

from certfleet.revocation import (
    MAX_CERT_IDS,
    MalformedOcspRequest,
    decode_get_path,
    parse_ocsp_request,
)
from certfleet.x509 import der as _der
from tests.revocation.conftest import Pki


def _request(
    pki: Pki,
    serial_number: int,
    *,
    nonce: bytes | None = None,
    algorithm: hashes.HashAlgorithm = hashes.SHA1(),
) -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate_by_hash(
        *_hashes(pki, algorithm), serial_number, algorithm
    )
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(Encoding.DER)


def _hashes(pki: Pki, algorithm: hashes.HashAlgorithm) -> tuple[bytes, bytes]:
    # Let cryptography compute the CertID hashes from a real certificate and its issuer.
    leaf = pki.leaf(pki.issuing.not_before)
    request = ocsp.OCSPRequestBuilder().add_certificate(leaf, pki.issuing.certificate, algorithm).build()
    return request.issuer_name_hash, request.issuer_key_hash


def _openssl_request(pki: Pki, tmp_path: Path, serials: list[int], *extra: str) -> bytes:
    issuer = tmp_path / "issuer.pem"
    issuer.write_bytes(pki.issuing.certificate.public_bytes(Encoding.PEM))
    out = tmp_path / "req.der"
    argv = ["openssl", "ocsp", "-issuer", str(issuer), *extra, "-reqout", str(out)]
    for serial in serials:
        argv += ["-serial", hex(serial)]
    subprocess.run(argv, check=True, capture_output=True, timeout=30)
    return out.read_bytes()


def test_a_single_request_gives_its_cert_id(pki: Pki) -> None:
    request = parse_ocsp_request(_request(pki, 0x1234))
    (cert_id,) = request.cert_ids
    assert cert_id.serial_number == 0x1234
    assert cert_id.hash_algorithm == "sha1"
    assert (cert_id.issuer_name_hash, cert_id.issuer_key_hash) == _hashes(pki, hashes.SHA1())
    assert request.nonce is None


def test_sha256_cert_ids_are_understood(pki: Pki) -> None:
    (cert_id,) = parse_ocsp_request(_request(pki, 5, algorithm=hashes.SHA256())).cert_ids
    assert cert_id.hash_algorithm == "sha256"
    assert len(cert_id.issuer_key_hash) == 32


def test_several_certificates_in_one_openssl_request_are_all_read(pki: Pki, tmp_path: Path) -> None:
    serials = [0x10, 0x20, 0x30]
    request = parse_ocsp_request(_openssl_request(pki, tmp_path, serials))
    assert [c.serial_number for c in request.cert_ids] == serials
    assert {(c.issuer_name_hash, c.issuer_key_hash) for c in request.cert_ids} == {
        _hashes(pki, hashes.SHA1())
    }
    assert request.nonce is not None and len(request.nonce) == 16  # openssl's default nonce


@pytest.mark.parametrize("size", [1, 16, 32])
def test_a_nonce_of_1_to_32_octets_is_accepted(pki: Pki, size: int) -> None:
    nonce = bytes(range(size))
    assert parse_ocsp_request(_request(pki, 5, nonce=nonce)).nonce == nonce


@pytest.mark.parametrize("size", [0, 33, 64])
def test_a_nonce_outside_rfc_8954_bounds_is_malformed(pki: Pki, size: int) -> None:
    with pytest.raises(MalformedOcspRequest, match="RFC 8954"):
        parse_ocsp_request(_request(pki, 5, nonce=b"\x01" * size))


def test_a_nonce_that_is_not_an_octet_string_is_malformed(pki: Pki) -> None:
    good = _request(pki, 5, nonce=b"\x07" * 16)
    # Replace the DER OCTET STRING inside the extension value by an INTEGER of equal length.
    broken = good.replace(b"\x04\x10" + b"\x07" * 16, b"\x02\x10" + b"\x07" * 16)
    assert broken != good
    with pytest.raises(MalformedOcspRequest):
        parse_ocsp_request(broken)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"hello, responder",
        b"\x00" * 64,
        b"\x30\x80\x30\x00\x00\x00",  # indefinite length
        _der.encode(_der.SEQUENCE, b""),
        _der.encode(_der.SEQUENCE, _der.encode(_der.SEQUENCE, b"")),  # no requestList
        _der.encode(_der.OCTET_STRING, b"not a sequence"),
    ],
)
def test_garbage_is_malformed(data: bytes) -> None:
    with pytest.raises(MalformedOcspRequest):
        parse_ocsp_request(data)


def test_every_truncation_of_a_request_is_malformed(pki: Pki, tmp_path: Path) -> None:
    for der in (_request(pki, 0xABCDEF, nonce=b"n" * 20), _openssl_request(pki, tmp_path, [1, 2])):
        for cut in range(len(der)):
            with pytest.raises(MalformedOcspRequest):
                parse_ocsp_request(der[:cut])


def test_trailing_bytes_are_malformed(pki: Pki) -> None:
    with pytest.raises(MalformedOcspRequest, match="trailing"):
        parse_ocsp_request(_request(pki, 5) + b"\x00")


def test_too_many_certificates_are_malformed(pki: Pki, tmp_path: Path) -> None:
    request = _openssl_request(pki, tmp_path, list(range(1, MAX_CERT_IDS + 2)), "-no_nonce")
    with pytest.raises(MalformedOcspRequest, match=f"more than {MAX_CERT_IDS}"):
        parse_ocsp_request(request)
    assert (
        len(parse_ocsp_request(_openssl_request(pki, tmp_path, list(range(1, MAX_CERT_IDS + 1)))).cert_ids)
        == 50
    )


def test_an_unknown_critical_request_extension_is_malformed(pki: Pki) -> None:
    unknown = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.99999.1"), b"\x05\x00")
    der = (
        ocsp.OCSPRequestBuilder()
        .add_certificate_by_hash(*_hashes(pki, hashes.SHA1()), 5, hashes.SHA1())
        .add_extension(unknown, critical=True)
        .build()
        .public_bytes(Encoding.DER)
    )
    with pytest.raises(MalformedOcspRequest, match="critical"):
        parse_ocsp_request(der)


# GET: RFC 6960 appendix A.1 -- the URL-encoding of the base64 of the DER request.


def test_get_paths_in_every_encoding_clients_use_decode_to_the_request(pki: Pki) -> None:
    der = _request(pki, 0xFEDCBA9876543210FEDCBA, nonce=b"\xfb\xff" * 9)
    standard = base64.b64encode(der).decode()
    assert "+" in standard or "/" in standard, "pick a request whose base64 has + or /"
    urlsafe = base64.urlsafe_b64encode(der).decode()
    for path in (
        urllib.parse.quote(standard, safe=""),  # %2B %2F %3D
        standard,  # raw '+' and '/' (not decoded as a space)
        urlsafe,
        urlsafe.rstrip("="),
        standard.rstrip("="),
        standard.replace("/", "%2f"),  # lower-case hex digits
    ):
        assert decode_get_path(path) == der, path


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("", "empty"),
        ("%", "percent"),
        ("%4", "percent"),
        ("%zz", "percent"),
        ("MEMw%G1", "percent"),
        ("MEMw QTA/", "not base64"),
        ("MEMw!QTA", "not base64"),
        ("MEMw+QT_", "not base64"),  # two alphabets mixed
        ("MEMwQ", "truncated base64"),
        ("ME=Mw", "not base64"),
        ("%C3%A9", "not base64"),  # percent-encoded non-ASCII
    ],
)
def test_bad_get_encodings_are_malformed(path: str, message: str) -> None:
    with pytest.raises(MalformedOcspRequest, match=message):
        decode_get_path(path)


def test_a_get_path_that_decodes_to_garbage_is_malformed() -> None:
    der = decode_get_path(base64.b64encode(b"garbage!").decode())
    with pytest.raises(MalformedOcspRequest):
        parse_ocsp_request(der)
