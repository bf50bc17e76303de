"""The RELP client codec: frames as librelp writes and reads them, acknowledgements matched
to the messages sent, and every malformed or hostile server answer refused by name."""

from __future__ import annotations

import pytest

from certfleet.audit._relp import (
    MAX_TXNR,
    FrameDecoder,
    RelpClient,
    RelpError,
    RelpFrame,
    RelpProtocolError,
    RelpRefused,
    RelpServerClosed,
    encode_frame,
    parse_response,
)

# What librelp 1.11 (rsyslog's imrelp on Debian 12) answered to open, byte for byte.
OPEN_OK = (
    b"1 rsp 93 200 OK\nrelp_version=0\nrelp_software=librelp,1.11.0,http://librelp.adiscon.com\n"
    b"commands=syslog\n"
)


def _opened() -> RelpClient:
    client = RelpClient(software="certfleet")
    client.open()
    assert client.receive(OPEN_OK) == []
    return client


def test_frames_are_written_as_the_spec_draws_them() -> None:
    assert encode_frame(RelpFrame(7, "syslog", b"<110>1 hello")) == b"7 syslog 12 <110>1 hello\n"
    assert encode_frame(RelpFrame(3, "close")) == b"3 close 0\n"  # no SP, no data when empty
    client = RelpClient(software="certfleet")
    assert client.open() == b"1 open 54 relp_version=0\nrelp_software=certfleet\ncommands=syslog\n"


def test_the_open_answer_opens_the_session_with_the_servers_offers() -> None:
    client = _opened()
    assert client.opened
    assert client.offers["relp_software"].startswith("librelp,1.11.0")
    assert client.syslog(b"m", tag=42) == b"2 syslog 1 m\n"


def test_acknowledgements_name_the_tags_of_the_messages_they_answer() -> None:
    client = _opened()
    for seq in (10, 11, 12):
        client.syslog(b"entry %d" % seq, tag=seq)
    assert client.unacknowledged == [10, 11, 12]
    # answers split anywhere, even inside a frame, and several in one read
    assert client.receive(b"2 rsp 6 200 OK\n3 rs") == [10]
    assert client.receive(b"p 6 200 O") == []
    assert client.receive(b"K\n") == [11]
    assert client.unacknowledged == [12]
    assert client.receive(b"4 rsp 6 200 OK\n") == [12]
    assert client.unacknowledged == []


def test_a_data_containing_newlines_is_read_by_its_length() -> None:
    (frame,) = FrameDecoder().feed(b"5 rsp 12 200 OK\na\nb\nc\n")
    assert frame == RelpFrame(5, "rsp", b"200 OK\na\nb\nc")
    assert parse_response(frame.data).body == b"a\nb\nc"


def test_txnr_wraps_after_its_nine_digits_to_one() -> None:
    client = _opened()
    client._txnr = MAX_TXNR - 1  # as after a long-lived session
    assert client.syslog(b"a", tag=1).startswith(b"999999999 syslog")
    assert client.syslog(b"b", tag=2).startswith(b"1 syslog")  # 0 is the server's
    assert client.receive(b"999999999 rsp 6 200 OK\n1 rsp 6 200 OK\n") == [1, 2]


def test_the_close_answer_is_empty_as_librelp_sends_it() -> None:
    client = _opened()
    assert client.close() == b"2 close 0\n"
    assert client.receive(b"2 rsp 0\n") == []


@pytest.mark.parametrize(
    ("answer", "error", "message"),
    [
        (b"x rsp 6 200 OK\n", RelpProtocolError, "RELP txnr must be digits, got b'x'"),
        (b"1234567890 rsp", RelpProtocolError, "RELP txnr longer than 9 characters"),
        (b" rsp 6 200 OK\n", RelpProtocolError, "RELP txnr missing"),
        (b"2\n", RelpProtocolError, "RELP frame ended after its txnr"),
        (b"2 rs1 6 200 OK\n", RelpProtocolError, "RELP command must be letters, got b'rs1'"),
        (b"2 " + b"r" * 33, RelpProtocolError, "RELP command longer than 32 characters"),
        (b"2 rsp\n", RelpProtocolError, "RELP frame ended after its command b'rsp'"),
        (b"2 rsp six 200 OK\n", RelpProtocolError, "RELP datalen must be digits, got b's'"),
        (b"2 rsp 4 200 OK\n", RelpProtocolError, "4 bytes of data not followed by LF (found b'O')"),
        (b"2 rsp 6 200 OKX", RelpProtocolError, "6 bytes of data not followed by LF (found b'X')"),
        (b"2 rsp 999999999 ", RelpProtocolError, "RELP frame of 999999999 bytes: more than 65536"),
        (b"2 rsp 6 2OO OK\n", RelpProtocolError, "RELP rsp must start with a 3-digit code, got b'2OO OK'"),
        (b"2 rsp 0\n", RelpProtocolError, "RELP rsp must start with a 3-digit code, got b''"),
        (b"9 rsp 6 200 OK\n", RelpProtocolError, "RELP rsp for txnr 9, which is not awaiting an answer"),
        (
            b"2 syslog 6 200 OK\n",
            RelpProtocolError,
            "RELP server sent command 'syslog'; a client expects rsp",
        ),
        (b"2 rsp 9 500 error\n", RelpRefused, "RELP server refused txnr 2: 500 error"),
        (b"0 serverclose 0\n", RelpServerClosed, "RELP server closed the session (serverclose)"),
    ],
)
def test_a_malformed_or_refusing_answer_is_a_precise_error(
    answer: bytes, error: type[RelpError], message: str
) -> None:
    client = _opened()
    client.syslog(b"entry", tag=2)
    with pytest.raises(error) as caught:
        client.receive(answer)
    assert message in caught.value.detail
    assert caught.value.acknowledged == ()


def test_acknowledgements_before_a_failure_travel_with_the_error() -> None:
    client = _opened()
    client.syslog(b"a", tag=20)
    client.syslog(b"b", tag=21)
    with pytest.raises(RelpServerClosed) as caught:
        client.receive(b"2 rsp 6 200 OK\n0 serverclose 0\n")
    assert caught.value.acknowledged == (20,)
    assert client.unacknowledged == [21]


@pytest.mark.parametrize(
    ("answer", "error", "message"),
    [
        (
            encode_frame(RelpFrame(1, "rsp", b"500 unsupported version")),
            RelpRefused,
            "refused open: 500 unsupported version",
        ),
        (
            encode_frame(RelpFrame(1, "rsp", b"200 OK\nrelp_version=1")),
            RelpProtocolError,
            "offers relp_version 1; only 0",
        ),
        (
            encode_frame(RelpFrame(1, "rsp", b"200 OK\nrelp_version=0\ncommands=starttls")),
            RelpProtocolError,
            "does not offer the syslog command ('starttls')",
        ),
    ],
)
def test_an_open_the_server_cannot_honour_is_refused(
    answer: bytes, error: type[RelpError], message: str
) -> None:
    client = RelpClient()
    client.open()
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        client.receive(answer)
    assert not client.opened


def test_no_syslog_before_the_session_is_open() -> None:
    client = RelpClient()
    client.open()
    with pytest.raises(RelpProtocolError, match="before the server accepted open"):
        client.syslog(b"early", tag=1)
