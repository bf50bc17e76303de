"""spiffe: trust domain, registration entries, live SVIDs per entry, JWT signing keys

Revision ID: 0022_spiffe
Revises: 0001
Create Date: 2026-12-03

``spiffe_config`` is one row (id 1): the trust domain, the entries' revision (grows with every
change of the entry set, so an agent knows when to refetch) and the bundle's
``spiffe_sequence``. ``spiffe_entries`` holds the registration entries; each points at its
one inventory record (``certificate_id``: the live SVID, replaced at each issuance) and counts
what it issued. ``spiffe_svids`` keeps the serials of the SVIDs still valid, per entry, so an
entry's SVIDs can be counted and revoked without one inventory row per SVID; expired ones are
pruned as new ones are recorded. ``spiffe_jwt_keys`` lists the JWT signing keys (the private
key lives, encrypted, in the key backend: ``key_ref``) with their signing and publishing
windows.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022_spiffe"
down_revision = "0001"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "spiffe_config",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("trust_domain", sa.String(255), nullable=False),
        sa.Column("entries_revision", sa.BigInteger(), nullable=False),
        sa.Column("bundle_sequence", sa.BigInteger(), nullable=False),
        sa.Column("created_at", _WHEN, nullable=False),
    )
    op.create_table(
        "spiffe_entries",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("fingerprint", sa.String(64), nullable=False, unique=True),
        sa.Column("spiffe_id", sa.Text(), nullable=False),
        sa.Column("parent_id", sa.String(300), nullable=False, index=True),
        sa.Column("selectors_json", sa.Text(), nullable=False),
        sa.Column("ttl_seconds", sa.Integer(), nullable=False),
        sa.Column("dns_names_json", sa.Text(), nullable=False),
        sa.Column("team", sa.String(100), nullable=True),
        sa.Column("created_at", _WHEN, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column(
            "certificate_id",
            _ID,
            sa.ForeignKey("certificates.id", ondelete="SET NULL"),
            nullable=True,
            index=True,  # each replaced record's delete looks its entry up (ON DELETE SET NULL)
        ),
        sa.Column("svids_issued", sa.BigInteger(), nullable=False),
        sa.Column("last_issued_at", _WHEN, nullable=True),
    )
    op.create_table(
        "spiffe_svids",
        sa.Column("serial", sa.String(42), primary_key=True),
        sa.Column("entry_id", sa.String(32), nullable=False, index=True),
        sa.Column("issued_at", _WHEN, nullable=False),
        sa.Column("not_after", _WHEN, nullable=False, index=True),
    )
    op.create_table(
        "spiffe_jwt_keys",
        sa.Column("kid", sa.String(64), primary_key=True),
        sa.Column("generation", sa.Integer(), nullable=False, unique=True),
        sa.Column("key_ref", sa.String(200), nullable=False),
        sa.Column("public_pem", sa.Text(), nullable=False),
        sa.Column("created_at", _WHEN, nullable=False),
        sa.Column("active_from", _WHEN, nullable=False),
        sa.Column("retire_at", _WHEN, nullable=False),
        sa.Column("publish_until", _WHEN, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("spiffe_jwt_keys")
    op.drop_table("spiffe_svids")
    op.drop_table("spiffe_entries")
    op.drop_table("spiffe_config")
