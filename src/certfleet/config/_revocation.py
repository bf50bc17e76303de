"""The ``[revocation]`` section of ``config.toml``: CRL and OCSP lifetimes and signing.

Defined here rather than in ``certfleet.revocation`` because ``config`` sits below it in the
layers; ``certfleet.revocation`` re-exports it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from certfleet.config._table import toml
from certfleet.errors import ConfigurationError

__all__ = ["MAX_CRL_VALIDITY", "RevocationSettings"]

# The CA/B Forum Baseline Requirements 4.9.7 cap a CRL's validity at ten days.
MAX_CRL_VALIDITY = dt.timedelta(days=10)
# RFC 5019 / BR 4.9.10: an OCSP response is valid at least eight hours and at most ten days.
MIN_OCSP_VALIDITY = dt.timedelta(hours=8)
MAX_OCSP_VALIDITY = dt.timedelta(days=10)
_DAY = dt.timedelta(days=1)
_HOUR = dt.timedelta(hours=1)


@dataclass(frozen=True)
class RevocationSettings:
    """How long CRLs and OCSP responses live, and who signs the responses.

    * ``crl_validity`` (``crl_validity_days``, default 7, at most 10): nextUpdate minus
      thisUpdate of a complete CRL. A week lets relying parties cache it, while a revocation
      is visible at once to those who fetch (the CRL is rebuilt within seconds).
    * ``delta_crl_validity`` (``delta_crl_validity_hours``, default 24): the same for delta CRLs.
    * ``ocsp_validity`` (``ocsp_validity_hours``, default 96, i.e. 4 days, as the issue asks).
    * ``ocsp_signing``: ``"delegated"`` (default; a short-lived responder certificate per CA,
      so the CA key signs only once per rotation) or ``"ca"`` (the CA key signs responses).
    * ``responder_lifetime`` (``ocsp_responder_lifetime_days``, default 14): replaced at half.
    * ``maintenance_interval`` (``maintenance_interval_seconds``, default 2): how often
      ``certfleet serve`` refreshes CRLs, responses and responder certificates.
    * ``presign_batch`` (default 500): cached responses re-signed per CA and
      maintenance round (a new certificate's first answer is signed when first asked for).

    Everything is refreshed once a third of its validity has passed, so a response or CRL
    is always replaced well before half of its lifetime, even if a round is late.
    """

    crl_validity: dt.timedelta = field(
        default=dt.timedelta(days=7), metadata=toml("crl_validity_days", unit=_DAY)
    )
    delta_crl_validity: dt.timedelta = field(
        default=dt.timedelta(hours=24), metadata=toml("delta_crl_validity_hours", unit=_HOUR)
    )
    ocsp_validity: dt.timedelta = field(
        default=dt.timedelta(days=4), metadata=toml("ocsp_validity_hours", unit=_HOUR)
    )
    ocsp_signing: str = "delegated"
    responder_lifetime: dt.timedelta = field(
        default=dt.timedelta(days=14), metadata=toml("ocsp_responder_lifetime_days", unit=_DAY)
    )
    maintenance_interval_seconds: float = 2.0
    presign_batch: int = 500

    def __post_init__(self) -> None:
        if not dt.timedelta(hours=1) <= self.crl_validity <= MAX_CRL_VALIDITY:
            raise ConfigurationError("revocation.crl_validity_days must be more than 0 and at most 10")
        if not dt.timedelta(hours=1) <= self.delta_crl_validity <= self.crl_validity:
            raise ConfigurationError(
                "revocation.delta_crl_validity_hours must be at least 1 and at most the CRL validity"
            )
        if not MIN_OCSP_VALIDITY <= self.ocsp_validity <= MAX_OCSP_VALIDITY:
            raise ConfigurationError("revocation.ocsp_validity_hours must be between 8 and 240")
        if self.ocsp_signing not in ("delegated", "ca"):
            raise ConfigurationError("revocation.ocsp_signing must be 'delegated' or 'ca'")
        if self.responder_lifetime < 2 * self.ocsp_validity:
            raise ConfigurationError(
                "revocation.ocsp_responder_lifetime_days must be at least twice the OCSP validity"
            )
        if not 0.1 <= self.maintenance_interval_seconds <= 3600:
            raise ConfigurationError("revocation.maintenance_interval_seconds must be between 0.1 and 3600")
        if not 1 <= self.presign_batch <= 100_000:
            raise ConfigurationError("revocation.presign_batch must be between 1 and 100000")

    @property
    def delegated(self) -> bool:
        return self.ocsp_signing == "delegated"
