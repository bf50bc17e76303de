"""Tables of the revocation area: revocations, CRL state and CRLs, cached OCSP responses,
delegated responder certificates and blocked keys (migration 0002_revocation), and the
revocation generation (0018_revocation_generation)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from certfleet.store.models import Base, UtcDateTime

__all__ = [
    "BlockedKeyRow",
    "CrlRow",
    "CrlStateRow",
    "OcspResponderRow",
    "OcspResponseRow",
    "RevocationGenerationRow",
    "RevocationRow",
]


class RevocationRow(Base):
    """One row per revoked serial. It references the serials table, not the inventory, so a
    serial that was reserved or signed but never recorded can be revoked too."""

    __tablename__ = "revocations"

    serial: Mapped[str] = mapped_column(ForeignKey("serials.serial"), primary_key=True)
    issuer_ca_id: Mapped[str] = mapped_column(ForeignKey("certificate_authorities.id"))
    revoked_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    reason: Mapped[str] = mapped_column(String(40))
    invalidity_date: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    seq: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (
        Index("ix_revocations_issuer_seq", "issuer_ca_id", "seq"),
        Index("ix_revocations_issuer_expires", "issuer_ca_id", "expires_at"),
    )


class CrlStateRow(Base):
    __tablename__ = "crl_state"

    ca_id: Mapped[str] = mapped_column(ForeignKey("certificate_authorities.id"), primary_key=True)
    revocation_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    last_number: Mapped[int] = mapped_column(BigInteger, default=0)
    base_number: Mapped[int | None] = mapped_column(BigInteger)
    base_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    base_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)


class CrlRow(Base):
    """The newest complete and delta CRL of each CA, signed and ready to serve."""

    __tablename__ = "crls"

    ca_id: Mapped[str] = mapped_column(ForeignKey("certificate_authorities.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    number: Mapped[int] = mapped_column(BigInteger)
    this_update: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    next_update: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    covered_seq: Mapped[int] = mapped_column(BigInteger)
    base_number: Mapped[int | None] = mapped_column(BigInteger)
    der: Mapped[bytes] = mapped_column(LargeBinary)


class OcspResponseRow(Base):
    __tablename__ = "ocsp_responses"

    ca_id: Mapped[str] = mapped_column(ForeignKey("certificate_authorities.id"), primary_key=True)
    serial: Mapped[str] = mapped_column(String(42), primary_key=True)
    hash_algorithm: Mapped[str] = mapped_column(String(10), primary_key=True)
    status: Mapped[str] = mapped_column(String(10))
    this_update: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    next_update: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    der: Mapped[bytes] = mapped_column(LargeBinary)

    __table_args__ = (
        Index("ix_ocsp_responses_serial", "serial"),
        Index("ix_ocsp_responses_ca_this_update", "ca_id", "this_update"),
    )


class OcspResponderRow(Base):
    """A delegated responder certificate; ``key_ref`` names its key in the CA key backend."""

    __tablename__ = "ocsp_responders"

    key_ref: Mapped[str] = mapped_column(String(200), primary_key=True)
    ca_id: Mapped[str] = mapped_column(ForeignKey("certificate_authorities.id"), index=True)
    certificate_der: Mapped[bytes] = mapped_column(LargeBinary)
    not_after: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class BlockedKeyRow(Base):
    __tablename__ = "blocked_keys"

    spki_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    serial: Mapped[str] = mapped_column(String(42))
    blocked_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class RevocationGenerationRow(Base):
    """One row (``id`` 1): ``value`` grows in the transaction of every change that alters an
    OCSP answer, so a worker's in-memory answers are valid only for the value they were built
    at (see :class:`certfleet.store._revocation_generation.GenerationReader`)."""

    __tablename__ = "revocation_generation"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    value: Mapped[int] = mapped_column(BigInteger)
