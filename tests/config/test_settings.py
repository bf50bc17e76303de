"""``load_settings``: config.toml read once into every section; unknown keys and sections refused."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import get_args

import pytest

from certfleet.access import Scope
from certfleet.config import (
    SECTION_NAMES,
    LifecycleSettings,
    MetricsScope,
    MetricsSettings,
    RevocationSettings,
    ServerSettings,
    Settings,
    load_settings,
)
from certfleet.errors import ConfigurationError


def load(data_dir: Path, text: str) -> Settings:
    (data_dir / "config.toml").write_text(text)
    return load_settings({}, data_dir=data_dir)


def test_without_a_file_every_section_has_its_defaults(tmp_path: Path) -> None:
    settings = load_settings({}, data_dir=tmp_path)
    assert settings.server == ServerSettings()
    assert settings.revocation == RevocationSettings()
    assert settings.lifecycle == LifecycleSettings()
    assert settings.metrics == MetricsSettings()


def test_every_section_is_parsed_into_settings(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        """
public_base_url = "http://pki.example.test:8080/"
[server]
https = "[::1]:9443"
server_names = ["pki.example.test"]
sqlite_lock_wait_seconds = 5
[acme]
http01_port = 5002
[revocation]
crl_validity_days = 3
ocsp_signing = "ca"
[lifecycle]
scheduler = false
interval_seconds = 5
[metrics]
scope = "admin"
listen = "127.0.0.1:9464"
cache_seconds = 0
""",
    )
    assert settings.public_base_url == "http://pki.example.test:8080"
    assert (settings.server.https_bind, settings.server.server_names) == (
        ("::1", 9443),
        ("pki.example.test",),
    )
    assert settings.server.sqlite_lock_wait_seconds == 5.0
    assert settings.acme.http01_port == 5002
    assert settings.revocation.crl_validity == dt.timedelta(days=3) and not settings.revocation.delegated
    assert settings.lifecycle == LifecycleSettings(scheduler=False, interval_seconds=5.0)
    assert settings.metrics == MetricsSettings(scope="admin", listen=("127.0.0.1", 9464), cache_seconds=0.0)


def test_the_public_url_defaults_to_the_http_listener(tmp_path: Path) -> None:
    assert load(tmp_path, '[server]\nhttp = "[::1]:8081"\n').public_base_url == "http://[::1]:8081"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[lifecycle]\nintervl_seconds = 3\n",
            "unknown key [lifecycle] intervl_seconds; did you mean interval_seconds?",
        ),
        (
            "[revocation]\ncrl_validty_days = 3\n",
            "unknown key [revocation] crl_validty_days; did you mean crl_validity_days?",
        ),
        ("[metrics]\nscop = 'read'\n", "unknown key [metrics] scop; did you mean scope?"),
        ("[server]\nhttps_bind = '127.0.0.1:1'\n", "unknown key [server] https_bind; did you mean https?"),
        ("[acme]\nresolvr = '1.1.1.1'\n", "unknown key [acme] resolvr; did you mean resolver?"),
        ("publc_base_url = 'http://x.test'\n", "unknown key publc_base_url; did you mean public_base_url?"),
        ("[lifecycel]\nbatch_size = 3\n", "unknown section [lifecycel]; did you mean [lifecycle]?"),
        ("[smtp]\nhost = 'x'\n", "unknown section [smtp]; known: acme, audit, ca_passphrase_file,"),
    ],
)
def test_unknown_keys_and_sections_are_refused_with_a_suggestion(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load(tmp_path, text)
    assert caught.value.detail.startswith(f"{tmp_path / 'config.toml'}: {message}")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[lifecycle]\nbatch_size = 2.5\n", "lifecycle.batch_size must be an integer"),
        (
            "[revocation]\ncrl_validity_days = 12\n",
            "revocation.crl_validity_days must be more than 0 and at most 10",
        ),
        ("[metrics]\nscope = 'root'\n", "metrics.scope must be one of 'read', 'issue', 'revoke', 'admin'"),
        ("[server]\nmax_body_bytes = true\n", "server.max_body_bytes must be an integer"),
        (
            "[server]\nsqlite_lock_wait_seconds = 0\n",
            "server.sqlite_lock_wait_seconds must be a number from 0.1 to 3600",
        ),
        ("lifecycle = 3\n", "[lifecycle] must be a table"),
        ("database_url = 3\n", "database_url must be a string"),
    ],
)
def test_a_wrong_value_is_one_line_naming_file_section_and_key(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load(tmp_path, text)
    assert caught.value.detail == f"{tmp_path / 'config.toml'}: {message}"
    assert "\n" not in caught.value.detail


def test_the_sections_are_the_fields_of_settings() -> None:
    section_fields = {"server", "acme", "revocation", "lifecycle", "metrics", "web", "keys", "audit"}
    assert set(SECTION_NAMES) == section_fields
    assert section_fields <= set(Settings.__dataclass_fields__)


def test_the_metrics_scopes_are_the_token_scopes() -> None:
    # config sits below certfleet.access and names the scopes itself; they must stay equal.
    assert set(get_args(MetricsScope)) == {scope.value for scope in Scope}
