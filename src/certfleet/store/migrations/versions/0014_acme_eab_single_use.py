"""acme: an EAB key's HMAC key is sealed, and wiped (NULL) once an account binds it

Revision ID: 0014_acme_eab_single_use
Revises: 0004_acme
Create Date: 2026-12-05

Sealing needs the secrets key in the data directory, which a migration run with only a
database URL does not have: this revision wipes what it can (bound keys) and the platform
seals the remaining plaintext keys and notification channels when it next opens
(``certfleet.store._sealed_rows``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014_acme_eab_single_use"
down_revision = "0004_acme"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("acme_eab_keys", schema=None) as batch_op:
        batch_op.alter_column("hmac_key", existing_type=sa.LargeBinary(), nullable=True)
    op.execute("UPDATE acme_eab_keys SET hmac_key = NULL WHERE account_id IS NOT NULL")


def downgrade() -> None:
    # A wiped key cannot come back: bound keys get an empty value, which verifies no MAC.
    # Unbound keys stay sealed, which the older code cannot open: mint them anew.
    op.get_bind().execute(
        sa.text("UPDATE acme_eab_keys SET hmac_key = :empty WHERE hmac_key IS NULL"), {"empty": b""}
    )
    with op.batch_alter_table("acme_eab_keys", schema=None) as batch_op:
        batch_op.alter_column("hmac_key", existing_type=sa.LargeBinary(), nullable=False)
