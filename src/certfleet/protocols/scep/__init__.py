"""SCEP (RFC 8894): message parsing and building and the protocol state machine.

Bytes in, bytes out; the service layer (``certfleet.services.scep``) supplies challenges,
transactions and issuance through :class:`ScepBackend`.
"""

from __future__ import annotations

from certfleet.protocols.scep._attributes import MessageType, PkiStatus
from certfleet.protocols.scep._reply import RaSigner
from certfleet.protocols.scep._server import CAPABILITIES, Enrolment, ScepBackend, ScepServer
from certfleet.protocols.scep.errors import FailInfo, MalformedMessage, ScepError, ScepFailure

__all__ = [
    "CAPABILITIES",
    "Enrolment",
    "FailInfo",
    "MalformedMessage",
    "MessageType",
    "PkiStatus",
    "RaSigner",
    "ScepBackend",
    "ScepError",
    "ScepFailure",
    "ScepServer",
]
