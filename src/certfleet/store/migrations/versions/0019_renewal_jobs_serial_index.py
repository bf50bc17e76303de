"""lifecycle: drop the renewal jobs' serial index

Revision ID: 0019_renewal_plan
Revises: 0017
Create Date: 2026-12-03

A first plan writes a job per certificate, and every job row went into three B-trees: the
table, ``(state, due_at)`` for leasing, and ``serial``. Serials are random, so each insert
touched its own leaf page of that index: about a third of the cost of planning a large
inventory. The one reader of it (ARI overrides to their jobs) now goes through
``certificates.serial`` and the job's primary key instead.
"""

from __future__ import annotations

from alembic import op

revision = "0019_renewal_plan"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_renewal_jobs_serial", table_name="renewal_jobs")


def downgrade() -> None:
    op.create_index("ix_renewal_jobs_serial", "renewal_jobs", ["serial"])
