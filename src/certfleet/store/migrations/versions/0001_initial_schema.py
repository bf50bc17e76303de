"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("team", sa.String(length=100), nullable=False),
        sa.Column("scope", sa.String(length=20), nullable=False),
        sa.Column("allow_names_json", sa.Text(), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("id"),
    )
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=100), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("details_json", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_log_action"), ["action"], unique=False)

    op.create_table(
        "certificate_authorities",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("parent_id", sa.String(length=32), nullable=True),
        sa.Column("certificate_der", sa.LargeBinary(), nullable=False),
        sa.Column("key_backend", sa.String(length=40), nullable=False),
        sa.Column("key_ref", sa.String(length=200), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["certificate_authorities.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "certificates",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("serial", sa.String(length=42), nullable=False),
        sa.Column("fingerprint_sha256", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("common_name", sa.Text(), nullable=True),
        sa.Column("sans_json", sa.Text(), nullable=False),
        sa.Column("issuer", sa.Text(), nullable=False),
        sa.Column("issuer_ca_id", sa.String(length=32), nullable=True),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=False),
        sa.Column("not_after", sa.DateTime(timezone=True), nullable=False),
        sa.Column("key_algorithm", sa.String(length=20), nullable=False),
        sa.Column("key_size", sa.Integer(), nullable=False),
        sa.Column("signature_algorithm", sa.String(length=60), nullable=False),
        sa.Column("profile", sa.String(length=60), nullable=True),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("team", sa.String(length=100), nullable=True),
        sa.Column("tags_json", sa.Text(), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revocation_reason", sa.String(length=40), nullable=True),
        sa.Column("der", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("fingerprint_sha256"),
    )
    with op.batch_alter_table("certificates", schema=None) as batch_op:
        batch_op.create_index("ix_certificates_issuer", ["issuer"], unique=False)
        batch_op.create_index(batch_op.f("ix_certificates_issuer_ca_id"), ["issuer_ca_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_certificates_not_after"), ["not_after"], unique=False)
        batch_op.create_index(batch_op.f("ix_certificates_serial"), ["serial"], unique=False)
        batch_op.create_index("ix_certificates_status_not_after", ["status", "not_after"], unique=False)
        batch_op.create_index("ix_certificates_status_id", ["status", "id"], unique=False)
        batch_op.create_index("ix_certificates_team_id", ["team", "id"], unique=False)

    op.create_table(
        "certificate_names",
        sa.Column("certificate_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(["certificate_id"], ["certificates.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("certificate_id", "name"),
    )
    with op.batch_alter_table("certificate_names", schema=None) as batch_op:
        batch_op.create_index("ix_certificate_names_name", ["name"], unique=False)

    op.create_table(
        "serials",
        sa.Column("serial", sa.String(length=42), nullable=False),
        sa.Column("issuer_ca_id", sa.String(length=32), nullable=False),
        sa.Column("reserved_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("fingerprint_sha256", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["issuer_ca_id"],
            ["certificate_authorities.id"],
        ),
        sa.PrimaryKeyConstraint("serial"),
    )


def downgrade() -> None:

    op.drop_table("serials")
    with op.batch_alter_table("certificate_names", schema=None) as batch_op:
        batch_op.drop_index("ix_certificate_names_name")

    op.drop_table("certificate_names")
    with op.batch_alter_table("certificates", schema=None) as batch_op:
        batch_op.drop_index("ix_certificates_team_id")
        batch_op.drop_index("ix_certificates_status_id")
        batch_op.drop_index("ix_certificates_status_not_after")
        batch_op.drop_index(batch_op.f("ix_certificates_serial"))
        batch_op.drop_index(batch_op.f("ix_certificates_not_after"))
        batch_op.drop_index(batch_op.f("ix_certificates_issuer_ca_id"))
        batch_op.drop_index("ix_certificates_issuer")

    op.drop_table("certificates")
    op.drop_table("certificate_authorities")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_log_action"))

    op.drop_table("audit_log")
    op.drop_table("audit_head")
    op.drop_table("api_tokens")
