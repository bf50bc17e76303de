"""Tables of the policy area: every applied version of the policy (migration 0005_policy)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from certfleet.store.models import Base, UtcDateTime

__all__ = ["PolicyVersionRow"]


class PolicyVersionRow(Base):
    """One row per ``policy apply``; the highest version is in force. Rows are never
    updated or deleted, so any past policy can be shown and compared."""

    __tablename__ = "policy_versions"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    actor: Mapped[str] = mapped_column(String(200))
    sha256: Mapped[str] = mapped_column(String(64))
    rule_count: Mapped[int] = mapped_column(Integer)
    document: Mapped[str] = mapped_column(Text)
