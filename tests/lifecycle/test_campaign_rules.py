"""Pure campaign rules: classification of items, the campaign status, CA expiry warnings,
and the [lifecycle] settings table."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest

from certfleet.config import load_settings
from certfleet.errors import ConfigurationError
from certfleet.lifecycle.ca_health import expiry_warnings
from certfleet.lifecycle.campaigns import (
    CampaignCounts,
    CampaignRequest,
    CampaignStatus,
    ItemAction,
    ItemState,
    classify,
)
from certfleet.lifecycle.selection import Selection
from certfleet.lifecycle.settings import LifecycleSettings
from certfleet.x509 import KeyType
from tests.lifecycle.test_selection import _record

NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
YEAR = dt.timedelta(days=365)


@pytest.mark.parametrize(
    ("tags", "from_acme", "to_key", "generate", "action"),
    [
        ((), False, None, False, ItemAction.REISSUE),
        ((), False, KeyType.RSA_2048, False, ItemAction.REISSUE),  # already that type
        ((), False, KeyType.EC_P256, False, ItemAction.REKEY),
        ((), False, KeyType.EC_P256, True, ItemAction.GENERATE),
        ((), True, KeyType.EC_P256, True, ItemAction.ARI),
        (("agent:web-1",), False, None, False, ItemAction.ARI),
        (("certfleet-server",), False, None, False, None),
    ],
)
def test_classification_follows_who_holds_the_key(
    tags: tuple[str, ...], from_acme: bool, to_key: KeyType | None, generate: bool, action: ItemAction | None
) -> None:
    request = CampaignRequest(
        Selection.parse("key=rsa"), to_key_type=to_key, generate_dir=Path("/keys") if generate else None
    )
    got, note = classify(_record(tags=tags), from_acme, request)
    assert got is action
    assert note


@pytest.mark.parametrize(
    ("states", "revoked", "revoke_required", "status"),
    [
        ({"pending": 1, "reissued": 3}, 0, False, CampaignStatus.RUNNING),
        ({"awaiting-key": 1, "reissued": 3}, 0, False, CampaignStatus.WAITING),
        ({"failed": 1, "reissued": 3}, 0, False, CampaignStatus.WAITING),
        ({"reissued": 3, "skipped": 1}, 0, False, CampaignStatus.COMPLETED),
        ({"reissued": 3}, 2, True, CampaignStatus.WAITING),
        ({"reissued": 3}, 3, True, CampaignStatus.COMPLETED),
    ],
)
def test_campaign_status(
    states: dict[str, int], revoked: int, revoke_required: bool, status: CampaignStatus
) -> None:
    counts = CampaignCounts(states, old_revoked=revoked)
    assert counts.status(revoke_required) is status
    assert counts.total == sum(states.values())
    assert counts.of(ItemState.REISSUED) == states.get("reissued", 0)


def _warn(role: str, left: dt.timedelta) -> list[str]:
    found = expiry_warnings(
        "ca1", role, NOW + left, NOW, intermediate_lifetime=5 * YEAR, leaf_lifetime=dt.timedelta(days=398)
    )
    return [w.severity for w in found]


def test_root_expiry_warnings() -> None:
    assert _warn("root", 9 * YEAR) == []
    assert _warn("root", 4 * YEAR) == ["warning"]  # a new intermediate would be cut short
    assert _warn("root", 200 * dt.timedelta(days=1)) == ["warning", "critical"]  # and leaves too
    assert _warn("root", -dt.timedelta(days=1)) == ["critical"]
    assert _warn("intermediate", 4 * YEAR) == []  # only roots sign intermediates
    assert _warn("intermediate", 100 * dt.timedelta(days=1)) == ["critical"]


def test_settings_from_config(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    assert load_settings({}, data_dir=tmp_path).lifecycle == LifecycleSettings()
    config.write_text(
        "[lifecycle]\ninterval_seconds = 0.5\nlease_seconds = 3\nbatch_size = 5\nscheduler = false\n"
    )
    settings = load_settings({}, data_dir=tmp_path).lifecycle
    assert (settings.interval_seconds, settings.lease, settings.batch_size) == (
        0.5,
        dt.timedelta(seconds=3),
        5,
    )
    assert settings.scheduler is False
    assert dataclasses.replace(settings, batch_size=7).batch_size == 7


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("interval_seconds = 0", "between"),
        ("interval_seconds = 'fast'", "must be a number"),
        ("batch_size = 2.5", "must be an integer"),
        ("scheduler = 1", "true or false"),
        ("colour = 1", "unknown key .lifecycle. colour"),
        ("batch_sise = 1", "unknown key .lifecycle. batch_sise; did you mean batch_size"),
    ],
)
def test_bad_settings_are_refused(tmp_path: Path, body: str, message: str) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f"[lifecycle]\n{body}\n")
    with pytest.raises(ConfigurationError, match=message):
        load_settings({}, data_dir=tmp_path)
