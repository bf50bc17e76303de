"""Parallel CA hierarchies (issue 17): which root and issuing CA serve a profile.

A data directory starts with one hierarchy (``certfleet init``); ``certfleet ca create`` adds
another beside it, with its own root and issuing CA, so classic and post-quantum chains
coexist during a migration. The first hierarchy stays the default: every profile that does
not choose a CA, ``ca rotate`` and the chain handed to enrolling devices keep using it.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.x509.oid import NameOID

from certfleet.ca import CaCertificate, Profile
from certfleet.errors import Conflict
from certfleet.x509 import describe_public_key

__all__ = ["default_root", "hierarchy_name", "issuer_under", "root_for_profile"]


def hierarchy_name(root: CaCertificate) -> str:
    """The name given to ``init --ca-name`` or ``ca create --name``: the root's organisation."""
    organization = root.certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    return str(organization[0].value) if organization else root.name.removesuffix(" Root CA")


def _roots(cas: Sequence[CaCertificate]) -> list[CaCertificate]:
    # Oldest first: ``create_hierarchy`` makes each new root start strictly after the others.
    return sorted((ca for ca in cas if ca.role == "root" and ca.active), key=lambda ca: ca.not_before)


def default_root(cas: Sequence[CaCertificate]) -> CaCertificate | None:
    roots = _roots(cas)
    return roots[0] if roots else None


def issuer_under(cas: Sequence[CaCertificate], root: CaCertificate) -> CaCertificate | None:
    """The newest active issuing intermediate of ``root``'s hierarchy."""
    issuers = [ca for ca in cas if ca.role == "intermediate" and ca.active and ca.parent_id == root.id]
    return max(issuers, key=lambda ca: ca.not_before, default=None)


def root_for_profile(cas: Sequence[CaCertificate], profile: Profile) -> CaCertificate | None:
    """The root of the hierarchy ``profile`` issues from; None for the default hierarchy.
    Raises :class:`Conflict` naming the command that creates the hierarchy it needs."""
    if profile.ca is None and profile.ca_key_type is None:
        return None
    roots = _roots(cas)
    if profile.ca is not None:
        by_id = {ca.id: ca for ca in cas}
        wanted = by_id.get(profile.ca)
        if wanted is not None and wanted.role == "intermediate":
            wanted = by_id.get(wanted.parent_id or "")
        for root in roots:
            if root is wanted or profile.ca in (hierarchy_name(root), root.name):
                return root
        raise Conflict(f"profile {profile.name} issues from CA {profile.ca!r}, which does not exist")
    for root in roots:
        issuer = issuer_under(cas, root)
        if (
            issuer is not None
            and describe_public_key(issuer.certificate.public_key()).label == profile.ca_key_type
        ):
            return root
    raise Conflict(
        f"profile {profile.name} issues from an {profile.ca_key_type} CA and there is none: create one "
        f"with 'certfleet ca create --key-type {profile.ca_key_type} --name NAME'"
    )
