"""revocation: revocations, CRL state and CRLs, OCSP responses and responders, blocked keys

Revision ID: 0002_revocation
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_revocation"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "revocations",
        sa.Column("serial", sa.String(length=42), nullable=False),
        sa.Column("issuer_ca_id", sa.String(length=32), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=False),
        sa.Column("invalidity_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["serial"], ["serials.serial"]),
        sa.ForeignKeyConstraint(["issuer_ca_id"], ["certificate_authorities.id"]),
        sa.PrimaryKeyConstraint("serial"),
    )
    op.create_index("ix_revocations_issuer_seq", "revocations", ["issuer_ca_id", "seq"])
    op.create_index("ix_revocations_issuer_expires", "revocations", ["issuer_ca_id", "expires_at"])
    op.create_table(
        "crl_state",
        sa.Column("ca_id", sa.String(length=32), nullable=False),
        sa.Column("revocation_seq", sa.BigInteger(), nullable=False),
        sa.Column("last_number", sa.BigInteger(), nullable=False),
        sa.Column("base_number", sa.BigInteger(), nullable=True),
        sa.Column("base_seq", sa.BigInteger(), nullable=False),
        sa.Column("base_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["ca_id"], ["certificate_authorities.id"]),
        sa.PrimaryKeyConstraint("ca_id"),
    )
    op.create_table(
        "crls",
        sa.Column("ca_id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("number", sa.BigInteger(), nullable=False),
        sa.Column("this_update", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_update", sa.DateTime(timezone=True), nullable=False),
        sa.Column("covered_seq", sa.BigInteger(), nullable=False),
        sa.Column("base_number", sa.BigInteger(), nullable=True),
        sa.Column("der", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["ca_id"], ["certificate_authorities.id"]),
        sa.PrimaryKeyConstraint("ca_id", "kind"),
    )
    op.create_table(
        "ocsp_responses",
        sa.Column("ca_id", sa.String(length=32), nullable=False),
        sa.Column("serial", sa.String(length=42), nullable=False),
        sa.Column("hash_algorithm", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("this_update", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_update", sa.DateTime(timezone=True), nullable=False),
        sa.Column("der", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["ca_id"], ["certificate_authorities.id"]),
        sa.PrimaryKeyConstraint("ca_id", "serial", "hash_algorithm"),
    )
    op.create_index("ix_ocsp_responses_serial", "ocsp_responses", ["serial"])
    op.create_index("ix_ocsp_responses_ca_this_update", "ocsp_responses", ["ca_id", "this_update"])
    op.create_table(
        "ocsp_responders",
        sa.Column("key_ref", sa.String(length=200), nullable=False),
        sa.Column("ca_id", sa.String(length=32), nullable=False),
        sa.Column("certificate_der", sa.LargeBinary(), nullable=False),
        sa.Column("not_after", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["ca_id"], ["certificate_authorities.id"]),
        sa.PrimaryKeyConstraint("key_ref"),
    )
    op.create_index("ix_ocsp_responders_ca_id", "ocsp_responders", ["ca_id"])
    op.create_table(
        "blocked_keys",
        sa.Column("spki_sha256", sa.String(length=64), nullable=False),
        sa.Column("serial", sa.String(length=42), nullable=False),
        sa.Column("blocked_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("spki_sha256"),
    )


def downgrade() -> None:
    op.drop_table("blocked_keys")
    op.drop_index("ix_ocsp_responders_ca_id", table_name="ocsp_responders")
    op.drop_table("ocsp_responders")
    op.drop_index("ix_ocsp_responses_ca_this_update", table_name="ocsp_responses")
    op.drop_index("ix_ocsp_responses_serial", table_name="ocsp_responses")
    op.drop_table("ocsp_responses")
    op.drop_table("crls")
    op.drop_table("crl_state")
    op.drop_index("ix_revocations_issuer_expires", table_name="revocations")
    op.drop_index("ix_revocations_issuer_seq", table_name="revocations")
    op.drop_table("revocations")
