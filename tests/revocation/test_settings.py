from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from certfleet.config import load_settings, parse_table
from certfleet.errors import ConfigurationError
from certfleet.revocation import RevocationSettings


def from_table(table: dict[str, object]) -> RevocationSettings:
    return parse_table(RevocationSettings, table, "config.toml", "revocation")


def test_defaults_follow_the_issue_and_the_baseline_requirements() -> None:
    settings = RevocationSettings()
    assert settings.crl_validity == dt.timedelta(days=7)
    assert settings.ocsp_validity == dt.timedelta(days=4)
    assert settings.delegated


def test_config_table_sets_each_value_in_its_unit() -> None:
    settings = from_table(
        {
            "crl_validity_days": 10,
            "delta_crl_validity_hours": 6,
            "ocsp_validity_hours": 12,
            "ocsp_responder_lifetime_days": 2,
            "ocsp_signing": "ca",
            "maintenance_interval_seconds": 0.5,
            "presign_batch": 10,
        }
    )
    assert settings.crl_validity == dt.timedelta(days=10)
    assert settings.delta_crl_validity == dt.timedelta(hours=6)
    assert settings.ocsp_validity == dt.timedelta(hours=12)
    assert settings.responder_lifetime == dt.timedelta(days=2)
    assert not settings.delegated
    assert settings.maintenance_interval_seconds == 0.5
    assert settings.presign_batch == 10


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"crl_validity_days": 11}, "at most 10"),
        ({"crl_validity_days": 10.5}, "at most 10"),
        ({"crl_validity_days": 0}, "positive"),
        ({"crl_validity_days": "7"}, "positive number"),
        ({"crl_validity_days": True}, "positive number"),
        ({"delta_crl_validity_hours": 24 * 8}, "at most the CRL validity"),
        ({"ocsp_validity_hours": 4}, "between 8 and 240"),
        ({"ocsp_validity_hours": 241}, "between 8 and 240"),
        ({"ocsp_signing": "hsm"}, "'delegated' or 'ca'"),
        ({"ocsp_responder_lifetime_days": 5}, "twice the OCSP validity"),
        ({"presign_batch": 0}, "between 1 and 100000"),
        (
            {"crl_validty_days": 7},
            "unknown key .revocation. crl_validty_days; did you mean crl_validity_days",
        ),
    ],
)
def test_bad_values_are_refused_with_the_setting_named(table: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        from_table(table)


def test_load_settings_reads_the_revocation_table_of_config_toml(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    assert load_settings({}, data_dir=tmp_path).revocation == RevocationSettings()
    config.write_text('public_base_url = "http://x.test"\n[revocation]\ncrl_validity_days = 3\n')
    assert load_settings({}, data_dir=tmp_path).revocation.crl_validity == dt.timedelta(days=3)
    config.write_text("[revocation]\ncrl_validity_days = 12\n")
    with pytest.raises(ConfigurationError, match=r"config.toml: revocation.crl_validity_days .*at most 10"):
        load_settings({}, data_dir=tmp_path)
    config.write_text("revocation = 1\n")
    with pytest.raises(ConfigurationError, match=r"config.toml: \[revocation\] must be a table"):
        load_settings({}, data_dir=tmp_path)
