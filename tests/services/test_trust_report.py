"""The consolidation report's reasoning: which leaves chain to which trusted root (an
intermediate met elsewhere still completes the path), per team, and what would break when
a root expires."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from certfleet.app import Platform
from certfleet.discovery.requests import FileScanRequest
from tests.discovery.pki import Pki, pem


def _scan(platform: Platform, path: Path, team: str | None = None, host: str = "h1") -> None:
    platform.discovery.scan_files(FileScanRequest(paths=(str(path),), team=team, host=host), actor="test")


def test_a_leaf_without_its_intermediate_still_counts_for_its_root(
    platform: Platform, tmp_path: Path
) -> None:
    soon = Pki("Soon", now=platform.clock.now() - dt.timedelta(days=3640))  # its root expires in ten days
    bundle = tmp_path / "host/etc/ssl/certs/ca-certificates.crt"
    bundle.parent.mkdir(parents=True)
    bundle.write_bytes(pem(soon.root.cert))
    _scan(platform, tmp_path / "host")
    # the intermediate seen in one place, a leaf sent without it in another, for two teams
    (tmp_path / "ca").mkdir()
    (tmp_path / "ca/intermediate.pem").write_bytes(pem(soon.intermediate.cert))
    _scan(platform, tmp_path / "ca")
    for team in ("web", "pay"):
        leaf = tmp_path / team / "leaf.pem"
        leaf.parent.mkdir()
        leaf.write_bytes(pem(soon.leaf([f"{team}.test"], not_before=platform.clock.now()).cert))
        _scan(platform, leaf.parent, team=team)

    report = platform.discovery.trust_report(None, horizon_days=30)
    [root] = report.roots
    assert (root["subject"], root["leaves"], root["hosts"]) == ("CN=Soon Root", 2, ["h1"])
    assert report.unused_roots == []
    [expiring] = report.expiring_roots
    assert expiring["would_break"] == sorted(str(tmp_path / t / "leaf.pem") for t in ("pay", "web"))
    assert [(i["team"], i["leaves"]) for i in report.issuers] == [("pay", 1), ("web", 1)]

    mine = platform.discovery.trust_report(None, horizon_days=5, team="web")
    assert mine.roots[0]["leaves"] == 1 and mine.expiring_roots == []
    assert [i["team"] for i in mine.issuers] == ["web"]
