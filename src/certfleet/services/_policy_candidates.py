"""What the policy rules judge: an inventory record, or a validated request as the
certificate it would become, both as a :class:`certfleet.policy.Candidate`."""

from __future__ import annotations

from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519
from cryptography.x509.oid import ObjectIdentifier, SignatureAlgorithmOID

from certfleet.ca import Authority, ValidatedRequest
from certfleet.inventory import CertificateRecord
from certfleet.lifecycle.campaigns import key_label
from certfleet.policy import Candidate
from certfleet.x509 import describe_public_key

__all__ = ["record_candidate", "request_candidate"]


def _names(values: Sequence[str]) -> tuple[str, ...]:
    return tuple(v.strip().lower().rstrip(".") for v in values if v.strip())


def _ekus(cert: x509.Certificate) -> tuple[str, ...]:
    try:
        usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return ()
    return tuple(oid.dotted_string for oid in usage)


def record_candidate(record: CertificateRecord, *, with_ekus: bool = False) -> Candidate:
    """An inventory row as the rules see it. EKUs live only in the DER: parsed on request."""
    names = record.sans or ((record.common_name,) if record.common_name else ())
    return Candidate(
        names=_names(names),
        key_type=key_label(record),
        validity=record.not_after - record.not_before,
        profile=record.profile,
        team=record.team,
        issuer=record.issuer,
        issuer_ca_id=record.issuer_ca_id,
        signature_algorithm=record.signature_algorithm,
        ekus=_ekus(record.certificate()) if with_ekus else (),
        label=record.serial,
        not_before=record.not_before,
    )


def _name(oid: ObjectIdentifier) -> str:
    return str(getattr(oid, "_name", oid.dotted_string))


def _leaf_signature_algorithm(issuer: x509.Certificate) -> str:
    """The algorithm the issuing CA's key will sign the leaf with: the pairing of
    ``certfleet.x509.signature_hash_for`` (RFC 5480 section 4), named as the inventory names
    signature algorithms, so a request and the certificate it yields are judged alike."""
    key = issuer.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.key_size >= 521:
            return _name(SignatureAlgorithmOID.ECDSA_WITH_SHA512)
        if key.curve.key_size >= 384:
            return _name(SignatureAlgorithmOID.ECDSA_WITH_SHA384)
        return _name(SignatureAlgorithmOID.ECDSA_WITH_SHA256)
    if isinstance(key, ed25519.Ed25519PublicKey):
        return _name(SignatureAlgorithmOID.ED25519)
    if isinstance(key, ed448.Ed448PublicKey):
        return _name(SignatureAlgorithmOID.ED448)
    ml_dsa = _ML_DSA_SIGNATURES.get(describe_public_key(key).label)
    if ml_dsa is not None:  # pure ML-DSA: the parameter set is the signature algorithm
        return _name(ml_dsa)
    return _name(SignatureAlgorithmOID.RSA_WITH_SHA256)


_ML_DSA_SIGNATURES = {
    "ml-dsa-44": SignatureAlgorithmOID.ML_DSA_44,
    "ml-dsa-65": SignatureAlgorithmOID.ML_DSA_65,
    "ml-dsa-87": SignatureAlgorithmOID.ML_DSA_87,
}


def request_candidate(request: ValidatedRequest, authority: Authority, team: str | None) -> Candidate:
    """A validated request as the rules see it: the certificate it would become."""
    names = _names([n.value for n in request.names])
    issuer = authority.issuer.certificate
    return Candidate(
        names=names,
        key_type=request.key.label,
        validity=request.lifetime,
        profile=request.profile.name,
        team=team,
        issuer=issuer.subject.rfc4514_string(),
        issuer_ca_id=authority.issuer.id,
        signature_algorithm=_leaf_signature_algorithm(issuer),
        ekus=tuple(oid.dotted_string for oid in request.profile.extended_key_usages),
        label=names[0] if names else (request.common_name or ""),
        spiffe_ids=request.uris,  # an X509-SVID's SPIFFE ID, for spiffe_id_prefixes
    )
