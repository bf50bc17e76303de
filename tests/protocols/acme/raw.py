"""A hand-rolled ACME client that can send anything: well-formed requests to set up state,
and every malformed variant the server must refuse."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from josepy import jwa
from josepy.jwk import JWK, JWKEC, JWKRSA

from tests.x509.factories import build_csr, der

AUTO: Any = object()
JOSE = "application/jose+json"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def ec_key(curve: ec.EllipticCurve | None = None) -> JWK:
    return JWKEC(key=ec.generate_private_key(curve or ec.SECP256R1()))


def rsa_key(bits: int = 2048) -> JWK:
    return JWKRSA(key=rsa.generate_private_key(65537, bits))


def thumbprint(key: JWK) -> str:
    return b64(key.thumbprint())


def csr_der(names: list[str], key: Any = None, cn: str | None = AUTO) -> bytes:
    """A CSR for ``names`` (the first is the CN unless ``cn`` says otherwise), DER."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    common = (names[0] if names else None) if cn is AUTO else cn
    return der(build_csr(key, tuple(names), common))


def alg_for(key: JWK) -> str:
    if isinstance(key, JWKRSA):
        return "RS256"
    curve = key.key.curve.name
    return {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}[curve]


def sign_flattened(
    key: JWK, protected: dict[str, Any], payload: bytes, alg: str | None = None
) -> dict[str, str]:
    alg = alg or protected.get("alg") or alg_for(key)
    protected_b64 = b64(json.dumps(protected).encode())
    payload_b64 = b64(payload) if payload else ""
    signer = getattr(jwa, alg)
    signature = signer.sign(key.key, f"{protected_b64}.{payload_b64}".encode())
    return {"protected": protected_b64, "payload": payload_b64, "signature": b64(signature)}


@dataclass
class Account:
    key: JWK
    kid: str


@dataclass
class RawAcme:
    directory_url: str
    http: httpx.Client
    directory: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.directory = self.http.get(self.directory_url).json()

    def nonce(self) -> str:
        response = self.http.head(self.directory["newNonce"])
        assert response.status_code == 200
        return response.headers["Replay-Nonce"]

    def post_raw(self, url: str, body: bytes, content_type: str = JOSE) -> httpx.Response:
        return self.http.post(url, content=body, headers={"Content-Type": content_type})

    def post(
        self,
        url: str,
        payload: Any,
        key: JWK,
        *,
        kid: str | None = None,
        alg: str | None = None,
        nonce: Any = AUTO,
        url_header: Any = AUTO,
        protected_extra: dict[str, Any] | None = None,
        content_type: str = JOSE,
    ) -> httpx.Response:
        """Sign ``payload`` (a dict, or ``b""`` for POST-as-GET, or raw bytes) and send it."""
        protected: dict[str, Any] = {"alg": alg or alg_for(key)}
        if kid is not None:
            protected["kid"] = kid
        else:
            protected["jwk"] = key.public_key().to_partial_json()
        if nonce is AUTO:
            protected["nonce"] = self.nonce()
        elif nonce is not None:
            protected["nonce"] = nonce
        if url_header is AUTO:
            protected["url"] = url
        elif url_header is not None:
            protected["url"] = url_header
        protected.update(protected_extra or {})
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        jws = sign_flattened(key, protected, body, alg)
        return self.post_raw(url, json.dumps(jws).encode(), content_type)

    def new_account(self, key: JWK | None = None, **payload: Any) -> Account:
        key = key or ec_key()
        response = self.post(self.directory["newAccount"], {"termsOfServiceAgreed": True, **payload}, key)
        assert response.status_code in (200, 201), response.text
        return Account(key, response.headers["Location"])

    def post_as_get(self, account: Account, url: str) -> httpx.Response:
        return self.post(url, b"", account.key, kid=account.kid)

    def new_order(self, account: Account, names: list[str], **extra: Any) -> httpx.Response:
        idents = [{"type": "ip" if _is_ip(n) else "dns", "value": n} for n in names]
        return self.post(
            self.directory["newOrder"], {"identifiers": idents, **extra}, account.key, kid=account.kid
        )


def _is_ip(name: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def key_authorization(token: str, key: JWK) -> str:
    return f"{token}.{thumbprint(key)}"


def dns01_value(token: str, key: JWK) -> str:
    return b64(hashlib.sha256(key_authorization(token, key).encode()).digest())
