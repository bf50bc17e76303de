"""tls-unique channel binding (RFC 7030 section 3.5): checked on TLS 1.2, refused on TLS 1.3
where it is undefined (RFC 8446 section C.5), optional for the client."""

from __future__ import annotations

import base64

import pytest

from certfleet.protocols.est import ChannelBindingMismatch, check_channel_binding

TLS_1_2 = 0x0303
TLS_1_3 = 0x0304
UNIQUE = bytes(range(12))  # a TLS 1.2 Finished message's verify_data is 12 bytes


def test_an_unbound_csr_passes_on_any_version() -> None:
    check_channel_binding(None, TLS_1_2, UNIQUE)
    check_channel_binding(None, TLS_1_3, None)


def test_the_connections_tls_unique_passes() -> None:
    check_channel_binding(base64.b64encode(UNIQUE), TLS_1_2, UNIQUE)


def test_another_connections_value_is_refused() -> None:
    with pytest.raises(ChannelBindingMismatch, match="made for another connection"):
        check_channel_binding(base64.b64encode(b"x" * 12), TLS_1_2, UNIQUE)


def test_a_bound_csr_on_tls_1_3_is_refused_not_accepted_unchecked() -> None:
    with pytest.raises(ChannelBindingMismatch, match=r"TLS 1\.3"):
        check_channel_binding(base64.b64encode(UNIQUE), TLS_1_3, None)


def test_a_bound_csr_without_a_value_to_compare_is_refused() -> None:
    with pytest.raises(ChannelBindingMismatch, match="no tls-unique value"):
        check_channel_binding(base64.b64encode(UNIQUE), None, None)
