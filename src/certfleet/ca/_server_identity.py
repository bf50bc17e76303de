"""The server-identity CA: a second intermediate under the root that signs only the HTTPS
listener's own certificate.

Agents must not trust "any certificate certfleet issued for the server's name": whoever may
obtain one (an ACME account, a token with a broad pattern) could then impersonate the server.
So the listener's certificate comes from a CA no issuance path can select (its role is not
``"intermediate"``, and only ``ensure_server_identity`` signs with it), and agents accept the
server only through a CA that carries this role.

The role is carried by the CA certificate's own subject: an organizationalUnitName of
:data:`SERVER_IDENTITY_UNIT`. Only the root's key signs CA certificates, and the root signs
nothing but certfleet's own intermediates, so a CA certificate that verifies against the
pinned root *and* carries this unit can only be a server-identity CA: no leaf can forge it (a
leaf is not a CA and is not signed by the root).

Why not a private certificate-policy OID: an unregistered OID has to live under the UUID arc
(2.25.<128-bit integer>), and Go before 1.22 (lego, Debian's pebble) refuses to parse any
certificate with an OID arc over 31 bits ("x509: invalid certificate policies"), so every Go
client would refuse the listener. A standard name attribute parses everywhere.

When the default root's key is one the TLS stack cannot use (ML-DSA: Debian 12's OpenSSL 3.0,
hence Python's ssl, uvicorn, agents and curl, refuses a chain holding its signature with
``CA_MD_TOO_WEAK``), the server-identity CA hangs under a classic EC P-256 *listener root*
instead (role :data:`LISTENER_ROOT_ROLE`, named "<name> TLS Root CA"): the root agents and
``certfleet login`` pin. It signs server-identity CAs and nothing else, is never a profile's
root, and the ML-DSA root reaches agents over the authenticated channel (trust anchors). For
the same reason agents' own mTLS identities then come from a clientAuth-only CA under that root
(role :data:`AGENT_IDENTITY_ROLE`), not from the ML-DSA issuing CA.
"""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from certfleet.ca._hierarchy import CaUrls, intermediate_builder
from certfleet.x509 import describe_public_key, is_ca, signed_by
from certfleet.x509.keys import ML_DSA_SIZES
from certfleet.x509.signing import sign_certificate

__all__ = [
    "AGENT_IDENTITY_ROLE",
    "LISTENER_ROOT_ROLE",
    "SERVER_IDENTITY_ROLE",
    "SERVER_IDENTITY_UNIT",
    "build_agent_identity_ca",
    "build_server_identity_ca",
    "is_server_identity_ca",
    "listener_root_name",
    "tls_stack_can_use",
]

SERVER_IDENTITY_ROLE = "server-identity"
# The organizationalUnitName that marks a server-identity CA; no other CA certfleet makes has
# an OU at all.
SERVER_IDENTITY_UNIT = "certfleet server identity"
# A classic root that signs only server-identity CAs, made when the default root's key cannot
# sign for the TLS stack (see the module docstring).
LISTENER_ROOT_ROLE = "tls-root"
AGENT_IDENTITY_ROLE = "agent-identity"


def tls_stack_can_use(root: x509.Certificate) -> bool:
    """False when OpenSSL 3.0 cannot load a chain signed by ``root``'s key (ML-DSA)."""
    return describe_public_key(root.public_key()).label not in ML_DSA_SIZES


def listener_root_name(ca_name: str) -> str:
    """The ``ca_name`` :func:`build_root` takes for the listener root: its subject becomes
    O=<name> TLS, CN=<name> TLS Root CA, never the name of a profile's hierarchy."""
    return f"{ca_name} TLS"


def build_server_identity_ca(
    ca_name: str,
    key: CertificateIssuerPrivateKeyTypes,
    root: x509.Certificate,
    root_key: CertificateIssuerPrivateKeyTypes,
    root_id: str,
    urls: CaUrls,
    now: dt.datetime,
    generation: int = 1,
) -> x509.Certificate:
    """An intermediate like the issuing one (pathLen 0, same URLs), named for its role, marked
    with :data:`SERVER_IDENTITY_UNIT` and limited to serverAuth: OpenSSL also applies a CA's
    extendedKeyUsage to the chain, so nothing it signs works as a client certificate."""
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ca_name),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, SERVER_IDENTITY_UNIT),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{ca_name} Server Identity CA {generation}"),
        ]
    )
    builder = intermediate_builder(subject, key, root, root_id, urls, now).add_extension(
        x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
    )
    return sign_certificate(builder, root_key)


def build_agent_identity_ca(
    ca_name: str,
    key: CertificateIssuerPrivateKeyTypes,
    root: x509.Certificate,
    root_key: CertificateIssuerPrivateKeyTypes,
    root_id: str,
    urls: CaUrls,
    now: dt.datetime,
    generation: int = 1,
) -> x509.Certificate:
    """The agents' identity CA under a listener root: no server-identity mark and limited to
    clientAuth, so nothing it signs can pass as the server."""
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ca_name),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{ca_name} Agent Identity CA {generation}"),
        ]
    )
    builder = intermediate_builder(subject, key, root, root_id, urls, now).add_extension(
        x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
    )
    return sign_certificate(builder, root_key)


def is_server_identity_ca(certificate: x509.Certificate, root: x509.Certificate) -> bool:
    """True when ``certificate`` is a CA signed by ``root`` and marked as a server-identity
    CA. Validity dates are not checked here: the TLS handshake checks them."""
    if certificate == root:
        return False
    if not (signed_by(certificate, root) and is_ca(certificate)):
        return False
    units = certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
    return any(unit.value == SERVER_IDENTITY_UNIT for unit in units)
