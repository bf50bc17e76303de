"""OCSP requests (RFC 6960 section 4.1) from POST bodies and GET paths (appendix A.1)."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.x509 import ocsp
from cryptography.x509.oid import OCSPExtensionOID

from certfleet.revocation import _der
from certfleet.revocation._issuers import CertId
from certfleet.revocation.errors import MalformedOcspRequest

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
        _der.single(der)
        try:
            parsed = [ocsp.load_der_ocsp_request(der)]
        except NotImplementedError:
            # cryptography refuses a requestList of more than one Request ("OCSP request
            # contains more than one request"), though RFC 6960 section 4.1.1 allows it.
            parsed = [ocsp.load_der_ocsp_request(one) for one in _split_requests(der)]
    except _der.DerError as exc:
        raise MalformedOcspRequest(f"OCSP request is not DER: {exc}") from exc
    except ValueError as exc:
        raise MalformedOcspRequest(f"malformed OCSP request: {exc}") from exc
    nonce = _nonce(parsed[0])
    return OcspRequest(tuple(_cert_id(r) for r in parsed), nonce)


def _split_requests(der: bytes) -> list[bytes]:
    """One single-Request OCSPRequest per entry of the requestList, each keeping the version
    and the requestExtensions (so the nonce is parsed by cryptography as usual). The
    requestorName and the optional signature are dropped: certfleet does not require signed
    requests (RFC 6960 section 4.1.2 makes the signature optional) and never checks them.
    """
    try:
        outer = _der.elements(_der.single(der).content)
        if not outer or outer[0].tag != _der.SEQUENCE:
            raise _der.DerError("no TBSRequest")
        version = extensions = request_list = None
        for part in _der.elements(outer[0].content):
            if part.tag == 0xA0:
                version = part.raw
            elif part.tag == 0xA2:
                extensions = part.raw
            elif part.tag == _der.SEQUENCE:
                request_list = part
        if request_list is None:
            raise _der.DerError("no requestList")
        requests = _der.elements(request_list.content)
    except _der.DerError as exc:
        raise MalformedOcspRequest(f"malformed OCSP request: {exc}") from exc
    if len(requests) > MAX_CERT_IDS:
        raise MalformedOcspRequest(f"more than {MAX_CERT_IDS} certificates in one OCSP request")
    out = []
    for request in requests:
        body = (version or b"") + _der.encode(_der.SEQUENCE, request.raw) + (extensions or b"")
        out.append(_der.encode(_der.SEQUENCE, _der.encode(_der.SEQUENCE, body)))
    return out


def _cert_id(request: ocsp.OCSPRequest) -> CertId:
    try:
        algorithm = request.hash_algorithm.name
    except UnsupportedAlgorithm:
        algorithm = "unsupported"
    try:
        return CertId(algorithm, request.issuer_name_hash, request.issuer_key_hash, request.serial_number)
    except ValueError as exc:
        raise MalformedOcspRequest(f"malformed CertID: {exc}") from exc


def _nonce(request: ocsp.OCSPRequest) -> bytes | None:
    try:
        extensions = request.extensions
    except ValueError as exc:
        raise MalformedOcspRequest(f"malformed OCSP request extensions: {exc}") from exc
    nonce: bytes | None = None
    for extension in extensions:
        if extension.oid == OCSPExtensionOID.NONCE:
            assert isinstance(extension.value, x509.OCSPNonce)
            nonce = extension.value.nonce
            if not 1 <= len(nonce) <= MAX_NONCE_OCTETS:
                raise MalformedOcspRequest(
                    f"nonce of {len(nonce)} octets: RFC 8954 allows 1 to {MAX_NONCE_OCTETS}"
                )
        elif extension.critical:
            raise MalformedOcspRequest(
                f"unsupported critical request extension {extension.oid.dotted_string}"
            )
    return nonce
