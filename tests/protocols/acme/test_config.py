"""The ``[acme]`` section of config.toml and the ``serve`` flags that override it."""

from __future__ import annotations

from pathlib import Path

import pytest

from certfleet.cli.acme import with_acme_options
from certfleet.config import load_settings
from certfleet.errors import ConfigurationError
from certfleet.protocols.acme.networks import NetworkPolicy


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
        ("[acme]\ndeny_networks = '10.0.0.0/8'\n", "acme.deny_networks must be a list"),
        (
            "[acme]\ndeny_networks = ['10.0.0.0/33']\n",
            "acme.deny_networks: '10.0.0.0/33' is not a CIDR range",
        ),
        ("[acme]\ndeny_networks = ['intranet']\n", "acme.deny_networks: 'intranet' is not a CIDR range"),
        ("[acme]\ndeny_networks = [10]\n", "acme.deny_networks: 10 is not a string"),
        (
            "[acme]\ndeny_networks = ['10.1.2.3/8']\n",
            "'10.1.2.3/8' is not a CIDR range like 10.0.0.0/8 or fd00::/8 (10.1.2.3/8 has host bits set)",
        ),
    ],
)
def test_bad_values_are_refused(data_dir: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        _load(data_dir, text)
    assert message in caught.value.detail
    assert "config.toml" in caught.value.detail  # the file the bad value is in


def test_deny_networks_add_to_the_ranges_always_denied(data_dir: Path) -> None:
    assert _load(data_dir, "").acme.deny_networks == ()
    assert NetworkPolicy.from_settings(_load(data_dir, "").acme).denied_by("127.0.0.1") is None
    acme = _load(data_dir, '[acme]\ndeny_networks = ["10.0.0.0/8", "fd00::/8", "192.0.2.7"]\n').acme
    assert [str(n) for n in acme.deny_networks] == ["10.0.0.0/8", "fd00::/8", "192.0.2.7/32"]
    policy = NetworkPolicy.from_settings(acme)
    assert str(policy.denied_by("10.1.2.3")) == "10.0.0.0/8"
    assert str(policy.denied_by("::ffff:10.1.2.3")) == "10.0.0.0/8"
    assert str(policy.denied_by("169.254.169.254")) == "169.254.0.0/16"  # still denied
    assert policy.denied_by("192.0.2.8") is None


def test_durations_go_through_the_one_table_parser(data_dir: Path) -> None:
    acme = _load(data_dir, "[acme]\nari_retry_after_seconds = 0\ncaa_identities = ['PKI.Example.']\n").acme
    assert acme.ari_retry_after.total_seconds() == 0  # "ask again at once" is a valid answer
    assert acme.caa_identities == ("pki.example",)
    for text in ("authz_reuse_days = 0", "nonce_lifetime_seconds = -1", "caa_recheck_hours = true"):
        with pytest.raises(ConfigurationError) as caught:
            _load(data_dir, f"[acme]\n{text}\n")
        assert f"acme.{text.split()[0]} must be a positive number" in caught.value.detail
