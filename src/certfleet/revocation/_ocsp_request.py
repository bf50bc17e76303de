"""OCSP requests (RFC 6960 section 4.1) from POST bodies and GET paths (appendix A.1)."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.x509 import ocsp
from cryptography.x509.oid import OCSPExtensionOID

from certfleet.revocation._issuers import CertId
from certfleet.revocation.errors import MalformedOcspRequest
from certfleet.x509 import der as _der

__all__ = [
    "MAX_CERT_IDS",
    "MAX_NONCE_OCTETS",
    "MAX_REQUEST_BYTES",
    "OcspRequest",
    "decode_get_path",
    "parse_ocsp_request",
]

MAX_REQUEST_BYTES = 65536
# A bound on the work one request may cause (each CertID is a lookup and a signature).
MAX_CERT_IDS = 50
# RFC 8954 section 2.1: a nonce of 1 to 32 octets is accepted; 0 or more than 32 is refused.
MAX_NONCE_OCTETS = 32

_BASE64 = re.compile(r"^[A-Za-z0-9+/]*={0,2}$")
_BASE64URL = re.compile(r"^[A-Za-z0-9_-]*={0,2}$")
_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")
# 1.3.6.1.5.5.7.48.1.2, id-pkix-ocsp-nonce (RFC 6960 section 4.4.1), as DER OID content.
_NONCE_OID = bytes.fromhex("2b0601050507300102")


@dataclass(frozen=True)
class OcspRequest:
    """The certificates asked about, and the client's nonce if it sent one."""

    cert_ids: tuple[CertId, ...]
    nonce: bytes | None = None


def decode_get_path(raw: str) -> bytes:
    """The DER request from the part of a GET path after ``/ocsp/``.

    RFC 6960 appendix A.1 puts the URL-encoding of the base64 of the DER there. The percent
    decoding is strict (every ``%`` starts two hex digits) and keeps ``+``, a base64 letter
    that form-decoding would wrongly turn into a space. Both the standard alphabet and the
    URL-safe one (RFC 4648 section 5) are accepted, padding optional, but not mixed.
    """
    if "%" in raw:
        if raw.count("%") != len(_PERCENT.findall(raw)):
            raise MalformedOcspRequest("bad percent-encoding in the OCSP GET path")
        try:
            text = _PERCENT.sub(lambda m: chr(int(m.group(1), 16)), raw)
        except ValueError as exc:  # pragma: no cover - the pattern admits only hex digits
            raise MalformedOcspRequest("bad percent-encoding in the OCSP GET path") from exc
    else:
        text = raw
    if not text:
        raise MalformedOcspRequest("empty OCSP request")
    if _BASE64.match(text):
        alphabet = None
    elif _BASE64URL.match(text):
        alphabet = b"-_"
    else:
        raise MalformedOcspRequest("the OCSP GET path is not base64 or base64url")
    padded = text.rstrip("=")
    if len(padded) % 4 == 1:
        raise MalformedOcspRequest("the OCSP GET path has a truncated base64 quantum")
    padded += "=" * (-len(padded) % 4)
    try:
        return base64.b64decode(padded, altchars=alphabet, validate=True)
    except binascii.Error as exc:
        raise MalformedOcspRequest(f"bad base64 in the OCSP GET path: {exc}") from exc


def parse_ocsp_request(der: bytes) -> OcspRequest:
    """Parse a DER OCSPRequest with one or more CertIDs. Raises MalformedOcspRequest."""
    if not der:
        raise MalformedOcspRequest("empty OCSP request")
    if len(der) > MAX_REQUEST_BYTES:
        raise MalformedOcspRequest(f"OCSP request larger than {MAX_REQUEST_BYTES} bytes")
    try:
        version, requests, extensions = _tbs_parts(der)
        if len(requests) > MAX_CERT_IDS:
            raise MalformedOcspRequest(f"more than {MAX_CERT_IDS} certificates in one OCSP request")
        nonce = _nonce(extensions)
        if len(requests) == 1:
            parsed = [ocsp.load_der_ocsp_request(der)]
        else:
            # cryptography refuses a requestList of more than one Request ("OCSP request
            # contains more than one request"), though RFC 6960 section 4.1.1 allows it.
            parsed = [
                ocsp.load_der_ocsp_request(one) for one in _single_requests(version, requests, extensions)
            ]
        for request in parsed:
            _check_extensions(request)
    except _der.DerError as exc:
        raise MalformedOcspRequest(f"OCSP request is not DER: {exc}") from exc
    except (ValueError, NotImplementedError) as exc:
        raise MalformedOcspRequest(f"malformed OCSP request: {exc}") from exc
    return OcspRequest(tuple(_cert_id(r) for r in parsed), nonce)


def _tbs_parts(der: bytes) -> tuple[bytes, list[_der.Element], _der.Element | None]:
    """The version (raw, or empty when absent), the Requests of the requestList and the
    requestExtensions of a TBSRequest (RFC 6960 section 4.1.1)."""
    outer = _der.elements(_der.single(der).content)
    if not outer or outer[0].tag != _der.SEQUENCE or len(outer) > 2:
        raise _der.DerError("not an OCSPRequest")
    version = b""
    extensions = request_list = None
    for part in _der.elements(outer[0].content):
        if part.tag == 0xA0:
            version = part.raw
        elif part.tag == 0xA2:
            extensions = part
        elif part.tag == _der.SEQUENCE:
            request_list = part
    if request_list is None:
        raise _der.DerError("no requestList")
    requests = _der.elements(request_list.content)
    if not requests:
        raise _der.DerError("an empty requestList")
    return version, requests, extensions


def _single_requests(
    version: bytes, requests: list[_der.Element], extensions: _der.Element | None
) -> list[bytes]:
    """One single-Request OCSPRequest per entry of the requestList, each keeping the version
    and the requestExtensions. The requestorName and the optional signature are dropped:
    certfleet does not require signed requests (RFC 6960 section 4.1.2 makes the signature
    optional) and never checks them."""
    tail = extensions.raw if extensions is not None else b""
    return [
        _der.encode(
            _der.SEQUENCE, _der.encode(_der.SEQUENCE, version + _der.encode(_der.SEQUENCE, r.raw) + tail)
        )
        for r in requests
    ]


def _nonce(extensions: _der.Element | None) -> bytes | None:
    """The nonce, read from the DER itself: RFC 8954 section 2.1 defines it as an OCTET
    STRING of 1 to 32 octets inside the extension value. cryptography falls back to the raw
    extension value when that inner OCTET STRING is missing; such a nonce is refused here,
    as its echo could never match what the client sent."""
    if extensions is None:
        return None
    nonce: bytes | None = None
    for extension in _der.elements(_der.single(extensions.content).content):
        parts = _der.elements(extension.content)
        if len(parts) < 2 or parts[0].tag != _der.OID or parts[-1].tag != _der.OCTET_STRING:
            raise _der.DerError("malformed request extension")
        if parts[0].content != _NONCE_OID:
            continue
        inner = _der.single(parts[-1].content)
        if inner.tag != _der.OCTET_STRING:
            raise MalformedOcspRequest("the nonce is not an OCTET STRING (RFC 8954 section 2.1)")
        nonce = inner.content
        if not 1 <= len(nonce) <= MAX_NONCE_OCTETS:
            raise MalformedOcspRequest(
                f"nonce of {len(nonce)} octets: RFC 8954 allows 1 to {MAX_NONCE_OCTETS}"
            )
    return nonce


def _check_extensions(request: ocsp.OCSPRequest) -> None:
    # RFC 6960 section 4.4: unrecognised non-critical extensions are ignored; a critical
    # one we do not understand makes the request unacceptable.
    for extension in request.extensions:
        if extension.critical and extension.oid != OCSPExtensionOID.NONCE:
            raise MalformedOcspRequest(
                f"unsupported critical request extension {extension.oid.dotted_string}"
            )


def _cert_id(request: ocsp.OCSPRequest) -> CertId:
    try:
        algorithm = request.hash_algorithm.name
    except UnsupportedAlgorithm:
        algorithm = "unsupported"
    return CertId(algorithm, request.issuer_name_hash, request.issuer_key_hash, request.serial_number)
