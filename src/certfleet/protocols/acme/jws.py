"""Parsing and verifying the flattened JWS that carries every ACME POST (RFC 8555 section 6.2).

The checks run in a fixed order so each bad input gets one precise problem: content type,
size, JSON structure (flattened serialization only, no unprotected header), base64url,
algorithm, ``jwk`` XOR ``kid``. The signature itself is checked by :meth:`JwsMessage.verify`
once the caller knows the key (the ``jwk`` header, or the account named by ``kid``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from josepy import errors as jose_errors
from josepy import jwa
from josepy.jwk import JWK

from certfleet.protocols.acme.problems import AcmeProblem
from certfleet.x509 import spki_der

__all__ = [
    "JOSE_CONTENT_TYPE",
    "MAX_BODY_BYTES",
    "SIGNATURE_ALGORITHMS",
    "JwsMessage",
    "b64decode",
    "b64encode",
    "check_content_type",
    "load_public_jwk",
    "parse_jws",
    "spki_of_jwk",
    "thumbprint",
]

JOSE_CONTENT_TYPE = "application/jose+json"
# Large enough for a finalize with a 100-name RSA-8192 CSR, small enough to bound work.
MAX_BODY_BYTES = 64 * 1024
MIN_RSA_BITS = 2048
MAX_RSA_BITS = 8192

# RFC 8555 section 6.2: servers MUST support RS256 and SHOULD support ES256. No MAC
# algorithm and never "none": an account key is an asymmetric key pair.
_ALGORITHMS: dict[str, jwa.JWASignature] = {
    "RS256": jwa.RS256,
    "RS384": jwa.RS384,
    "RS512": jwa.RS512,
    "PS256": jwa.PS256,
    "PS384": jwa.PS384,
    "PS512": jwa.PS512,
    "ES256": jwa.ES256,
    "ES384": jwa.ES384,
    "ES512": jwa.ES512,
}
SIGNATURE_ALGORITHMS = tuple(_ALGORITHMS)
_EC_ALG_CURVE = {"ES256": "secp256r1", "ES384": "secp384r1", "ES512": "secp521r1"}
_MAC_ALGORITHMS = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}
_B64URL = re.compile(r"^[A-Za-z0-9_-]*$")
_FLATTENED_FIELDS = {"protected", "payload", "signature"}


def b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64decode(text: object, what: str) -> bytes:
    """Strict base64url without padding (RFC 7515 section 2): anything else is malformed."""
    if not isinstance(text, str) or not _B64URL.match(text) or len(text) % 4 == 1:
        raise AcmeProblem("malformed", f"{what} is not valid base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:  # pragma: no cover - the regex rules these out
        raise AcmeProblem("malformed", f"{what} is not valid base64url") from exc


def check_content_type(content_type: str | None) -> None:
    """RFC 8555 section 6.2: a POST body must be ``application/jose+json``."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media != JOSE_CONTENT_TYPE:
        raise AcmeProblem(
            "unsupportedMediaType",
            f"content type must be {JOSE_CONTENT_TYPE}, got {content_type or 'none'!r}",
        )


def _json_object(data: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise AcmeProblem("malformed", f"{what} is not valid JSON") from exc
    if not isinstance(value, dict):
        raise AcmeProblem("malformed", f"{what} must be a JSON object")
    return value


def load_public_jwk(value: object) -> JWK:
    """Parse an account key: RSA 2048..8192 bits or EC P-256/P-384/P-521, public part only."""
    if not isinstance(value, Mapping):
        raise AcmeProblem("malformed", "jwk must be a JSON object")
    if "d" in value:
        raise AcmeProblem("badPublicKey", "jwk holds a private key: send only the public key")
    kty = value.get("kty")
    if kty not in ("RSA", "EC"):
        raise AcmeProblem("badPublicKey", f"key type {kty!r} is not supported (RSA or EC only)")
    try:
        parsed = JWK.from_json(dict(value))
        assert isinstance(parsed, JWK)
        jwk = parsed
    except (jose_errors.DeserializationError, ValueError, TypeError, KeyError) as exc:
        if kty == "EC":
            raise AcmeProblem(
                "badPublicKey", f"EC key on curve {value.get('crv')!r} is not supported (P-256, P-384, P-521)"
            ) from exc
        raise AcmeProblem("malformed", f"jwk cannot be parsed: {exc}") from exc
    key = crypto_key(jwk)
    if isinstance(key, rsa.RSAPublicKey) and not MIN_RSA_BITS <= key.key_size <= MAX_RSA_BITS:
        raise AcmeProblem(
            "badPublicKey", f"RSA key of {key.key_size} bits is not accepted ({MIN_RSA_BITS}-{MAX_RSA_BITS})"
        )
    return jwk


def crypto_key(jwk: JWK) -> Any:
    """The ``cryptography`` key inside a JWK (josepy wraps it for comparison)."""
    key = jwk.key
    return getattr(key, "_wrapped", key)


def thumbprint(jwk: JWK) -> str:
    """The RFC 7638 SHA-256 thumbprint, base64url: the key's identity and the second half of
    every key authorization (RFC 8555 section 8.1)."""
    return b64encode(jwk.thumbprint())


def spki_of_jwk(jwk: JWK) -> bytes:
    public = crypto_key(jwk.public_key())
    return spki_der(public)


@dataclass(frozen=True)
class JwsMessage:
    """A structurally valid flattened JWS whose signature is not yet verified."""

    protected: Mapping[str, Any]
    protected_b64: str
    payload: bytes
    payload_b64: str
    signature: bytes
    alg: str
    jwk: JWK | None
    kid: str | None

    @property
    def nonce(self) -> object:
        return self.protected.get("nonce")

    @property
    def url(self) -> object:
        return self.protected.get("url")

    @property
    def is_post_as_get(self) -> bool:
        """RFC 8555 section 6.3: an empty payload (not ``{}``) is a GET."""
        return self.payload_b64 == ""

    def json_payload(self) -> dict[str, Any]:
        if self.is_post_as_get:
            raise AcmeProblem("malformed", "this request needs a JSON payload, not POST-as-GET")
        return _json_object(self.payload, "JWS payload")

    def verify(self, key: JWK) -> None:
        """Check that ``alg`` fits ``key`` and that the signature verifies."""
        public = crypto_key(key)
        if self.alg.startswith(("RS", "PS")) and not isinstance(public, rsa.RSAPublicKey):
            raise AcmeProblem("badSignatureAlgorithm", f"algorithm {self.alg} does not fit an EC key")
        if self.alg.startswith("ES"):
            if not isinstance(public, ec.EllipticCurvePublicKey):
                raise AcmeProblem("badSignatureAlgorithm", f"algorithm {self.alg} does not fit an RSA key")
            if public.curve.name != _EC_ALG_CURVE[self.alg]:
                raise AcmeProblem(
                    "badSignatureAlgorithm", f"algorithm {self.alg} does not fit a {public.curve.name} key"
                )
        signing_input = f"{self.protected_b64}.{self.payload_b64}".encode()
        if not _ALGORITHMS[self.alg].verify(public, signing_input, self.signature):
            raise AcmeProblem("malformed", "JWS signature does not verify")


def parse_jws(body: bytes, *, max_bytes: int = MAX_BODY_BYTES) -> JwsMessage:
    """Parse a request body into a :class:`JwsMessage`, refusing every malformed variant."""
    if len(body) > max_bytes:
        raise AcmeProblem("payloadTooLarge", f"request body is larger than {max_bytes} bytes")
    outer = _json_object(body, "request body")
    if "signatures" in outer:
        raise AcmeProblem("malformed", "JWS with several signatures (general serialization) is not allowed")
    if "header" in outer:
        raise AcmeProblem("malformed", "JWS unprotected header is not allowed")
    missing = _FLATTENED_FIELDS - set(outer)
    if missing:
        raise AcmeProblem("malformed", f"JWS lacks {', '.join(sorted(missing))}")
    extra = set(outer) - _FLATTENED_FIELDS
    if extra:
        raise AcmeProblem("malformed", f"JWS has unexpected fields {', '.join(sorted(extra))}")
    protected_b64 = outer["protected"]
    payload_b64 = outer["payload"]
    protected = _json_object(b64decode(protected_b64, "JWS protected header"), "JWS protected header")
    payload = b64decode(payload_b64, "JWS payload")
    signature = b64decode(outer["signature"], "JWS signature")
    alg = protected.get("alg")
    if alg not in _ALGORITHMS:
        raise AcmeProblem(
            "badSignatureAlgorithm",
            f"JWS algorithm {alg!r} is not supported",
            extra={"algorithms": list(SIGNATURE_ALGORITHMS)},
        )
    if "crit" in protected:
        raise AcmeProblem("malformed", "JWS 'crit' header is not supported")
    has_jwk, has_kid = "jwk" in protected, "kid" in protected
    if has_jwk == has_kid:
        raise AcmeProblem("malformed", "JWS protected header must have exactly one of 'jwk' and 'kid'")
    kid = protected.get("kid")
    if has_kid and (not isinstance(kid, str) or not kid):
        raise AcmeProblem("malformed", "JWS 'kid' must be an account URL")
    jwk = load_public_jwk(protected["jwk"]) if has_jwk else None
    return JwsMessage(protected, protected_b64, payload, payload_b64, signature, alg, jwk, kid)


def verify_mac(binding: Mapping[str, Any], hmac_key: bytes) -> None:
    """Verify the HMAC of an external account binding JWS (RFC 8555 section 7.3.4)."""
    protected = _json_object(b64decode(binding.get("protected"), "EAB protected header"), "EAB header")
    alg = protected.get("alg")
    if alg not in _MAC_ALGORITHMS:
        raise AcmeProblem(
            "badSignatureAlgorithm",
            f"external account binding algorithm {alg!r} is not supported",
            extra={"algorithms": list(_MAC_ALGORITHMS)},
        )
    signature = b64decode(binding.get("signature"), "EAB signature")
    signing_input = f"{binding.get('protected')}.{binding.get('payload')}".encode()
    expected = hmac.new(hmac_key, signing_input, _MAC_ALGORITHMS[alg]).digest()
    if not hmac.compare_digest(expected, signature):
        raise AcmeProblem("unauthorized", "external account binding MAC does not verify")
