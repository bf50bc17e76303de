"""CA keys inside a PKCS#11 token (an HSM; SoftHSM2 in tests).

Keys are generated in the token (``CKA_TOKEN``, ``CKA_SENSITIVE``, not ``CKA_EXTRACTABLE``)
and every signature is made there; the database records only the key's label. The PIN is
read from a 0600 file when the backend is built and is never logged.

It fails closed: when the module, slot or token is gone or the login fails, every signature
raises :class:`KeyBackendUnavailable` (HTTP 503), ``up`` turns false, and nothing falls back
to a software key. The next use after ``retry_seconds`` reopens the library and the session
(``C_Finalize`` then ``C_Initialize``: SoftHSM2 only rescans its token directory then), so the
same key serves again when the token returns.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pkcs11
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from pkcs11 import Attribute, Mechanism, ObjectClass
from pkcs11.util.ec import encode_named_curve_parameters
from pkcs11.util.rsa import encode_rsa_public_key

from certfleet.ca.errors import CaKeyError, KeyBackendUnavailable
from certfleet.x509 import KeyType
from certfleet.x509.signing import ExternalKey

if TYPE_CHECKING:
    from pkcs11 import Session

__all__ = ["Pkcs11KeyBackend", "read_pin"]

T = TypeVar("T")
_CURVES: dict[KeyType, tuple[str, ec.EllipticCurve]] = {
    KeyType.EC_P256: ("secp256r1", ec.SECP256R1()),
    KeyType.EC_P384: ("secp384r1", ec.SECP384R1()),
}
_RSA_BITS = {KeyType.RSA_2048: 2048, KeyType.RSA_3072: 3072, KeyType.RSA_4096: 4096}
# RFC 8017 section 9.2 note 1: the DigestInfo prefixes CKM_RSA_PKCS signs in front of a hash.
_DIGEST_INFO = {
    "sha256": bytes.fromhex("3031300d060960864801650304020105000420"),
    "sha384": bytes.fromhex("3041300d060960864801650304020205000430"),
    "sha512": bytes.fromhex("3051300d060960864801650304020305000440"),
}


def read_pin(path: Path) -> str:
    """The user PIN from a file only its owner can read (first line, whitespace stripped)."""
    try:
        if path.stat().st_mode & 0o077:
            raise CaKeyError(f"PIN file {path} is readable by others: chmod 600 it")
        pin = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise CaKeyError(f"cannot read PIN file {path}: {exc.strerror}") from exc
    if not pin:
        raise CaKeyError(f"PIN file {path} is empty")
    return pin


@dataclass(frozen=True)
class _Token:
    module: Path
    label: str
    pin: str

    def __repr__(self) -> str:  # never the PIN
        return f"_Token(module={str(self.module)!r}, label={self.label!r})"


class Pkcs11KeyBackend:
    """Keys in the token labelled ``token_label`` of the PKCS#11 ``module``.

    ``retry_seconds`` (default 2) is the shortest time between two attempts to reopen a
    token that failed: long enough that a dead HSM is not hammered by every request, short
    enough that issuance resumes within seconds of its return.
    """

    name = "pkcs11"

    def __init__(self, module: Path, token_label: str, pin: str, *, retry_seconds: float = 2.0) -> None:
        self._token = _Token(module, token_label, pin)
        self._retry_seconds = retry_seconds
        self._lock = threading.Lock()
        self._lib: Any = None
        self._session: Session | None = None
        self._handles: dict[str, Any] = {}
        self._public: dict[str, Any] = {}
        self._next_attempt = 0.0
        self.up = False
        self.last_error: str | None = None

    # -- KeyBackend ---------------------------------------------------------------------
    def create(self, label: str, key_type: KeyType) -> str:
        if key_type not in _CURVES and key_type not in _RSA_BITS:
            raise CaKeyError(
                f"the pkcs11 key backend holds ec-p256, ec-p384 and rsa-2048/3072/4096 keys, not {key_type}"
            )
        key_ref = f"{label}-{secrets.token_hex(4)}"
        # A CA key signs and does nothing else (no ECDH, no RSA decryption or unwrapping).
        private = {
            Attribute.SENSITIVE: True,
            Attribute.EXTRACTABLE: False,
            Attribute.TOKEN: True,
            Attribute.SIGN: True,
            Attribute.DERIVE: False,
            Attribute.DECRYPT: False,
            Attribute.UNWRAP: False,
        }
        ident = key_ref.encode()

        def generate(session: Session) -> None:
            if key_type in _CURVES:
                params = session.create_domain_parameters(
                    pkcs11.KeyType.EC,
                    {Attribute.EC_PARAMS: encode_named_curve_parameters(_CURVES[key_type][0])},
                    local=True,
                )
                params.generate_keypair(store=True, label=key_ref, id=ident, private_template=private)
            else:
                session.generate_keypair(
                    pkcs11.KeyType.RSA,
                    _RSA_BITS[key_type],
                    store=True,
                    label=key_ref,
                    id=ident,
                    private_template=private,
                )

        self._run(generate)
        return key_ref

    def load(self, key_ref: str) -> CertificateIssuerPrivateKeyTypes:
        public = self._public.get(key_ref) or self._run(lambda s: self._read_public(s, key_ref))
        self._public[key_ref] = public
        if isinstance(public, ec.EllipticCurvePublicKey):
            return _EcKey(self, key_ref, public)
        return _RsaKey(self, key_ref, public)

    def delete(self, key_ref: str) -> None:
        def destroy(session: Session) -> None:
            for obj in session.get_objects({Attribute.LABEL: key_ref}):
                obj.destroy()

        self._run(destroy)

    # -- health -------------------------------------------------------------------------
    def unavailable(self) -> str | None:
        """Probe the token now (reopening it if it was down and the back-off has passed):
        None while it can sign, else why not."""
        try:
            self._run(lambda s: self._lib.get_token(token_label=self._token.label))
        except KeyBackendUnavailable as exc:
            return exc.detail
        return None

    # -- signing ------------------------------------------------------------------------
    def sign_raw(self, key_ref: str, mechanism: Mechanism, data: bytes) -> bytes:
        def sign(session: Session) -> bytes:
            handle: Any = self._handles.get(key_ref)
            if handle is None:
                handle = session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=key_ref)
                self._handles[key_ref] = handle
            return bytes(handle.sign(data, mechanism=mechanism))

        return self._run(sign)

    def _read_public(self, session: Session, key_ref: str) -> Any:
        key = session.get_key(object_class=ObjectClass.PUBLIC_KEY, label=key_ref)
        if key.key_type == pkcs11.KeyType.EC:
            params = bytes(key[Attribute.EC_PARAMS])
            point = bytes(key[Attribute.EC_POINT])
            curve = next(c for name, c in _CURVES.values() if encode_named_curve_parameters(name) == params)
            # CKA_EC_POINT is a DER OCTET STRING around the X9.62 point (PKCS#11 v2.40 2.3.3).
            return ec.EllipticCurvePublicKey.from_encoded_point(
                curve, point[2:] if point[1] < 0x80 else point[3:]
            )
        return serialization.load_der_public_key(encode_rsa_public_key(key))  # type: ignore[arg-type]

    def _run(self, operation: Callable[[Session], T]) -> T:
        """Run ``operation`` with the open session; any PKCS#11 failure closes it and fails."""
        with self._lock:
            session = self._open()
            try:
                return operation(session)
            except CaKeyError:
                raise
            except (pkcs11.PKCS11Error, RuntimeError, OSError) as exc:
                self._down(exc)
                raise KeyBackendUnavailable(
                    f"HSM token {self._token.label!r} is unavailable ({type(exc).__name__})"
                ) from exc

    def _open(self) -> Session:
        if self._session is not None:
            return self._session
        now = time.monotonic()
        if now < self._next_attempt:
            raise KeyBackendUnavailable(f"HSM token {self._token.label!r} is unavailable: {self.last_error}")
        try:
            if self._lib is None:
                # python-pkcs11 keeps one loaded library per path string: the real path,
                # so a symlink and its target never load (and C_Initialize) it twice.
                self._lib = pkcs11.lib(os.path.realpath(self._token.module))
            # Drop stale handles and rescan the slots; a failed C_Initialize (or another
            # backend's C_Finalize in this process) leaves the library finalised already.
            with contextlib.suppress(pkcs11.PKCS11Error):
                self._lib.finalize()
            self._lib.initialize()
            token = self._lib.get_token(token_label=self._token.label)
            self._session = token.open(user_pin=self._token.pin, rw=True)
        except (pkcs11.PKCS11Error, RuntimeError, OSError) as exc:
            self._down(exc)
            raise KeyBackendUnavailable(
                f"HSM token {self._token.label!r} is unavailable: {self.last_error}"
            ) from exc
        self.up = True
        self.last_error = None
        return self._session

    def _down(self, exc: BaseException) -> None:
        self._session = None
        self._handles.clear()
        self.up = False
        self._next_attempt = time.monotonic() + self._retry_seconds
        # The exception's class names the failure (TokenNotPresent, PinIncorrect, ...);
        # its text may come from the module, which is not ours to echo.
        self.last_error = type(exc).__name__


def _digest(data: bytes, algorithm: hashes.HashAlgorithm | utils.Prehashed) -> tuple[str, bytes]:
    if isinstance(algorithm, utils.Prehashed):
        return algorithm._algorithm.name, data
    if algorithm.name not in _DIGEST_INFO:
        raise CaKeyError(f"the pkcs11 key backend does not sign with {algorithm.name}")
    return algorithm.name, hashlib.new(algorithm.name, data).digest()


class _EcKey(ExternalKey, ec.EllipticCurvePrivateKey):
    """An EC key in the token: CKM_ECDSA over a hash made here (SoftHSM2 has no
    CKM_ECDSA_SHA256), its raw r||s turned into the DER X.509 wants (RFC 5480 section 2.2.3)."""

    def __init__(self, backend: Pkcs11KeyBackend, key_ref: str, public: ec.EllipticCurvePublicKey) -> None:
        self._backend = backend
        self.key_ref = key_ref
        self._public_key = public

    def sign(
        self, data: bytes | bytearray | memoryview, signature_algorithm: ec.EllipticCurveSignatureAlgorithm
    ) -> bytes:
        assert isinstance(signature_algorithm, ec.ECDSA)
        _, digest = _digest(bytes(data), signature_algorithm.algorithm)
        raw = self._backend.sign_raw(self.key_ref, Mechanism.ECDSA, digest)
        half = len(raw) // 2
        return utils.encode_dss_signature(int.from_bytes(raw[:half]), int.from_bytes(raw[half:]))

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._public_key

    @property
    def curve(self) -> ec.EllipticCurve:
        return self._public_key.curve

    @property
    def key_size(self) -> int:
        return self._public_key.curve.key_size

    def exchange(self, algorithm: ec.ECDH, peer_public_key: ec.EllipticCurvePublicKey) -> bytes:
        raise CaKeyError("a CA key in the HSM only signs")

    def private_numbers(self) -> ec.EllipticCurvePrivateNumbers:
        raise CaKeyError("a CA key in the HSM cannot be exported")

    def private_bytes(self, *args: Any, **kwargs: Any) -> bytes:
        raise CaKeyError("a CA key in the HSM cannot be exported")

    def __copy__(self) -> _EcKey:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> _EcKey:
        return self


class _RsaKey(ExternalKey, rsa.RSAPrivateKey):
    """An RSA key in the token: CKM_RSA_PKCS over a DigestInfo made here (RFC 8017 9.2)."""

    def __init__(self, backend: Pkcs11KeyBackend, key_ref: str, public: rsa.RSAPublicKey) -> None:
        self._backend = backend
        self.key_ref = key_ref
        self._public_key = public

    def sign(
        self,
        data: bytes | bytearray | memoryview,
        padding: padding.AsymmetricPadding,
        algorithm: utils.Prehashed | hashes.HashAlgorithm | utils.NoDigestInfo,
    ) -> bytes:
        if isinstance(algorithm, utils.NoDigestInfo):
            raise CaKeyError("the pkcs11 key backend signs a DigestInfo, not a bare digest")
        if padding.name != "EMSA-PKCS1-v1_5":
            raise CaKeyError(f"the pkcs11 key backend signs RSA with PKCS#1 v1.5, not {padding.name}")
        name, digest = _digest(bytes(data), algorithm)
        return self._backend.sign_raw(self.key_ref, Mechanism.RSA_PKCS, _DIGEST_INFO[name] + digest)

    def public_key(self) -> rsa.RSAPublicKey:
        return self._public_key

    @property
    def key_size(self) -> int:
        return self._public_key.key_size

    def decrypt(self, ciphertext: bytes, padding: padding.AsymmetricPadding) -> bytes:
        raise CaKeyError("a CA key in the HSM only signs")

    def private_numbers(self) -> rsa.RSAPrivateNumbers:
        raise CaKeyError("a CA key in the HSM cannot be exported")

    def private_bytes(self, *args: Any, **kwargs: Any) -> bytes:
        raise CaKeyError("a CA key in the HSM cannot be exported")

    def __copy__(self) -> _RsaKey:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> _RsaKey:
        return self
