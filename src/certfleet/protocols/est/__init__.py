"""EST (RFC 7030): the message formats and checks, free of any web framework. The HTTPS edge
(:mod:`certfleet.api.est`) moves bytes; :mod:`certfleet.services.est` authenticates and
issues through the one issuance service."""

from __future__ import annotations

from certfleet.protocols.est.channel_binding import TLS_1_3, check_channel_binding
from certfleet.protocols.est.errors import ChannelBindingMismatch, MalformedEstMessage
from certfleet.protocols.est.key_package import (
    SERVER_GENERATED_KEY,
    EnvelopeRecipient,
    Signer,
    encrypted_key_package,
    requested_recipient,
)
from certfleet.protocols.est.messages import (
    CERTS_ONLY,
    CSRATTRS,
    EnrolmentRequest,
    certs_only,
    csr_attributes,
    decode_base64,
    parse_enrolment,
)
from certfleet.protocols.est.serverkeygen import ServerKeygenResponse, server_keygen_response

__all__ = [
    "CERTS_ONLY",
    "CSRATTRS",
    "SERVER_GENERATED_KEY",
    "TLS_1_3",
    "ChannelBindingMismatch",
    "EnrolmentRequest",
    "EnvelopeRecipient",
    "MalformedEstMessage",
    "ServerKeygenResponse",
    "Signer",
    "certs_only",
    "check_channel_binding",
    "csr_attributes",
    "decode_base64",
    "encrypted_key_package",
    "parse_enrolment",
    "requested_recipient",
    "server_keygen_response",
]
