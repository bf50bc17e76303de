"""The ``[acme]`` section of config.toml and the ``serve`` flags that override it."""

from __future__ import annotations

from pathlib import Path

import pytest

from certfleet.cli.acme import with_acme_options
from certfleet.config import load_settings
from certfleet.errors import ConfigurationError


def _load(data_dir: Path, text: str):  # type: ignore[no-untyped-def]
    (data_dir / "config.toml").write_text(text)
    return load_settings({}, data_dir=data_dir)


def test_defaults(data_dir: Path) -> None:
    acme = _load(data_dir, "").acme
    assert (acme.http01_port, acme.tlsalpn01_port, acme.resolver, acme.require_eab) == (80, 443, None, False)


def test_values_and_flag_overrides(data_dir: Path) -> None:
    text = """
[acme]
require_eab = true
resolver = "127.0.0.1:5353"
http01_port = 5002
caa_identities = ["pki.example"]
"""
    settings = _load(data_dir, text)
    assert settings.acme.require_eab and settings.acme.resolver == ("127.0.0.1", 5353)
    assert settings.acme.caa_identities == ("pki.example",)
    moved = with_acme_options(settings, "[::1]:53", 8080, 8443)
    assert (moved.acme.resolver, moved.acme.http01_port, moved.acme.tlsalpn01_port) == (
        ("::1", 53),
        8080,
        8443,
    )
    assert moved.acme.require_eab


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[acme]\nhttp01_port = 0\n", "http01_port"),
        ("[acme]\nrequire_eab = 'yes'\n", "require_eab"),
        ("[acme]\nresolvr = '1.1.1.1'\n", "unknown key"),
        ("[acme]\nresolver = '1.1.1.1:99999'\n", "bad resolver"),
        ("acme = 3\n", "must be a table"),
    ],
)
def test_bad_values_are_refused(data_dir: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        _load(data_dir, text)
    assert message in caught.value.detail
