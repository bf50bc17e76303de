"""Tables of the web dashboard (migrations 0009_web and 0030_oidc_sessions)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from certfleet.store.models import Base, UtcDateTime

__all__ = ["OidcLoginRow", "WebSessionRow"]


class WebSessionRow(Base):
    """A signed-in browser. Only SHA-256 of the cookie's secret is stored: a copy of this table
    lets no one take over a session. Deleting the API token ends its sessions. A session opened
    through single sign-on has no token: it carries the principal its groups mapped to."""

    __tablename__ = "web_sessions"

    id_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    token_id: Mapped[str | None] = mapped_column(ForeignKey("api_tokens.id", ondelete="CASCADE"), index=True)
    # Single sign-on sessions (token_id NULL): the audit actor, team (NULL: admin) and scope.
    principal_name: Mapped[str | None] = mapped_column(String(320))
    team: Mapped[str | None] = mapped_column(String(100))
    scope: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, index=True)


class OidcLoginRow(Base):
    """A single sign-on attempt between the redirect to the provider and its callback: keyed by
    SHA-256 of ``state``, bound to the browser by SHA-256 of a cookie, deleted when used."""

    __tablename__ = "oidc_logins"

    state_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    browser_sha256: Mapped[str] = mapped_column(String(64))
    nonce: Mapped[str] = mapped_column(String(64))
    code_verifier: Mapped[str] = mapped_column(String(128))
    next_path: Mapped[str] = mapped_column(String(2000))
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, index=True)
