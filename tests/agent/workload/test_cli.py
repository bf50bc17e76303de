"""``certfleet agent run`` with a ``spiffe:`` section: refusals are one line, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from certfleet.cli.main import main as cli_main


def _run(tmp_path: Path, capsys: pytest.CaptureFixture[str], config: str) -> tuple[int, str]:
    (tmp_path / "agent.yaml").write_text(config)
    capsys.readouterr()
    code = cli_main(
        ["agent", "run", "--config", str(tmp_path / "agent.yaml"), "--state-dir", str(tmp_path / "state")]
    )
    return code, capsys.readouterr().err


def test_the_workload_api_needs_an_enrolled_host(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _run(tmp_path, capsys, f"spiffe:\n  trust_domain: example.org\n  socket: {tmp_path}/a.sock\n")
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert "serves the SPIFFE Workload API" in err and "certfleet agent enroll" in err
    assert not (tmp_path / "a.sock").exists()


def test_a_bad_spiffe_section_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _run(tmp_path, capsys, "spiffe:\n  trust_domain: example.org\n  attestors: [k8s]\n")
    assert code == 2
    assert err.strip().endswith("spiffe.attestors: must be a list of: unix")
    assert len(err.strip().splitlines()) == 1
