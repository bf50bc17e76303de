"""trust stores: where each trusted root is trusted (host, store kind, store path)

Revision ID: 0027_trust_stores
Revises: 0003_discovery
Create Date: 2026-12-03

A trusted root is an inventory certificate like any other; ``trust_anchor_locations`` says
which stores on which hosts trust it. Like ``certificate_locations``, a row is never deleted:
a root taken out of a store gets ``gone_at`` when the store is read again. ``key_sha256``
(certificate, host, kind, path) and ``place_sha256`` (host, kind, path) key the rows: a
store path may be longer than a PostgreSQL b-tree entry allows.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0027_trust_stores"
down_revision = "0003_discovery"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "trust_anchor_locations",
        sa.Column("id", _ID, nullable=False),
        sa.Column("key_sha256", sa.String(length=64), nullable=False),
        sa.Column("place_sha256", sa.String(length=64), nullable=False),
        sa.Column("certificate_id", _ID, nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("store_kind", sa.String(length=16), nullable=False),
        sa.Column("store_path", sa.Text(), nullable=False),
        sa.Column("first_seen", _WHEN, nullable=False),
        sa.Column("last_seen", _WHEN, nullable=False),
        sa.Column("gone_at", _WHEN, nullable=True),
        sa.ForeignKeyConstraint(["certificate_id"], ["certificates.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key_sha256"),
    )
    op.create_index("ix_trust_anchor_locations_place_sha256", "trust_anchor_locations", ["place_sha256"])
    op.create_index("ix_trust_anchor_locations_certificate_id", "trust_anchor_locations", ["certificate_id"])


def downgrade() -> None:
    op.drop_index("ix_trust_anchor_locations_certificate_id", table_name="trust_anchor_locations")
    op.drop_index("ix_trust_anchor_locations_place_sha256", table_name="trust_anchor_locations")
    op.drop_table("trust_anchor_locations")
