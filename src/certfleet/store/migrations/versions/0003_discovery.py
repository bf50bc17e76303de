"""discovery: scan runs and their errors, certificate locations, findings

Revision ID: 0003_discovery
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_discovery"
down_revision = "0001"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "scan_runs",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("targets_json", sa.Text(), nullable=False),
        sa.Column("options_json", sa.Text(), nullable=False),
        sa.Column("team", sa.String(length=100), nullable=True),
        sa.Column("requested_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("targets_total", sa.Integer(), nullable=False),
        sa.Column("succeeded", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("certificates_found", sa.Integer(), nullable=False),
        sa.Column("certificates_new", sa.Integer(), nullable=False),
        sa.Column("findings", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_scan_runs_created_at", "scan_runs", ["created_at"])
    op.create_table(
        "scan_errors",
        sa.Column("id", _ID, nullable=False),
        sa.Column("scan_id", sa.String(length=32), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("sni", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["scan_id"], ["scan_runs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_scan_errors_scan_id", "scan_errors", ["scan_id"])
    op.create_table(
        "certificate_locations",
        sa.Column("id", _ID, nullable=False),
        sa.Column("key_sha256", sa.String(length=64), nullable=False),
        sa.Column("place_sha256", sa.String(length=64), nullable=False),
        sa.Column("certificate_id", _ID, nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("location", sa.Text(), nullable=False),
        sa.Column("sni", sa.String(length=255), nullable=False),
        sa.Column("chain_position", sa.Integer(), nullable=False),
        sa.Column("leaf", sa.Boolean(), nullable=False),
        sa.Column("spki_sha256", sa.String(length=64), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("gone_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_scan_id", sa.String(length=32), nullable=True),
        sa.Column("tls_version", sa.String(length=16), nullable=True),
        sa.Column("cipher", sa.String(length=100), nullable=True),
        sa.ForeignKeyConstraint(["certificate_id"], ["certificates.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key_sha256"),
    )
    op.create_index("ix_certificate_locations_place_sha256", "certificate_locations", ["place_sha256"])
    op.create_index("ix_certificate_locations_certificate_id", "certificate_locations", ["certificate_id"])
    op.create_index("ix_certificate_locations_spki_sha256", "certificate_locations", ["spki_sha256"])
    op.create_table(
        "findings",
        sa.Column("id", _ID, nullable=False),
        sa.Column("key_sha256", sa.String(length=64), nullable=False),
        sa.Column("place_sha256", sa.String(length=64), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("severity", sa.String(length=10), nullable=False),
        sa.Column("severity_rank", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("location", sa.Text(), nullable=False),
        sa.Column("sni", sa.String(length=255), nullable=False),
        sa.Column("fingerprint_sha256", sa.String(length=64), nullable=False),
        sa.Column("certificate_id", _ID, nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("team", sa.String(length=100), nullable=True),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_scan_id", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(["certificate_id"], ["certificates.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key_sha256"),
    )
    op.create_index("ix_findings_place_sha256", "findings", ["place_sha256"])
    op.create_index("ix_findings_open_rank", "findings", ["resolved_at", "severity_rank"])


def downgrade() -> None:
    op.drop_table("findings")
    op.drop_table("certificate_locations")
    op.drop_table("scan_errors")
    op.drop_table("scan_runs")
