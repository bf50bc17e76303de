"""Tables of the ACME server (``acme_*``), created by migration 0004_acme."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from certfleet.store.models import Base, UtcDateTime

__all__ = [
    "AcmeAccountRow",
    "AcmeAuthorizationRow",
    "AcmeChallengeRow",
    "AcmeEabKeyRow",
    "AcmeNonceRow",
    "AcmeOrderAuthorizationRow",
    "AcmeOrderRow",
    "AcmeRenewalOverrideRow",
]


class AcmeNonceRow(Base):
    """One row per unused nonce; consuming it is a DELETE (RFC 8555 section 6.5)."""

    __tablename__ = "acme_nonces"

    value: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, index=True)


class AcmeAccountRow(Base):
    __tablename__ = "acme_accounts"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    thumbprint: Mapped[str] = mapped_column(String(64), unique=True)
    jwk_json: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    contacts_json: Mapped[str] = mapped_column(Text)
    tos_agreed: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    eab_kid: Mapped[str | None] = mapped_column(String(64))
    team: Mapped[str | None] = mapped_column(String(100))
    allow_names_json: Mapped[str | None] = mapped_column(Text)


class AcmeEabKeyRow(Base):
    """``hmac_key``: the ASCII envelope of the HMAC key sealed under the secrets key
    (:mod:`certfleet.sealing`, bound to this kid); NULL once bound (migration 0014). A row
    written before 0014 holds the raw 32-byte key until the platform next opens and seals it."""

    __tablename__ = "acme_eab_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    hmac_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    team: Mapped[str] = mapped_column(String(100))
    allow_names_json: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    account_id: Mapped[str | None] = mapped_column(String(32))
    bound_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)


class AcmeAuthorizationRow(Base):
    __tablename__ = "acme_authorizations"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("acme_accounts.id"))
    identifier_type: Mapped[str] = mapped_column(String(8))
    identifier_value: Mapped[str] = mapped_column(String(255))
    wildcard: Mapped[bool] = mapped_column(Boolean)
    status: Mapped[str] = mapped_column(String(16))
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    validated_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    caa_checked_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (Index("ix_acme_authorizations_reuse", "account_id", "identifier_value", "status"),)


class AcmeChallengeRow(Base):
    __tablename__ = "acme_challenges"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    authz_id: Mapped[str] = mapped_column(ForeignKey("acme_authorizations.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(16))
    token: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    validated_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    error_json: Mapped[str | None] = mapped_column(Text)
    processing_since: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)  # 0024


class AcmeOrderRow(Base):
    __tablename__ = "acme_orders"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("acme_accounts.id"))
    status: Mapped[str] = mapped_column(String(16))
    identifiers_json: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    profile: Mapped[str] = mapped_column(String(60))
    replaces: Mapped[str | None] = mapped_column(String(200), index=True)
    error_json: Mapped[str | None] = mapped_column(Text)
    certificate_serial: Mapped[str | None] = mapped_column(String(42), index=True)
    certificate_chain: Mapped[str | None] = mapped_column(Text)
    processing_since: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)  # 0024

    __table_args__ = (Index("ix_acme_orders_account_created", "account_id", "created_at"),)


class AcmeOrderAuthorizationRow(Base):
    __tablename__ = "acme_order_authorizations"

    order_id: Mapped[str] = mapped_column(ForeignKey("acme_orders.id"), primary_key=True)
    authz_id: Mapped[str] = mapped_column(ForeignKey("acme_authorizations.id"), primary_key=True, index=True)
    position: Mapped[int] = mapped_column(Integer)


class AcmeRenewalOverrideRow(Base):
    """An operator's ARI window override, by inventory serial (RFC 9773)."""

    __tablename__ = "acme_renewal_overrides"

    serial: Mapped[str] = mapped_column(String(42), primary_key=True)
    window_start: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    window_end: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    set_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    actor: Mapped[str] = mapped_column(String(200))
