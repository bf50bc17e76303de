"""``certfleet rotate --select 'key_type=...' --to-profile P``: the campaign runs, then says
what exposure remains for the selected team (the crypto report's count); a bad target is one
line and exit 2."""

from __future__ import annotations

from certfleet.app import Platform
from certfleet.x509 import KeyType
from tests.conftest import Cli
from tests.lifecycle.fleet import issue


def test_rotate_to_a_profile_reports_the_remaining_exposure(cli: Cli, platform: Platform) -> None:
    issue(platform, "rsa.web.test", key_type=KeyType.RSA_2048, team="web")
    result = cli("rotate", "--select", "key_type=rsa-2048,team=web", "--to-profile", "tls-server-client")
    assert result.exit_code == 0, result.stderr
    assert "campaign " in result.stdout and "1 certificates" in result.stdout
    # A classic profile moves nothing off RSA: the team's one certificate is still vulnerable
    assert "remaining exposure (team web): 1 quantum-vulnerable of 1 certificates" in result.stdout


def test_a_bad_target_profile_is_one_line_and_exit_2(cli: Cli, platform: Platform) -> None:
    issue(platform, "rsa.web.test", key_type=KeyType.RSA_2048, team="web")
    result = cli("rotate", "--select", "key_type=rsa-2048", "--to-profile", "nope")
    assert result.exit_code == 2
    assert result.stderr.strip().count("\n") == 0 and "--to-profile: unknown profile 'nope'" in result.stderr
