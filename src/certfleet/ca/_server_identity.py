"""The server-identity CA: a second intermediate under the root that signs only the HTTPS
listener's own certificate.

Agents must not trust "any certificate certfleet issued for the server's name": whoever may
obtain one (an ACME account, a token with a broad pattern) could then impersonate the server.
So the listener's certificate comes from a CA no issuance path can select (its role is not
``"intermediate"``, and only ``ensure_server_identity`` signs with it), and agents accept the
server only through a CA that carries this role.

The role is carried by a certificate policy OID in the CA certificate itself. Only the root's
key signs CA certificates, and the root signs nothing but certfleet's own intermediates, so a
CA certificate that verifies against the pinned root *and* names this policy can only be a
server-identity CA: no leaf can forge it (a leaf is not a CA and is not signed by the root).
"""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import CertificatePoliciesOID, ExtendedKeyUsageOID, NameOID, ObjectIdentifier

from certfleet.ca._hierarchy import CaUrls, intermediate_builder
from certfleet.x509 import signature_hash_for

__all__ = [
    "SERVER_IDENTITY_POLICY",
    "SERVER_IDENTITY_ROLE",
    "build_server_identity_ca",
    "is_server_identity_ca",
]

SERVER_IDENTITY_ROLE = "server-identity"
# A UUID-derived OID (ITU-T X.667, the 2.25 arc needs no registration): "certfleet server
# identity CA". It appears in no profile and no other certificate certfleet makes.
SERVER_IDENTITY_POLICY = ObjectIdentifier("2.25.171574353659219859197109312708059038907")


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
    with :data:`SERVER_IDENTITY_POLICY` and limited to serverAuth: OpenSSL also applies a CA's
    extendedKeyUsage to the chain, so nothing it signs works as a client certificate."""
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ca_name),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{ca_name} Server Identity CA {generation}"),
        ]
    )
    builder = (
        intermediate_builder(subject, key, root, root_id, urls, now)
        .add_extension(
            # anyPolicy too: the leaves it signs keep their own policies (the CA/B DV one).
            x509.CertificatePolicies(
                [
                    x509.PolicyInformation(SERVER_IDENTITY_POLICY, None),
                    x509.PolicyInformation(CertificatePoliciesOID.ANY_POLICY, None),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    )
    return builder.sign(root_key, signature_hash_for(root_key))  # type: ignore[arg-type]


def is_server_identity_ca(certificate: x509.Certificate, root: x509.Certificate) -> bool:
    """True when ``certificate`` is a CA signed by ``root`` and marked as a server-identity
    CA. Validity dates are not checked here: the TLS handshake checks them."""
    if certificate == root:
        return False
    try:
        certificate.verify_directly_issued_by(root)
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
        policies = certificate.extensions.get_extension_for_class(x509.CertificatePolicies).value
    except (ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound):
        return False
    return constraints.ca and any(p.policy_identifier == SERVER_IDENTITY_POLICY for p in policies)
