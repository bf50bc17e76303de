"""The documentation site builds with ``mkdocs build --strict`` (a broken link or anchor, a
page missing from the nav or a failing generator fails), and its generated references are
complete: every CLI command of the click tree and every path and method of the API's OpenAPI
document has its section, so a command or endpoint added anywhere shows up without a docs edit."""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer

from certfleet.api import create_api_app
from certfleet.cli.main import COMMANDS, app
from tests.conftest import FakeClock, make_platform

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("docs") / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(ROOT / "mkdocs.yml")]
    result = subprocess.run(
        [*command, "--site-dir", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return out


def _page(site: Path, name: str) -> str:
    return (site / name / "index.html").read_text(encoding="utf-8")


def _anchor(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _command_paths() -> Iterator[str]:
    """Every command of ``certfleet``, lazy groups and nested groups included."""
    root = typer.main.get_command(app)

    def walk(command: Any, ctx: Any) -> Iterator[str]:
        yield ctx.command_path
        for name in getattr(command, "list_commands", lambda _ctx: [])(ctx):
            sub = command.get_command(ctx, name)
            if not sub.hidden:
                yield from walk(sub, typer.Context(sub, info_name=name, parent=ctx))

    yield from walk(root, typer.Context(root, info_name="certfleet"))


def test_the_cli_reference_has_a_section_for_every_command(site: Path) -> None:
    page = _page(site, "reference/cli")
    text = html.unescape(page)
    for name in COMMANDS:
        assert f'id="certfleet-{_anchor(name)}"' in page, name
        assert f"certfleet {name}" in text
    paths = list(_command_paths())
    assert len(paths) > len(COMMANDS)  # the groups' subcommands were walked too
    for path in paths:
        assert f'id="{_anchor(path)}"' in page, path
    # Options and help come from the commands themselves.
    assert "--ca-fingerprint" in text
    assert "Usage: certfleet ca rotate [OPTIONS]" in text


def test_the_rest_reference_has_a_section_for_every_operation(site: Path, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)
    platform = make_platform(data_dir, f"sqlite:///{data_dir / 'certfleet.db'}", FakeClock())
    try:
        document = create_api_app(platform).openapi()  # the real app, on a real platform
    finally:
        platform.close()
    page = _page(site, "reference/rest")
    text = html.unescape(page)
    assert document["paths"]
    for path, item in document["paths"].items():
        for method in ("get", "post", "put", "patch", "delete"):
            if method in item:
                assert f'id="{_anchor(f"{method} {path}")}"' in page, f"{method} {path}"
                assert f"{method.upper()} {path}" in text
    for schema in document.get("components", {}).get("schemas", {}):
        assert f'id="schema-{_anchor(schema)}"' in page, schema


def test_the_benchmarks_page_is_bench_readme(site: Path) -> None:
    text = html.unescape(_page(site, "benchmarks"))
    headings = re.findall(r"^## (.+)$", (ROOT / "bench" / "README.md").read_text(), flags=re.MULTILINE)
    assert headings
    for heading in headings:
        assert heading.replace("`", "") in re.sub(r"<[^>]+>", "", text), heading
