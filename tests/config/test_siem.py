"""``[audit.siem]``: where the audit log is streamed, checked once when the file is read."""

from __future__ import annotations

from pathlib import Path

import pytest

from certfleet.config import load_settings
from certfleet.config._siem import SiemSettings
from certfleet.errors import ConfigurationError


def _load(data_dir: Path, text: str) -> SiemSettings | None:
    (data_dir / "config.toml").write_text(text)
    return load_settings({}, data_dir=data_dir).audit.siem


def test_absent_means_nothing_is_streamed(tmp_path: Path) -> None:
    assert _load(tmp_path, "") is None
    assert _load(tmp_path, "[audit]\n") is None


def test_relp_is_chosen_by_transport_with_its_acknowledgement_timeout(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("x")
    common = f'host = "siem.example.test"\nca_file = "{tmp_path / "ca.pem"}"\n'
    plain = _load(tmp_path, "[audit.siem]\n" + common)
    assert plain is not None and (plain.transport, plain.ack_timeout_seconds) == ("tcp", 30.0)
    relp = _load(
        tmp_path, f'[audit.siem]\n{common}transport = "relp"\nport = 2514\nack_timeout_seconds = 5\n'
    )
    assert relp is not None
    assert (relp.transport, relp.port, relp.ack_timeout_seconds) == ("relp", 2514, 5.0)


def test_a_collector_with_its_ca_and_a_client_certificate(tmp_path: Path) -> None:
    for name in ("ca.pem", "client.pem", "client.key"):
        (tmp_path / name).write_text("x")
    siem = _load(
        tmp_path,
        f"""[audit.siem]
host = "siem.example.test"
port = 6514
ca_file = "{tmp_path / "ca.pem"}"
client_cert = "{tmp_path / "client.pem"}"
client_key = "{tmp_path / "client.key"}"
format = "json"
""",
    )
    assert siem is not None
    assert (siem.host, siem.port, siem.format, siem.replay_entries) == (
        "siem.example.test",
        6514,
        "json",
        1000,
    )
    assert siem.client_key == str(tmp_path / "client.key")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('host = "h"\n', "audit.siem.ca_file is required"),
        (
            'host = "h"\nca_file = "/nonexistent/ca.pem"\n',
            "audit.siem.ca_file: no such file /nonexistent/ca.pem",
        ),
        (
            'host = "h"\nca_file = "CA"\nformat = "cef"\n',
            "audit.siem.format must be one of 'rfc5424', 'json'",
        ),
        ('host = "h"\nca_file = "CA"\nprot = 6514\n', "unknown key"),
        ('host = "h"\nca_file = "CA"\nclient_cert = "CA"\n', "client_cert and client_key go together"),
        ('host = "h"\nca_file = "CA"\nport = 70000\n', "audit.siem.port must be from 1 to 65535"),
        ("port = 6514\n", "[audit.siem] needs host, port and ca_file"),
        (
            'host = "h"\nca_file = "CA"\ntransport = "udp"\n',
            "audit.siem.transport must be one of 'tcp', 'relp'",
        ),
        (
            'host = "h"\nca_file = "CA"\ntransport = "relp"\nack_timeout_seconds = 0\n',
            "audit.siem.ack_timeout_seconds must be from 0.1 to 3600",
        ),
    ],
)
def test_mistakes_are_refused_with_the_file_and_key(tmp_path: Path, body: str, message: str) -> None:
    (tmp_path / "ca.pem").write_text("x")
    with pytest.raises(ConfigurationError) as caught:
        _load(tmp_path, "[audit.siem]\n" + body.replace('"CA"', f'"{tmp_path / "ca.pem"}"'))
    assert message in str(caught.value)
    assert str(tmp_path / "config.toml") in str(caught.value)


def test_an_unknown_audit_table_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="siem"):
        _load(tmp_path, "[audit.sime]\nhost = 'h'\n")
