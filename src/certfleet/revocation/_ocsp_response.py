"""Signed OCSP responses (RFC 6960 section 4.2, RFC 5019 profile)."""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, mldsa, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp

from certfleet.revocation._issuers import CertId
from certfleet.revocation._reasons import RevocationReason
from certfleet.x509 import der as _der
from certfleet.x509 import signature_hash_for
from certfleet.x509.signing import sign_ocsp_response

__all__ = ["CertStatus", "ResponseSigner", "SingleAnswer", "build_response", "error_response"]


class CertStatus(enum.StrEnum):
    GOOD = "good"
    REVOKED = "revoked"
    UNKNOWN = "unknown"

    @property
    def ocsp(self) -> ocsp.OCSPCertStatus:
        return {
            CertStatus.GOOD: ocsp.OCSPCertStatus.GOOD,
            CertStatus.REVOKED: ocsp.OCSPCertStatus.REVOKED,
            CertStatus.UNKNOWN: ocsp.OCSPCertStatus.UNKNOWN,
        }[self]


@dataclass(frozen=True)
class SingleAnswer:
    """The status of one CertID; ``revoked_at`` and ``reason`` only for REVOKED."""

    cert_id: CertId
    status: CertStatus
    revoked_at: dt.datetime | None = None
    reason: RevocationReason | None = None


@dataclass(frozen=True)
class ResponseSigner:
    """Who signs: a delegated responder certificate (RFC 6960 section 4.2.2.2) with its key,
    or the CA itself (``delegated`` false, ``certificate`` the CA's own)."""

    ca_id: str
    certificate: x509.Certificate
    key: CertificateIssuerPrivateKeyTypes
    delegated: bool

    @property
    def not_after(self) -> dt.datetime:
        return self.certificate.not_valid_after_utc


def error_response(status: ocsp.OCSPResponseStatus) -> bytes:
    """An unsigned error response (malformedRequest, internalError, tryLater, unauthorized)."""
    return ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(Encoding.DER)


def build_response(
    answers: Sequence[SingleAnswer],
    signer: ResponseSigner,
    *,
    this_update: dt.datetime,
    next_update: dt.datetime,
    nonce: bytes | None = None,
) -> bytes:
    """A successful BasicOCSPResponse with one SingleResponse per answer.

    The responder is identified by key hash, which RFC 5019 section 2.2.3 recommends for its
    size; a delegated responder's certificate is included so the client can verify it.
    ``producedAt`` is the moment of signing (cryptography sets it), ``thisUpdate`` and
    ``nextUpdate`` are ours.
    """
    if not answers:
        raise ValueError("an OCSP response needs at least one answer")
    responses = [_single(a, signer, this_update, next_update, nonce) for a in answers]
    if len(responses) == 1:
        return responses[0]
    return _join(responses, signer)


def _single(
    answer: SingleAnswer,
    signer: ResponseSigner,
    this_update: dt.datetime,
    next_update: dt.datetime,
    nonce: bytes | None,
) -> bytes:
    algorithm = answer.cert_id.algorithm
    if algorithm is None:
        raise ValueError(f"cannot answer a CertID hashed with {answer.cert_id.hash_algorithm}")
    revoked = answer.status is CertStatus.REVOKED
    if revoked and answer.revoked_at is None:
        raise ValueError("a revoked answer needs its revocation time")
    # RFC 5280 section 5.3.1: the reason code unspecified SHOULD be absent; the OCSP
    # revocationReason is the same CRLReason (RFC 6960 section 4.2.1), so it follows suit.
    flag = (
        answer.reason.flag if revoked and answer.reason not in (None, RevocationReason.UNSPECIFIED) else None
    )
    builder = (
        ocsp.OCSPResponseBuilder()
        .add_response_by_hash(
            answer.cert_id.issuer_name_hash,
            answer.cert_id.issuer_key_hash,
            answer.cert_id.serial_number,
            algorithm,
            answer.status.ocsp,
            this_update,
            next_update,
            answer.revoked_at if revoked else None,
            flag,
        )
        .responder_id(ocsp.OCSPResponderEncoding.HASH, signer.certificate)
    )
    if signer.delegated:
        builder = builder.certificates([signer.certificate])
    if nonce is not None:
        # RFC 8954 section 2.1: the response echoes the request's nonce unchanged.
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    response = sign_ocsp_response(builder, signer.key)  # in-process or in an HSM
    return response.public_bytes(Encoding.DER)


def _join(responses: list[bytes], signer: ResponseSigner) -> bytes:
    """Merge single-answer responses into one that carries every SingleResponse.

    cryptography's builder holds exactly one SingleResponse ("Only one response per
    OCSPResponse"), so each answer is encoded by it and the SingleResponse elements are
    lifted out of their ResponseData and placed side by side in the first one's, which is
    then signed again. Every element keeps cryptography's encoding; only the SEQUENCEs
    around them are rebuilt here (RFC 6960 section 4.2.1).
    """
    first_status, response_type, first_basic = _unwrap(responses[0])
    tbs, algorithm, _signature, *certs = _der.elements(first_basic.content)
    parts = _der.elements(tbs.content)
    singles = [_der.elements(_der.elements(_unwrap(r)[2].content)[0].content) for r in responses]
    index = next(i for i, p in enumerate(parts) if p.tag == _der.SEQUENCE)
    all_singles = b"".join(_der.elements(s[index].content)[0].raw for s in singles)
    rebuilt = (
        b"".join(p.raw for p in parts[:index])
        + _der.encode(_der.SEQUENCE, all_singles)
        + b"".join(p.raw for p in parts[index + 1 :])
    )
    new_tbs = _der.encode(_der.SEQUENCE, rebuilt)
    signature = _der.encode(_der.BIT_STRING, b"\x00" + _sign(signer.key, new_tbs))
    basic = _der.encode(_der.SEQUENCE, new_tbs + algorithm.raw + signature + b"".join(c.raw for c in certs))
    response_bytes = _der.encode(_der.SEQUENCE, response_type.raw + _der.encode(_der.OCTET_STRING, basic))
    return _der.encode(_der.SEQUENCE, first_status.raw + _der.encode(0xA0, response_bytes))


def _unwrap(response: bytes) -> tuple[_der.Element, _der.Element, _der.Element]:
    """(responseStatus, responseType OID, BasicOCSPResponse) of an OCSPResponse."""
    status, wrapped = _der.elements(_der.single(response).content)
    response_type, octets = _der.elements(_der.single(wrapped.content).content)
    return status, response_type, _der.single(octets.content)


def _sign(key: CertificateIssuerPrivateKeyTypes, data: bytes) -> bytes:
    """Sign as cryptography does for OCSP: ECDSA or PKCS#1 v1.5 with the key's hash, EdDSA,
    or pure ML-DSA with the empty context (RFC 9881 section 3, as X.509 signatures use it)."""
    algorithm = signature_hash_for(key)
    if isinstance(key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey):
        return key.sign(data)
    if isinstance(key, mldsa.MLDSA44PrivateKey | mldsa.MLDSA65PrivateKey | mldsa.MLDSA87PrivateKey):
        return key.sign(data)
    assert algorithm is not None
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(algorithm))
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, padding.PKCS1v15(), algorithm)
    raise ValueError(f"cannot sign OCSP responses with a {type(key).__name__}")
