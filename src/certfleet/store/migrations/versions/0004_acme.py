"""ACME server: accounts, EAB keys, nonces, orders, authorizations, challenges, ARI overrides

Revision ID: 0004_acme
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_acme"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "acme_nonces",
        sa.Column("value", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("value"),
    )
    op.create_index("ix_acme_nonces_expires_at", "acme_nonces", ["expires_at"])
    op.create_table(
        "acme_accounts",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("thumbprint", sa.String(length=64), nullable=False),
        sa.Column("jwk_json", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("contacts_json", sa.Text(), nullable=False),
        sa.Column("tos_agreed", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("eab_kid", sa.String(length=64), nullable=True),
        sa.Column("team", sa.String(length=100), nullable=True),
        sa.Column("allow_names_json", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("thumbprint"),
    )
    op.create_table(
        "acme_eab_keys",
        sa.Column("kid", sa.String(length=64), nullable=False),
        sa.Column("hmac_key", sa.LargeBinary(), nullable=False),
        sa.Column("team", sa.String(length=100), nullable=False),
        sa.Column("allow_names_json", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("account_id", sa.String(length=32), nullable=True),
        sa.Column("bound_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("kid"),
    )
    op.create_table(
        "acme_authorizations",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.String(length=32), nullable=False),
        sa.Column("identifier_type", sa.String(length=8), nullable=False),
        sa.Column("identifier_value", sa.String(length=255), nullable=False),
        sa.Column("wildcard", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("validated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("caa_checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["account_id"], ["acme_accounts.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_acme_authorizations_reuse", "acme_authorizations", ["account_id", "identifier_value", "status"]
    )
    op.create_table(
        "acme_challenges",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("authz_id", sa.String(length=32), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("validated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error_json", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["authz_id"], ["acme_authorizations.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_acme_challenges_authz_id", "acme_challenges", ["authz_id"])
    op.create_table(
        "acme_orders",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("identifiers_json", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("profile", sa.String(length=60), nullable=False),
        sa.Column("replaces", sa.String(length=200), nullable=True),
        sa.Column("error_json", sa.Text(), nullable=True),
        sa.Column("certificate_serial", sa.String(length=42), nullable=True),
        sa.Column("certificate_chain", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["account_id"], ["acme_accounts.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_acme_orders_account_created", "acme_orders", ["account_id", "created_at"])
    op.create_index("ix_acme_orders_replaces", "acme_orders", ["replaces"])
    op.create_index("ix_acme_orders_certificate_serial", "acme_orders", ["certificate_serial"])
    op.create_table(
        "acme_order_authorizations",
        sa.Column("order_id", sa.String(length=32), nullable=False),
        sa.Column("authz_id", sa.String(length=32), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["acme_orders.id"]),
        sa.ForeignKeyConstraint(["authz_id"], ["acme_authorizations.id"]),
        sa.PrimaryKeyConstraint("order_id", "authz_id"),
    )
    op.create_index("ix_acme_order_authorizations_authz_id", "acme_order_authorizations", ["authz_id"])
    op.create_table(
        "acme_renewal_overrides",
        sa.Column("serial", sa.String(length=42), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("serial"),
    )


def downgrade() -> None:
    op.drop_table("acme_renewal_overrides")
    op.drop_index("ix_acme_order_authorizations_authz_id", table_name="acme_order_authorizations")
    op.drop_table("acme_order_authorizations")
    op.drop_index("ix_acme_orders_certificate_serial", table_name="acme_orders")
    op.drop_index("ix_acme_orders_replaces", table_name="acme_orders")
    op.drop_index("ix_acme_orders_account_created", table_name="acme_orders")
    op.drop_table("acme_orders")
    op.drop_index("ix_acme_challenges_authz_id", table_name="acme_challenges")
    op.drop_table("acme_challenges")
    op.drop_index("ix_acme_authorizations_reuse", table_name="acme_authorizations")
    op.drop_table("acme_authorizations")
    op.drop_table("acme_eab_keys")
    op.drop_table("acme_accounts")
    op.drop_index("ix_acme_nonces_expires_at", table_name="acme_nonces")
    op.drop_table("acme_nonces")
