"""The one signing seam: certificates, CRLs, OCSP responses and raw bytes, whatever holds the key.

cryptography's builders sign only with its own (Rust) key objects, so a key that lives in an
HSM cannot be handed to ``builder.sign``. Such a key is an :class:`ExternalKey`: it subclasses
cryptography's private-key interface (``sign``, ``public_key``, ``curve``/``key_size``), so
``isinstance`` checks, ``signature_hash_for`` and raw ``key.sign(data, ...)`` callers (JWT-SVIDs,
joined OCSP responses) work unchanged, but its private half never leaves the device.

For builders, :func:`sign_certificate`, :func:`sign_crl` and :func:`sign_ocsp_response` sign
first with a throwaway key of the same type, so cryptography writes a ``signatureAlgorithm``
identical to the one the real key implies (X.509 section 4.1.1.2 requires it to equal the
``signature`` field inside the TBS); then the TBS bytes are signed by the external key and the
signature BIT STRING is swapped (RFC 5280 section 4.1, 5.1; RFC 6960 section 4.2.1). Every
other byte is cryptography's own encoding.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from typing import Any, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp

from certfleet.x509 import der as _der
from certfleet.x509.keys import signature_hash_for

_S = TypeVar("_S", x509.Certificate, x509.CertificateRevocationList)

__all__ = ["ExternalKey", "sign_bytes", "sign_certificate", "sign_crl", "sign_ocsp_response"]


class ExternalKey:
    """Marks a private key whose operations happen outside this process (an HSM token).

    A concrete class inherits this first and then ``ec.EllipticCurvePrivateKey`` or
    ``rsa.RSAPrivateKey``; it must implement ``sign`` and ``public_key``. Exporting the private
    half (``private_bytes``, ``private_numbers``) raises: it cannot leave the device."""


def sign_bytes(key: CertificateIssuerPrivateKeyTypes, data: bytes) -> bytes:
    """Sign ``data`` as cryptography's builders do: ECDSA (DER) or PKCS#1 v1.5 with the key's
    hash, or EdDSA."""
    if isinstance(key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey):
        return key.sign(data)
    algorithm = signature_hash_for(key)
    assert algorithm is not None
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(algorithm))
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, padding.PKCS1v15(), algorithm)
    raise ValueError(f"cannot sign with a {type(key).__name__}")


def _sign_signed_object(
    builder: Any, key: CertificateIssuerPrivateKeyTypes, load: Callable[[bytes], _S]
) -> _S:
    """A certificate or CRL: both are SEQUENCE { tbs, signatureAlgorithm, signature }."""
    if not isinstance(key, ExternalKey):
        signed: _S = builder.sign(key, signature_hash_for(key))
        return signed
    draft = builder.sign(_stand_in(key), signature_hash_for(key))
    return load(_resign(draft.public_bytes(Encoding.DER), key))


def sign_certificate(
    builder: x509.CertificateBuilder, key: CertificateIssuerPrivateKeyTypes
) -> x509.Certificate:
    return _sign_signed_object(builder, key, x509.load_der_x509_certificate)


def sign_crl(
    builder: x509.CertificateRevocationListBuilder, key: CertificateIssuerPrivateKeyTypes
) -> x509.CertificateRevocationList:
    return _sign_signed_object(builder, key, x509.load_der_x509_crl)


def sign_ocsp_response(
    builder: ocsp.OCSPResponseBuilder, key: CertificateIssuerPrivateKeyTypes
) -> ocsp.OCSPResponse:
    if not isinstance(key, ExternalKey):
        return builder.sign(key, signature_hash_for(key))
    # cryptography insists that the responder certificate matches the signing key, so the
    # draft names a stand-in responder and the real ResponderID is put back afterwards.
    responder, encoding = builder._responder_id or (None, None)
    if responder is None or encoding is None:
        raise ValueError("an OCSP response needs a responder ID before signing")
    stand_in = _stand_in(key)
    draft_builder = ocsp.OCSPResponseBuilder(
        builder._response, (_stand_in_responder(stand_in), encoding), builder._certs, builder._extensions
    )
    draft = draft_builder.sign(stand_in, signature_hash_for(key)).public_bytes(Encoding.DER)
    # OCSPResponse ::= SEQUENCE { responseStatus, responseBytes [0] EXPLICIT SEQUENCE {
    #     responseType OID, response OCTET STRING (a DER BasicOCSPResponse) } }
    status, wrapped = _der.elements(_der.single(draft).content)
    response_type, octets = _der.elements(_der.single(wrapped.content).content)
    tbs, algorithm, _signature, *certs = _der.elements(_der.single(octets.content).content)
    basic = _der.encode(
        _der.SEQUENCE,
        _with_responder(tbs, responder, encoding) + algorithm.raw + b"".join(c.raw for c in certs),
    )
    response_bytes = _der.encode(
        _der.SEQUENCE, response_type.raw + _der.encode(_der.OCTET_STRING, _resign(basic, key))
    )
    return ocsp.load_der_ocsp_response(
        _der.encode(_der.SEQUENCE, status.raw + _der.encode(0xA0, response_bytes))
    )


def _with_responder(
    tbs: _der.Element, responder: x509.Certificate, encoding: ocsp.OCSPResponderEncoding
) -> bytes:
    """ResponseData with its ResponderID (RFC 6960 section 4.2.1: byName [1] or byKey [2],
    explicitly tagged; the key hash is SHA-1 over the subjectPublicKey bits) for ``responder``."""
    parts = _der.elements(tbs.content)
    index = 1 if parts[0].tag == 0xA0 else 0  # an explicit version comes first
    if encoding is ocsp.OCSPResponderEncoding.HASH:
        key_hash = x509.SubjectKeyIdentifier.from_public_key(responder.public_key()).digest
        responder_id = _der.encode(0xA2, _der.encode(_der.OCTET_STRING, key_hash))
    else:
        responder_id = _der.encode(0xA1, responder.subject.public_bytes())
    rebuilt = (
        b"".join(p.raw for p in parts[:index]) + responder_id + b"".join(p.raw for p in parts[index + 1 :])
    )
    return _der.encode(_der.SEQUENCE, rebuilt) + b""


def _resign(signed: bytes, key: CertificateIssuerPrivateKeyTypes) -> bytes:
    """Replace the signature of a SEQUENCE { tbs, signatureAlgorithm, signature, ... }, or put
    one into a SEQUENCE { tbs, signatureAlgorithm, ... } that has none yet."""
    tbs, algorithm, *rest = _der.elements(_der.single(signed).content)
    if rest and rest[0].tag == _der.BIT_STRING:
        rest = rest[1:]
    signature = _der.encode(_der.BIT_STRING, b"\x00" + sign_bytes(key, tbs.raw))
    return _der.encode(_der.SEQUENCE, tbs.raw + algorithm.raw + signature + b"".join(e.raw for e in rest))


def _stand_in(key: CertificateIssuerPrivateKeyTypes) -> CertificateIssuerPrivateKeyTypes:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return _ec_stand_in(key.curve.name)
    if isinstance(key, rsa.RSAPrivateKey):
        return _rsa_stand_in()  # sha256WithRSAEncryption names no key size
    raise ValueError(f"no stand-in for a {type(key).__name__}")


@functools.cache
def _ec_stand_in(curve_name: str) -> ec.EllipticCurvePrivateKey:
    curves: dict[str, ec.EllipticCurve] = {"secp256r1": ec.SECP256R1(), "secp384r1": ec.SECP384R1()}
    return ec.generate_private_key(curves[curve_name])


@functools.cache
def _stand_in_responder(key: CertificateIssuerPrivateKeyTypes) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "stand-in")])
    moment = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(moment)
        .not_valid_after(moment)
    )
    return builder.sign(key, signature_hash_for(key))  # type: ignore[arg-type]


@functools.cache
def _rsa_stand_in() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)
