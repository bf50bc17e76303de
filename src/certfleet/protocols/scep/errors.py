"""SCEP errors. :class:`ScepFailure` becomes a CertRep with pkiStatus FAILURE and its failInfo
(RFC 8894 section 3.2.1.4.5); :class:`MalformedMessage` is input that carries no transaction
to answer (not CMS, no signer, no nonce), which gets HTTP 400 instead."""

from __future__ import annotations

import enum

from certfleet.errors import CertfleetError, InvalidInput

__all__ = ["FailInfo", "MalformedMessage", "ScepError", "ScepFailure"]


class FailInfo(enum.Enum):
    """RFC 8894 section 3.2.1.4.5: the only five reasons a CertRep may give."""

    BAD_ALG = "0"  # unrecognized or unsupported algorithm
    BAD_MESSAGE_CHECK = "1"  # integrity check (signature verification) failed
    BAD_REQUEST = "2"  # transaction not permitted or supported
    BAD_TIME = "3"  # signingTime not sufficiently close to the system time
    BAD_CERT_ID = "4"  # no certificate could be identified matching the criteria

    @property
    def label(self) -> str:
        return {"0": "badAlg", "1": "badMessageCheck", "2": "badRequest", "3": "badTime", "4": "badCertId"}[
            self.value
        ]


class ScepError(CertfleetError):
    """Root of the SCEP errors."""


class ScepFailure(ScepError):
    """A request refused with ``fail_info``; ``detail`` is for the log and audit, never sent."""

    def __init__(self, fail_info: FailInfo, detail: str) -> None:
        super().__init__(detail)
        self.fail_info = fail_info


class MalformedMessage(ScepError, InvalidInput):
    """Not a SCEP message at all: nothing to sign a CertRep for."""
