"""What the agent trusts, and why.

1. **The pinned root, and only what it signed.** At enrolment the operator gives the root's
   SHA-256 (``--ca-fingerprint``). The CA bundle the server offers is read without TLS
   verification, so it is treated as hostile: it is kept only if one certificate is that
   self-signed root and *every* other one is a CA certificate the root signed (checked by
   signature, not by name). Anything else, such as a second root a machine in the middle
   slipped in, refuses the whole bundle: nothing is saved and no token is sent.

2. **For the server, only its dedicated CA.** The server's TLS certificate must come from a
   server-identity CA: a CA certificate the pinned root signed and marked with
   ``certfleet.ca.SERVER_IDENTITY_UNIT`` (the root signs only certfleet's own
   intermediates, so no issuance path can forge that mark). The TLS context's trust store
   holds those CAs and nothing else, with ``VERIFY_X509_PARTIAL_CHAIN`` so OpenSSL accepts an
   intermediate as the trust anchor, and hostname checking on. A certificate issued for the
   server's names through REST, ACME or an agent chains to the issuing CA, which is not in that
   store: the handshake fails before one byte of HTTP is sent. This is plain OpenSSL
   verification, with no post-handshake check to forget.

3. **Learning a new server-identity CA.** Such a CA proves itself (the root's signature and the
   mark), so when the handshake fails the agent re-reads the bundle (unverified, nothing
   secret sent), keeps the server-identity CAs that verify against the pinned root, and tries
   once more. That is how an agent follows a server CA roll and how one enrolled before these
   CAs existed (its ``ca.pem`` starts with the pinned root) upgrades without re-enrolling.
   Rolling the *issuing* intermediate (``ca rotate``, ``ca compromise``) changes nothing here.

Files (in the state directory)::

    ca.pem          the pinned root, then the CAs it signed (used to recognise certfleet's
                    certificates on disk)
    server-ca.pem   the server-identity CAs: the TLS trust anchors for the server
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from certfleet.agent.errors import AgentError, UntrustedServer
from certfleet.ca import is_server_identity_ca
from certfleet.errors import CertfleetError
from certfleet.fs import write_atomic
from certfleet.x509 import fingerprint_sha256, is_ca, load_certificates, signed_by, to_pem

__all__ = ["SERVER_CA_FILE", "TrustBundle", "TrustFiles", "server_ssl_context", "verify_bundle"]

SERVER_CA_FILE = "server-ca.pem"


@dataclass(frozen=True)
class TrustBundle:
    """A CA bundle that verified against the pinned root."""

    root: x509.Certificate
    intermediates: tuple[x509.Certificate, ...]  # every CA the root signed, server-identity ones too
    server_cas: tuple[x509.Certificate, ...]


def _describe(certificate: x509.Certificate) -> str:
    subject = certificate.subject.rfc4514_string() or "(empty subject)"
    return f"{subject} sha256 {fingerprint_sha256(certificate)}"


def verify_bundle(bundle: Sequence[x509.Certificate], pin: str) -> TrustBundle:
    """The bundle's trust, or :class:`UntrustedServer` if it holds anything but the pinned
    root and CA certificates that root signed (the hierarchy is root, then intermediates with
    pathLen 0, so an intermediate is always signed by the root itself)."""
    roots = [c for c in bundle if fingerprint_sha256(c) == pin]
    if not roots:
        seen = ", ".join(fingerprint_sha256(c) for c in bundle if c.issuer == c.subject) or "none"
        raise UntrustedServer(
            f"the server's root CA is not the pinned one (pinned {pin}, offered {seen}): refusing to trust it"
        )
    root = roots[0]
    if not signed_by(root, root):
        raise UntrustedServer("the pinned certificate is not a self-signed root")
    intermediates: list[x509.Certificate] = []
    foreign: list[x509.Certificate] = []
    for certificate in bundle:
        if certificate == root or certificate in intermediates:
            continue
        if is_ca(certificate) and signed_by(certificate, root):
            intermediates.append(certificate)
        else:
            foreign.append(certificate)
    if foreign:
        raise UntrustedServer(
            f"the server's CA bundle holds {len(foreign)} certificate(s) the pinned root did not sign "
            f"({'; '.join(_describe(c) for c in foreign)}): refusing to trust it, and nothing was sent "
            "(is something intercepting the connection?)"
        )
    server_cas = tuple(c for c in intermediates if is_server_identity_ca(c, root))
    return TrustBundle(root, tuple(intermediates), server_cas)


def server_ssl_context(server_cas: Sequence[x509.Certificate], identity_file: Path | None) -> ssl.SSLContext:
    """A client context that accepts the server only through ``server_cas`` (see 2 above)."""
    if not server_cas:
        raise UntrustedServer("no server-identity CA is known: run 'certfleet agent enroll' again")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verify_mode CERT_REQUIRED, check_hostname
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_verify_locations(cadata=to_pem(list(server_cas)))
    # The server-identity CA is the trust anchor; the root is deliberately not in the store,
    # or every certificate of the issuing CA would verify too.
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    if identity_file is not None:
        try:
            context.load_cert_chain(str(identity_file))
        except (OSError, ssl.SSLError) as exc:
            raise AgentError(f"cannot load the agent identity {identity_file}: {exc}") from exc
    return context


class TrustFiles:
    """``ca.pem`` and ``server-ca.pem`` of one state directory."""

    def __init__(self, ca_file: Path) -> None:
        self.ca_file = ca_file
        self.server_ca_file = ca_file.with_name(SERVER_CA_FILE)

    def root(self) -> x509.Certificate:
        """The pinned root: the first certificate of ``ca.pem`` (enrolment wrote it there,
        also before this module existed)."""
        try:
            certificates = load_certificates(self.ca_file.read_bytes())
        except (OSError, CertfleetError) as exc:
            raise UntrustedServer(
                f"cannot read the pinned root {self.ca_file}: {exc}: run 'certfleet agent enroll' again"
            ) from exc
        root = certificates[0]
        if not signed_by(root, root):
            raise UntrustedServer(
                f"{self.ca_file} does not start with a self-signed root: run 'certfleet agent enroll' again"
            )
        return root

    def server_cas(self, root: x509.Certificate) -> tuple[x509.Certificate, ...]:
        try:
            certificates = load_certificates(self.server_ca_file.read_bytes())
        except (OSError, CertfleetError):
            return ()
        return tuple(c for c in certificates if is_server_identity_ca(c, root))

    def save(self, bundle: TrustBundle) -> None:
        write_atomic(self.ca_file, to_pem([bundle.root, *bundle.intermediates]).encode(), mode=0o644)
        self.save_server_cas(bundle.server_cas)

    def save_server_cas(self, server_cas: Sequence[x509.Certificate]) -> None:
        write_atomic(self.server_ca_file, to_pem(list(server_cas)).encode(), mode=0o644)
