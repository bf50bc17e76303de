"""web: single sign-on sessions (no API token) and pending OpenID Connect sign-ins

Revision ID: 0030_oidc_sessions
Revises: 0009_web
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0030_oidc_sessions"
down_revision = "0009_web"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # SQLite cannot drop NOT NULL in place: batch mode copies the table.
    with op.batch_alter_table("web_sessions") as batch:
        batch.alter_column("token_id", existing_type=sa.String(length=32), nullable=True)
        batch.add_column(sa.Column("principal_name", sa.String(length=320), nullable=True))
        batch.add_column(sa.Column("team", sa.String(length=100), nullable=True))
        batch.add_column(sa.Column("scope", sa.String(length=20), nullable=True))
    op.create_table(
        "oidc_logins",
        sa.Column("state_sha256", sa.String(length=64), nullable=False),
        sa.Column("browser_sha256", sa.String(length=64), nullable=False),
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("code_verifier", sa.String(length=128), nullable=False),
        sa.Column("next_path", sa.String(length=2000), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("state_sha256"),
    )
    op.create_index("ix_oidc_logins_expires_at", "oidc_logins", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_oidc_logins_expires_at", table_name="oidc_logins")
    op.drop_table("oidc_logins")
    op.execute("DELETE FROM web_sessions WHERE token_id IS NULL")
    with op.batch_alter_table("web_sessions") as batch:
        batch.drop_column("scope")
        batch.drop_column("team")
        batch.drop_column("principal_name")
        batch.alter_column("token_id", existing_type=sa.String(length=32), nullable=False)
