"""The SPIFFE issuing CA: an intermediate under the root that signs only X509-SVIDs.

A dedicated CA, not the issuing one, so a trust domain's relying parties can trust exactly
the SVIDs (a workload that trusts the SPIFFE bundle does not thereby trust every TLS server
certificate certfleet issued), and so revoking or rotating workload identity touches no other
certificate. Its role (:data:`SPIFFE_ROLE`) is not ``"intermediate"``, so no other issuance
path (REST, ACME, agents, renewal) can select it.

X509-SVID section 4 lets a signing certificate carry URI name constraints for its trust
domain: this one does (permitted subtree: the trust domain's host name, RFC 5280 4.2.1.10),
so even a mis-issued leaf from this CA cannot claim another trust domain's identity to a
relying party that checks constraints.
"""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from certfleet.ca._hierarchy import CaUrls, intermediate_builder
from certfleet.x509.signing import sign_certificate

__all__ = ["SPIFFE_ROLE", "build_spiffe_ca"]

SPIFFE_ROLE = "spiffe"


def build_spiffe_ca(
    ca_name: str,
    trust_domain: str,
    key: CertificateIssuerPrivateKeyTypes,
    root: x509.Certificate,
    root_key: CertificateIssuerPrivateKeyTypes,
    root_id: str,
    urls: CaUrls,
    now: dt.datetime,
    generation: int = 1,
) -> x509.Certificate:
    """An intermediate like the issuing one (pathLen 0, the root's CRL and issuer URLs),
    limited to the trust domain's URIs and to TLS server and client use (mutual TLS)."""
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ca_name),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{ca_name} SPIFFE CA {generation}"),
        ]
    )
    builder = (
        intermediate_builder(subject, key, root, root_id, urls, now)
        .add_extension(
            x509.NameConstraints(
                permitted_subtrees=[x509.UniformResourceIdentifier(trust_domain)], excluded_subtrees=None
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
    )
    return sign_certificate(builder, root_key)
