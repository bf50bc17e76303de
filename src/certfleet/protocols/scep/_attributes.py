"""The SCEP message vocabulary (RFC 8894 section 3.2.1): attribute OIDs, message types and
pkiStatus values."""

from __future__ import annotations

import enum

__all__ = ["MESSAGE_ATTRIBUTES", "MessageType", "PkiStatus"]

# RFC 8894 section 3.2.1: id-VeriSign arc 2.16.840.1.113733.1.9.
MESSAGE_TYPE = "2.16.840.1.113733.1.9.2"
PKI_STATUS = "2.16.840.1.113733.1.9.3"
FAIL_INFO = "2.16.840.1.113733.1.9.4"
SENDER_NONCE = "2.16.840.1.113733.1.9.5"
RECIPIENT_NONCE = "2.16.840.1.113733.1.9.6"
TRANSACTION_ID = "2.16.840.1.113733.1.9.7"
MESSAGE_ATTRIBUTES = (MESSAGE_TYPE, PKI_STATUS, FAIL_INFO, SENDER_NONCE, RECIPIENT_NONCE, TRANSACTION_ID)


class MessageType(enum.Enum):
    """RFC 8894 section 3.2.1.2 (PrintableString decimal values)."""

    CERT_REP = "3"
    RENEWAL_REQ = "17"
    PKCS_REQ = "19"
    CERT_POLL = "20"  # GetCertInitial in draft-nourse
    GET_CERT = "21"
    GET_CRL = "22"


class PkiStatus(enum.Enum):
    SUCCESS = "0"
    FAILURE = "2"
    PENDING = "3"
