"""``certfleet rotate --select 'key_type=rsa-2048' --to-profile P`` (issue 17), on SQLite and
PostgreSQL: every successor is issued under the target profile (so from the CA it names) and,
when the profile certifies only some key types, with a new key of its first type; the
campaign refuses a profile it does not know and a --to-ca beside it."""

from __future__ import annotations

from pathlib import Path

import pytest

from certfleet.app import Platform
from certfleet.errors import InvalidInput
from certfleet.lifecycle.campaigns import CampaignRequest, ItemAction, ItemState
from certfleet.lifecycle.selection import Selection
from certfleet.x509 import KeyType, generate_private_key
from tests.lifecycle.fleet import issue
from tests.services.snapshot import rows


def test_a_campaign_reissues_under_the_target_profile(platform: Platform) -> None:
    # Given RSA-2048 server certificates of team web, and one of another team
    key = generate_private_key(KeyType.RSA_2048)
    web = [issue(platform, f"rsa{i}.web.test", key=key, team="web").record for i in range(2)]
    other = issue(platform, "rsa.db.test", key=key, team="db").record
    # When a campaign moves team web's RSA-2048 certificates to the tls-server-client profile
    request = CampaignRequest(Selection.parse("key_type=rsa-2048,team=web"), to_profile="tls-server-client")
    plan = platform.rotation.preview(request)
    assert [(p.record.serial, p.action) for p in plan] == [(r.serial, ItemAction.REISSUE) for r in web]
    campaign = platform.rotation.create(request, actor="test")
    assert campaign.to_profile == "tls-server-client"
    assert platform.rotation.get(campaign.id).to_profile == "tls-server-client"  # stored
    report = platform.rotation.run(campaign.id)
    # Then each successor has the target profile, the same key and names, and the other
    # team's certificate is untouched
    assert report.counts.of(ItemState.REISSUED) == 2
    assert report.campaign.to_dict()["to_profile"] == "tls-server-client"
    successors = rows(
        platform.database,
        "SELECT c.profile, c.key_algorithm, c.key_size, c.team FROM certificate_lineage l "
        "JOIN certificates c ON c.id = l.certificate_id WHERE l.supersedes_id IN (:a, :b)",
        a=web[0].id,
        b=web[1].id,
    )
    assert sorted(successors) == [("tls-server-client", "rsa", 2048, "web")] * 2
    assert rows(platform.database, "SELECT profile FROM certificates WHERE id = :i", i=other.id) == [
        ("tls-server",)
    ]


def test_a_profile_with_key_types_asks_for_a_new_key_of_its_type(platform: Platform, tmp_path: Path) -> None:
    issue(platform, "rsa.web.test", key_type=KeyType.RSA_2048, team="web")
    request = CampaignRequest(Selection.parse("key_type=rsa-2048"), to_profile="internal-mtls-pq")
    [planned] = platform.rotation.preview(request)
    # The profile certifies ML-DSA only: the key holder must make an ML-DSA-65 key
    assert planned.action is ItemAction.REKEY
    assert "ml-dsa-65" in planned.note
    with_keys = CampaignRequest(request.selection, to_profile="internal-mtls-pq", generate_dir=tmp_path / "k")
    assert platform.rotation.preview(with_keys)[0].action is ItemAction.GENERATE


@pytest.mark.parametrize(
    ("request_kwargs", "detail"),
    [
        ({"to_profile": "no-such-profile"}, "--to-profile: unknown profile 'no-such-profile'"),
        ({"to_profile": "tls-server", "to_ca": "abc"}, "--to-profile chooses the CA"),
        (
            {"to_profile": "internal-mtls-pq", "to_key_type": KeyType.EC_P256},
            "profile internal-mtls-pq certifies ml-dsa-65",
        ),
    ],
)
def test_bad_targets_are_refused_precisely(
    platform: Platform, request_kwargs: dict[str, object], detail: str
) -> None:
    issue(platform, "rsa.web.test", key_type=KeyType.RSA_2048, team="web")
    request = CampaignRequest(Selection.parse("key_type=rsa-2048"), **request_kwargs)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match=detail):
        platform.rotation.create(request, actor="test")
    assert rows(platform.database, "SELECT count(*) FROM rotation_campaigns") == [(0,)]
