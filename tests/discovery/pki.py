"""A throwaway PKI for discovery tests: a root, an intermediate, and leaves of every kind a
scanner must judge. Built with ``cryptography``; SHA-1 signatures (which ``cryptography``
refuses to make) with the real ``openssl`` command."""

from __future__ import annotations

import datetime as dt
import ipaddress
import subprocess
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import NameOID

Key = CertificateIssuerPrivateKeyTypes


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _sans(names: list[str]) -> x509.SubjectAlternativeName:
    out: list[x509.GeneralName] = []
    for n in names:
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            out.append(x509.DNSName(n))
    return x509.SubjectAlternativeName(out)


def pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def key_pem(key: Key, password: bytes | None = None) -> bytes:
    encryption = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


@dataclass
class Issued:
    cert: x509.Certificate
    key: Key


class Pki:
    """``Pki()`` makes a root (EC P-256) and an intermediate; :meth:`leaf` issues from the
    intermediate unless told otherwise."""

    def __init__(self, name: str = "Discovery Test", now: dt.datetime | None = None) -> None:
        self.now = now or dt.datetime.now(dt.UTC).replace(microsecond=0)
        root_key = ec.generate_private_key(ec.SECP256R1())
        root = self._build(
            _name(f"{name} Root"),
            _name(f"{name} Root"),
            root_key.public_key(),
            root_key,
            days=3650,
            ca=True,
            path_length=1,
        )
        self.root = Issued(root, root_key)
        inter_key = ec.generate_private_key(ec.SECP256R1())
        inter = self._build(
            _name(f"{name} Intermediate"),
            root.subject,
            inter_key.public_key(),
            root_key,
            days=1825,
            ca=True,
            path_length=0,
        )
        self.intermediate = Issued(inter, inter_key)

    def _build(
        self,
        subject: x509.Name,
        issuer: x509.Name,
        public_key: object,
        signing_key: Key,
        *,
        days: int,
        ca: bool,
        path_length: int | None = None,
        names: list[str] | None = None,
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
    ) -> x509.Certificate:
        start = not_before or self.now - dt.timedelta(minutes=5)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(public_key)  # type: ignore[arg-type]
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(not_after or start + dt.timedelta(days=days))
            .add_extension(
                x509.BasicConstraints(ca=ca, path_length=path_length if ca else None), critical=True
            )
        )
        if names:
            builder = builder.add_extension(_sans(names), critical=False)
        return builder.sign(signing_key, hashes.SHA256())

    def leaf(
        self,
        names: list[str],
        *,
        key: Key | None = None,
        days: int = 90,
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
        self_signed: bool = False,
        issuer: Issued | None = None,
    ) -> Issued:
        key = key or ec.generate_private_key(ec.SECP256R1())
        subject = _name(names[0] if names else "no-names")
        signer = issuer or self.intermediate
        cert = self._build(
            subject,
            subject if self_signed else signer.cert.subject,
            key.public_key(),
            key if self_signed else signer.key,
            days=days,
            ca=False,
            names=names,
            not_before=not_before,
            not_after=not_after,
        )
        return Issued(cert, key)

    def sha1_leaf(self, names: list[str], workdir: Path) -> Issued:
        """A leaf the intermediate signs with SHA-1, made by ``openssl x509 -req -sha1``."""
        workdir.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        csr = x509.CertificateSigningRequestBuilder().subject_name(_name(names[0])).sign(key, hashes.SHA256())
        (workdir / "sha1.csr").write_bytes(csr.public_bytes(serialization.Encoding.PEM))
        (workdir / "ca.pem").write_bytes(pem(self.intermediate.cert))
        (workdir / "ca.key").write_bytes(key_pem(self.intermediate.key))
        alt = ",".join(("IP:" if _is_ip(n) else "DNS:") + n for n in names)
        (workdir / "ext.cnf").write_text(f"basicConstraints=critical,CA:FALSE\nsubjectAltName={alt}\n")
        subprocess.run(
            [
                "openssl",
                "x509",
                "-req",
                "-in",
                str(workdir / "sha1.csr"),
                "-CA",
                str(workdir / "ca.pem"),
                "-CAkey",
                str(workdir / "ca.key"),
                "-CAcreateserial",
                "-sha1",
                "-days",
                "90",
                "-extfile",
                str(workdir / "ext.cnf"),
                "-out",
                str(workdir / "sha1.pem"),
            ],
            check=True,
            capture_output=True,
        )
        return Issued(x509.load_pem_x509_certificate((workdir / "sha1.pem").read_bytes()), key)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def rsa_key(bits: int) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)
