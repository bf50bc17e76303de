"""tls-alpn-01 (RFC 8737): a self-signed certificate presented for ALPN ``acme-tls/1`` with
the name as its only SAN and a critical ``acmeIdentifier`` extension holding
SHA-256(key authorization).

As for http-01, each resolved address is checked against the :class:`NetworkPolicy` and then
connected to as that very address; a failure never quotes what the peer presented.
"""

from __future__ import annotations

import hashlib
import ipaddress
import socket
import ssl

from cryptography import x509
from cryptography.x509.oid import ObjectIdentifier

from certfleet.protocols.acme.identifiers import Identifier, reverse_dns_name
from certfleet.protocols.acme.networks import NetworkPolicy
from certfleet.protocols.acme.problems import AcmeProblem
from certfleet.protocols.acme.resolver import Question, Resolver, address_questions

__all__ = ["ACME_IDENTIFIER_OID", "ALPN_PROTOCOL", "TlsAlpn01Validator", "expected_extension_value"]

ALPN_PROTOCOL = "acme-tls/1"
ACME_IDENTIFIER_OID = ObjectIdentifier("1.3.6.1.5.5.7.1.31")


def expected_extension_value(key_authorization: str) -> bytes:
    """The extension's DER: an OCTET STRING (tag 4, length 32) of the digest (RFC 8737 3)."""
    return b"\x04\x20" + hashlib.sha256(key_authorization.encode()).digest()


class TlsAlpn01Validator:
    def __init__(
        self, resolver: Resolver, port: int, timeout_seconds: float, networks: NetworkPolicy
    ) -> None:
        self._resolver = resolver
        self._port = port
        self._timeout = timeout_seconds
        self._networks = networks

    def _fetch(self, address: str, server_name: str) -> tuple[bytes, str | None]:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        # The certificate is self-signed by design: it is checked below, not by a trust store.
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.set_alpn_protocols([ALPN_PROTOCOL])
        with (
            socket.create_connection((address, self._port), timeout=self._timeout) as raw,
            context.wrap_socket(raw, server_hostname=server_name) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
            return der or b"", tls.selected_alpn_protocol()

    def questions(self, identifier: Identifier) -> list[Question]:
        return address_questions(identifier.value) if identifier.type == "dns" else []

    def validate(self, identifier: Identifier, token: str, key_authorization: str) -> None:
        if identifier.type == "ip":
            addresses: list[str] = [identifier.value]
            server_name = reverse_dns_name(identifier.value).rstrip(".")
        else:
            addresses = list(self._resolver.addresses(identifier.value))
            server_name = identifier.value
        last: AcmeProblem | None = None
        for address in addresses:
            try:
                self._networks.check(address, identifier.value)
            except AcmeProblem as denied:
                last = denied
                continue
            try:
                der, alpn = self._fetch(address, server_name)
            except ssl.SSLError as exc:
                raise AcmeProblem(
                    "tls", f"TLS handshake with {address}:{self._port} failed: {exc.reason}"
                ) from exc
            except OSError as exc:
                last = AcmeProblem(
                    "connection", f"cannot connect to {address}:{self._port} for {identifier.value}: {exc}"
                )
                continue
            if alpn != ALPN_PROTOCOL:
                raise AcmeProblem("tls", f"{address}:{self._port} did not negotiate ALPN {ALPN_PROTOCOL}")
            self._check_certificate(der, identifier, key_authorization)
            return
        assert last is not None
        raise last

    @staticmethod
    def _check_certificate(der: bytes, identifier: Identifier, key_authorization: str) -> None:
        try:
            cert = x509.load_der_x509_certificate(der)
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except (ValueError, x509.ExtensionNotFound) as exc:
            raise AcmeProblem("incorrectResponse", "tls-alpn-01 certificate has no usable SAN") from exc
        dns_names = san.get_values_for_type(x509.DNSName)
        ips = san.get_values_for_type(x509.IPAddress)
        if identifier.type == "ip":
            ok = not dns_names and ips == [ipaddress.ip_address(identifier.value)]
        else:
            ok = not ips and [n.lower() for n in dns_names] == [identifier.value]
        if not ok or len(san) != 1:
            raise AcmeProblem(
                "incorrectResponse", f"tls-alpn-01 certificate must name exactly {identifier.value}"
            )
        try:
            ext = cert.extensions.get_extension_for_oid(ACME_IDENTIFIER_OID)
        except x509.ExtensionNotFound as exc:
            raise AcmeProblem("incorrectResponse", "tls-alpn-01 certificate lacks acmeIdentifier") from exc
        if not ext.critical:
            raise AcmeProblem("incorrectResponse", "tls-alpn-01 acmeIdentifier extension must be critical")
        value = ext.value.value if isinstance(ext.value, x509.UnrecognizedExtension) else b""
        if value != expected_extension_value(key_authorization):
            raise AcmeProblem(
                "incorrectResponse", "tls-alpn-01 acmeIdentifier does not match the key authorization"
            )
