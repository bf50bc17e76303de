"""Tables of the web dashboard (migration 0009_web)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from certfleet.store.models import Base, UtcDateTime

__all__ = ["WebSessionRow"]


class WebSessionRow(Base):
    """A signed-in browser. Only SHA-256 of the cookie's secret is stored: a copy of this table
    lets no one take over a session. Deleting the API token ends its sessions."""

    __tablename__ = "web_sessions"

    id_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    token_id: Mapped[str] = mapped_column(ForeignKey("api_tokens.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, index=True)
