"""Email over SMTP with STARTTLS (RFC 3207), never in clear.

Options: ``url`` ``smtp://[user@]host[:port]`` (port 587, the submission port of RFC 6409,
by default), ``to`` (addresses), ``from``, and ``ca_file`` to trust a private CA for the
server's certificate (else the system's trust store). The channel's secret is the SMTP
password. A server that offers no STARTTLS is refused: credentials and certificate details
are not sent where anyone on the path can read them.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from certfleet.errors import InvalidInput
from certfleet.lifecycle.notifications._channel import Channel, DeliveryFailed, Notice, reject_unknown
from certfleet.lifecycle.notifications.registry import register
from certfleet.lifecycle.notifications.render import email_text

__all__ = ["EmailChannel"]

SUBMISSION_PORT = 587


def _address(raw: Any, what: str) -> str:
    if not isinstance(raw, str) or "@" not in parseaddr(raw)[1] or "\n" in raw or "\r" in raw:
        raise InvalidInput(f"email channel: {what} {raw!r} is not an email address")
    return raw.strip()


def _smtp_error(exc: smtplib.SMTPResponseException) -> DeliveryFailed:
    message = (
        exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
    )
    # RFC 5321 section 4.2.1: 4yz is a transient failure, 5yz a permanent one.
    return DeliveryFailed(f"SMTP {exc.smtp_code} {message}".strip(), retryable=400 <= exc.smtp_code < 500)


@register
class EmailChannel(Channel):
    type_name = "email"
    takes_secret = True

    @classmethod
    def parse_options(cls, raw: Mapping[str, Any]) -> dict[str, Any]:
        reject_unknown(raw, {"url", "to", "from", "ca_file"}, cls.type_name)
        url = raw.get("url")
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme != "smtp" or not parts.hostname:
            raise InvalidInput(f"email channel: url {url!r} must be smtp://[user@]host[:port]")
        try:
            parts.port  # noqa: B018 - raises on a port that is not a number
        except ValueError:
            raise InvalidInput(f"email channel: url {url!r} has a bad port") from None
        recipients = raw.get("to")
        if isinstance(recipients, str):
            recipients = [recipients]
        if not isinstance(recipients, list) or not recipients:
            raise InvalidInput("email channel needs at least one 'to' address")
        ca_file = raw.get("ca_file")
        if ca_file is not None and (not isinstance(ca_file, str) or not Path(ca_file).is_file()):
            raise InvalidInput(f"email channel: ca_file {ca_file!r} is not a readable file")
        return {
            "url": str(url),
            "to": [_address(r, "to") for r in recipients],
            "from": _address(raw.get("from"), "from"),
            "ca_file": ca_file,
        }

    @classmethod
    def redacted(cls, options: Mapping[str, Any]) -> str:
        parts = urlsplit(str(options.get("url", "")))
        return (
            f"smtp://{parts.hostname}:{parts.port or SUBMISSION_PORT} to {', '.join(options.get('to', []))}"
        )

    def _message(self, notice: Notice) -> EmailMessage:
        subject, text = email_text(notice.document)
        message = EmailMessage()
        message["From"] = self.options["from"]
        message["To"] = ", ".join(self.options["to"])
        message["Subject"] = subject
        message["Date"] = formatdate(usegmt=True)
        domain = parseaddr(self.options["from"])[1].rpartition("@")[2] or "certfleet.invalid"
        message["Message-ID"] = make_msgid(idstring=f"certfleet.{notice.event_id}", domain=domain)
        message["X-Certfleet-Event"] = notice.kind
        message["X-Certfleet-Event-Id"] = str(notice.event_id)
        message.set_content(text)
        return message

    def send(self, notice: Notice) -> str:
        parts = urlsplit(self.options["url"])
        host, port = parts.hostname or "", parts.port or SUBMISSION_PORT
        username = unquote(parts.username) if parts.username else None
        tls = ssl.create_default_context(cafile=self.options.get("ca_file"))
        message = self._message(notice)
        try:
            # local_hostname: without it smtplib asks DNS for our FQDN on every connection.
            with smtplib.SMTP(
                host, port, timeout=self.context.timeout_seconds, local_hostname=socket.gethostname()
            ) as smtp:
                smtp.ehlo()
                if not smtp.has_extn("starttls"):
                    raise DeliveryFailed(
                        f"{host}:{port} offers no STARTTLS: refusing to send in clear", retryable=False
                    )
                smtp.starttls(context=tls)
                smtp.ehlo()
                if username:
                    smtp.login(username, self.secret or "")
                refused = smtp.send_message(message)
        except DeliveryFailed:
            raise
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            transient = all(400 <= code < 500 for code in codes)
            raise DeliveryFailed(
                f"every recipient refused ({', '.join(map(str, codes))})", retryable=transient
            ) from exc
        except smtplib.SMTPResponseException as exc:
            raise _smtp_error(exc) from exc
        except ssl.SSLCertVerificationError as exc:
            raise DeliveryFailed(
                f"{host}:{port}: certificate not trusted ({exc.verify_message})", retryable=False
            ) from exc
        except (OSError, smtplib.SMTPException) as exc:  # refused, reset, timed out, disconnected
            raise DeliveryFailed(
                f"cannot reach {host}:{port}: {exc or type(exc).__name__}", retryable=True
            ) from exc
        accepted = len(self.options["to"]) - len(refused)
        return f"accepted for {accepted} of {len(self.options['to'])} recipients"
