"""agent.yaml's trust-store keys: defaults, and each bad value named precisely."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from certfleet.agent.config import parse_config
from certfleet.agent.errors import AgentConfigError

BASE: dict[str, Any] = {
    "server": "https://certfleet.test",
    "allowed_dirs": ["/etc/tls"],
    "certificates": [{"name": "web", "names": ["web.test"], "files": {"fullchain": "/etc/tls/web.pem"}}],
}


def test_defaults_report_the_hosts_stores_and_manage_nothing() -> None:
    trust = parse_config(BASE, "agent.yaml").trust
    assert (trust.report, trust.system, trust.root) == (True, False, Path("/"))
    assert parse_config({**BASE, "report_trust_stores": False}, "agent.yaml").trust.report is False
    assert trust.anchors_dir == Path("/usr/local/share/ca-certificates")
    assert trust.update_command == ("update-ca-certificates",)


def test_system_store_settings_are_read() -> None:
    spec = {
        **BASE,
        "trust_store": "system",
        "report_trust_stores": True,
        "trust_anchors_dir": "/srv/anchors",
        "trust_update_command": ["update-ca-certificates", "--fresh"],
    }
    trust = parse_config(spec, "agent.yaml").trust
    assert (trust.system, trust.report, trust.anchors_dir) == (True, True, Path("/srv/anchors"))
    assert trust.update_command == ("update-ca-certificates", "--fresh")


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("trust_store", "java", "agent.yaml: trust_store: 'java' is not a trust store certfleet manages"),
        ("report_trust_stores", "yes", "agent.yaml: report_trust_stores: must be true or false"),
        ("trust_anchors_dir", "relative/dir", "agent.yaml: trust_anchors_dir: must be an absolute path"),
        ("trust_update_command", [], "agent.yaml: trust_update_command: must be a non-empty list"),
    ],
)
def test_bad_values_are_named(key: str, value: object, message: str) -> None:
    with pytest.raises(AgentConfigError) as raised:
        parse_config({**BASE, key: value}, "agent.yaml")
    assert str(raised.value.detail).startswith(message)
