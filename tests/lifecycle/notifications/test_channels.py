"""Every channel type passes the same conformance checks against real receivers, then each
type's own format: the webhook's signature, Slack's text, email's headers."""

from __future__ import annotations

import hashlib
import hmac
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from certfleet.errors import InvalidInput
from certfleet.lifecycle.notifications import (
    Channel,
    ChannelContext,
    DeliveryFailed,
    Notice,
    available,
    channel_type,
    sign,
)
from certfleet.lifecycle.notifications.render import summary
from tests.lifecycle.notifications.receivers import HttpReceiver, SmtpServer
from tests.ports import free_port

PAYLOAD: dict[str, Any] = {
    "event": "expiring",
    "subject": "1a2b",
    "occurred_at": "2026-11-28T12:00:00Z",
    "team": "web",
    "owner": {"team": "web"},
    "certificate": {"serial": "1a2b", "sans": ["www.example.test"], "not_after": "2026-12-05T12:00:00Z"},
    "locations": [{"kind": "endpoint", "location": "10.0.0.5:443", "sni": "www.example.test"}],
    "details": {"threshold_days": 7, "days_left": 7},
}
NOTICE = Notice(event_id=42, kind="expiring", payload=PAYLOAD, delivery_id=7)


class Target:
    """Where a channel type sends in these tests, and what arrived there."""

    def __init__(self, type_name: str, smtp_tls: tuple[ssl.SSLContext, Path]) -> None:
        self.type_name = type_name
        self.http: HttpReceiver | None = None
        self.smtp: SmtpServer | None = None
        if type_name == "email":
            tls, root = smtp_tls
            self.smtp = SmtpServer(tls)
            self.options: dict[str, Any] = {
                "url": f"smtp://127.0.0.1:{self.smtp.port}",
                "to": ["ops@example.test"],
                "from": "certfleet@example.test",
                "ca_file": str(root),
            }
            self.down_options = {**self.options, "url": f"smtp://127.0.0.1:{free_port()}"}
        else:
            self.http = HttpReceiver()
            self.options = {"url": self.http.url}
            self.down_options = {"url": f"http://127.0.0.1:{free_port()}/hook"}

    def received(self) -> int:
        return len(self.smtp.mails) if self.smtp else len(self.http.requests) if self.http else 0

    def close(self) -> None:
        if self.smtp:
            self.smtp.close()
        if self.http:
            self.http.close()


@pytest.fixture(params=["webhook", "slack", "email"])
def target(request: pytest.FixtureRequest, smtp_tls: tuple[ssl.SSLContext, Path]) -> Iterator[Target]:
    made = Target(request.param, smtp_tls)
    yield made
    made.close()


def _kind(name: str) -> type[Channel]:
    found = channel_type(name)
    assert found is not None
    return found


def test_the_built_in_types_are_registered() -> None:
    assert {"webhook", "slack", "email"} <= set(available())
    assert channel_type("pager") is None


def test_conformance_delivers_once_to_a_listening_receiver(target: Target, context: ChannelContext) -> None:
    channel = _kind(target.type_name)(target.options, "s3cret", context)
    outcome = channel.send(NOTICE)
    assert outcome
    assert target.received() == 1


def test_conformance_a_receiver_that_is_down_is_a_retryable_failure(
    target: Target, context: ChannelContext
) -> None:
    channel = _kind(target.type_name)(target.down_options, "s3cret", context)
    with pytest.raises(DeliveryFailed) as caught:
        channel.send(NOTICE)
    assert caught.value.retryable
    assert "cannot reach 127.0.0.1" in caught.value.reason


def test_conformance_unknown_options_are_refused_by_name(target: Target) -> None:
    with pytest.raises(InvalidInput, match="unknown option 'colour'"):
        _kind(target.type_name).parse_options({**target.options, "colour": "red"})


def test_conformance_the_listing_form_never_shows_a_secret(target: Target) -> None:
    shown = _kind(target.type_name).redacted(target.options)
    assert "s3cret" not in shown and shown


def test_the_webhook_signs_the_exact_body_as_openssl_computes_it(
    receiver: HttpReceiver, context: ChannelContext
) -> None:
    _kind("webhook")({"url": receiver.url}, "s3cret", context).send(NOTICE)
    (request,) = receiver.requests
    assert request.json() == {"id": 42, **PAYLOAD}
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-certfleet-event"] == "expiring"
    assert request.headers["x-certfleet-delivery"] == "7"
    # An independent implementation of HMAC-SHA256 over the bytes that arrived.
    digest = (
        subprocess.run(
            ["openssl", "dgst", "-sha256", "-hmac", "s3cret", "-r"],
            input=request.body,
            capture_output=True,
            check=True,
        )
        .stdout.split()[0]
        .decode()
    )
    assert request.headers["x-certfleet-signature"] == f"sha256={digest}"
    assert sign("s3cret", request.body) == f"sha256={digest}"
    wrong = hmac.new(b"other", request.body, hashlib.sha256).hexdigest()
    assert request.headers["x-certfleet-signature"] != f"sha256={wrong}"


def test_a_webhook_without_secret_sends_no_signature(receiver: HttpReceiver, context: ChannelContext) -> None:
    _kind("webhook")({"url": receiver.url}, None, context).send(NOTICE)
    assert "x-certfleet-signature" not in receiver.requests[0].headers


@pytest.mark.parametrize(
    ("status", "retryable"),
    [
        (500, True),
        (503, True),
        (429, True),
        (408, True),
        (400, False),
        (401, False),
        (404, False),
        (410, False),
    ],
)
def test_http_status_decides_whether_a_retry_can_help(
    receiver: HttpReceiver, context: ChannelContext, status: int, retryable: bool
) -> None:
    receiver.status = status
    with pytest.raises(DeliveryFailed) as caught:
        _kind("webhook")({"url": receiver.url}, None, context).send(NOTICE)
    assert caught.value.retryable is retryable
    assert caught.value.reason.startswith(f"HTTP {status}")


def test_retry_after_is_passed_on(receiver: HttpReceiver, context: ChannelContext) -> None:
    receiver.status = 429
    receiver.headers = {"Retry-After": "120"}
    with pytest.raises(DeliveryFailed) as caught:
        _kind("webhook")({"url": receiver.url}, None, context).send(NOTICE)
    assert caught.value.retry_after_seconds == 120


def test_slack_gets_one_escaped_text_line_per_fact(receiver: HttpReceiver, context: ChannelContext) -> None:
    payload = {**PAYLOAD, "team": "<web & ops>"}
    _kind("slack")({"url": receiver.url}, None, context).send(Notice(1, "expiring", payload))
    text = receiver.requests[0].json()["text"]
    assert (
        text.splitlines()[0]
        == "Certificate www.example.test (serial 1a2b) expires in 7 days, at 2026-12-05T12:00:00Z"
    )
    assert "team: &lt;web &amp; ops&gt;" in text
    assert "seen at 10.0.0.5:443" in text


def test_slack_urls_are_credentials_and_are_listed_by_host_only() -> None:
    shown = _kind("slack").redacted({"url": "https://hooks.slack.example/services/T0/B0/XXXXSECRET"})
    assert shown == "https://hooks.slack.example/…"


def test_email_goes_over_starttls_with_login_and_readable_headers(
    smtp_tls: tuple[ssl.SSLContext, Path], context: ChannelContext
) -> None:
    tls, root = smtp_tls
    server = SmtpServer(tls, users={b"notify": b"pw"})
    try:
        options = {
            "url": f"smtp://notify@127.0.0.1:{server.port}",
            "to": ["ops@example.test", "sec@example.test"],
            "from": "certfleet@example.test",
            "ca_file": str(root),
        }
        outcome = _kind("email")(options, "pw", context).send(NOTICE)
        assert outcome == "accepted for 2 of 2 recipients"
        (mail,) = server.mails
        assert mail.tls and mail.login == b"notify"
        assert mail.rcpt_tos == ["ops@example.test", "sec@example.test"]
        assert mail.message["Subject"] == "[certfleet] " + summary(PAYLOAD)
        assert mail.message["X-Certfleet-Event-Id"] == "42"
        body = mail.message.get_payload(decode=True).decode()
        assert "10.0.0.5:443 (SNI www.example.test)" in body
        with pytest.raises(DeliveryFailed) as caught:
            _kind("email")(options, "wrong", context).send(NOTICE)
        assert not caught.value.retryable and caught.value.reason.startswith("SMTP 535")
        assert len(server.mails) == 1
    finally:
        server.close()


def test_email_is_never_sent_in_clear(context: ChannelContext) -> None:
    server = SmtpServer(tls=None)
    try:
        options = {
            "url": f"smtp://127.0.0.1:{server.port}",
            "to": ["a@example.test"],
            "from": "b@example.test",
        }
        with pytest.raises(DeliveryFailed, match="offers no STARTTLS: refusing to send in clear") as caught:
            _kind("email")(options, None, context).send(NOTICE)
        assert not caught.value.retryable
        assert server.mails == []
    finally:
        server.close()


def test_email_refuses_a_server_certificate_it_cannot_trust(
    smtp_tls: tuple[ssl.SSLContext, Path], tmp_path: Path, context: ChannelContext
) -> None:
    tls, _ = smtp_tls
    server = SmtpServer(tls)
    try:
        other_root = tmp_path / "other.pem"
        other_root.write_text(Path("/etc/ssl/certs/ca-certificates.crt").read_text())
        options = {
            "url": f"smtp://127.0.0.1:{server.port}",
            "to": ["a@example.test"],
            "from": "b@example.test",
            "ca_file": str(other_root),
        }
        with pytest.raises(DeliveryFailed, match="certificate not trusted"):
            _kind("email")(options, None, context).send(NOTICE)
        assert server.mails == []
    finally:
        server.close()


@pytest.mark.parametrize(
    ("type_name", "options", "error"),
    [
        ("webhook", {}, "webhook channel needs a url"),
        ("webhook", {"url": "ftp://x.example.test/"}, "must be http:// or https:// with a host"),
        ("slack", {"url": "https:///nohost"}, "must be http:// or https:// with a host"),
        ("email", {"url": "http://x", "to": ["a@b.test"], "from": "c@d.test"}, "must be smtp://"),
        ("email", {"url": "smtp://h.test", "to": [], "from": "c@d.test"}, "at least one 'to' address"),
        (
            "email",
            {"url": "smtp://h.test", "to": ["nobody"], "from": "c@d.test"},
            "to 'nobody' is not an email address",
        ),
        (
            "email",
            {"url": "smtp://h.test", "to": ["a@b.test"], "from": "x@y.test\r\nBcc: z@z.test"},
            "is not an email address",
        ),
        ("email", {"url": "smtp://h.test:port", "to": ["a@b.test"], "from": "c@d.test"}, "has a bad port"),
        (
            "email",
            {"url": "smtp://h.test", "to": ["a@b.test"], "from": "c@d.test", "ca_file": "/nonexistent"},
            "is not a readable file",
        ),
    ],
)
def test_bad_options_are_refused_precisely(type_name: str, options: dict[str, Any], error: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        _kind(type_name).parse_options(options)
    assert error in caught.value.detail
