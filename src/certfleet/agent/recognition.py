"""Whether a deployed certificate is certfleet's: signed by a CA the agent trusts for that.

Those CAs are the enrolment bundle's (``STATE/ca.pem``: the pinned root and the CAs it
signed) and the other roots of certfleet the agent learned over the authenticated channel
(``STATE/trust-anchors.pem``, see trust_anchors.py), such as a post-quantum hierarchy made by
``certfleet ca create --key-type ml-dsa-65``. The unauthenticated bundle never adds a root
(trust.py), so a certificate under a root only it named is not certfleet's.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography import x509

from certfleet.x509 import signed_by

__all__ = ["issued_by_certfleet"]


def issued_by_certfleet(
    certificate: x509.Certificate, chain: Sequence[x509.Certificate], known: Sequence[x509.Certificate]
) -> bool:
    """Signed by a ``known`` CA, or by the first CA of its own chain when that one is (an
    issuing CA made after enrolment, as by a CA rotation, a compromise or a new hierarchy)."""
    if any(signed_by(certificate, ca) for ca in known):
        return True
    issuer = chain[0] if chain else None
    return (
        issuer is not None and signed_by(certificate, issuer) and any(signed_by(issuer, ca) for ca in known)
    )
