"""web: dashboard sessions, and the indexes the inventory page and the overview read through

Revision ID: 0009_web
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_web"
down_revision = "0001"
branch_labels = None
depends_on = None

# (name, columns or SQL expressions, PostgreSQL only). SQLite appends the rowid (our id) to
# every index, so "(not_after)" there already is "(not_after, id)"; PostgreSQL needs the id
# spelled out for keyset pagination to walk the index without a sort.
_CERTIFICATE_INDEXES: tuple[tuple[str, tuple[str, ...], bool], ...] = (
    ("ix_certificates_not_after_id", ("not_after", "id"), True),
    ("ix_certificates_team_not_after", ("team", "not_after", "id"), False),
    ("ix_certificates_issuer_ca_not_after", ("issuer_ca_id", "not_after", "id"), False),
    ("ix_certificates_team_status_not_after", ("team", "status", "not_after"), False),
    # Covering for the timeline by team: each week is a range of this index, no table reads.
    ("ix_certificates_status_not_after_team", ("status", "not_after", "team"), False),
)


def upgrade() -> None:
    op.create_table(
        "web_sessions",
        sa.Column("id_sha256", sa.String(length=64), nullable=False),
        sa.Column("token_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["token_id"], ["api_tokens.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id_sha256"),
    )
    op.create_index("ix_web_sessions_expires_at", "web_sessions", ["expires_at"])
    op.create_index("ix_web_sessions_token_id", "web_sessions", ["token_id"])

    postgresql = op.get_bind().dialect.name == "postgresql"
    for name, columns, pg_only in _CERTIFICATE_INDEXES:
        if pg_only and not postgresql:
            continue
        if not postgresql:
            columns = tuple(c for c in columns if c != "id")
        op.create_index(name, "certificates", list(columns))
    # Sorting by name: one expression both databases can index (common_name may be NULL).
    op.create_index("ix_certificates_name_sort", "certificates", [sa.text("coalesce(common_name, '')"), "id"])
    # The certificate page lists the audit entries about one serial; subjects are free text
    # (paths can exceed a PostgreSQL b-tree entry), so the index holds a bounded prefix.
    op.create_index("ix_audit_log_subject_prefix", "audit_log", [sa.text("substr(subject, 1, 200)")])
    if postgresql:
        # Prefix search on names (LIKE 'abc%') under any collation.
        op.execute(
            "CREATE INDEX ix_certificate_names_name_pattern ON certificate_names (name text_pattern_ops)"
        )


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    if postgresql:
        op.drop_index("ix_certificate_names_name_pattern", table_name="certificate_names")
    op.drop_index("ix_audit_log_subject_prefix", table_name="audit_log")
    op.drop_index("ix_certificates_name_sort", table_name="certificates")
    for name, _, pg_only in reversed(_CERTIFICATE_INDEXES):
        if pg_only and not postgresql:
            continue
        op.drop_index(name, table_name="certificates")
    op.drop_index("ix_web_sessions_token_id", table_name="web_sessions")
    op.drop_index("ix_web_sessions_expires_at", table_name="web_sessions")
    op.drop_table("web_sessions")
