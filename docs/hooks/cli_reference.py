"""MkDocs hook: the CLI reference (``reference/cli.md``), generated at build time from the
click command tree of ``certfleet.cli.main``, so a command added to ``COMMANDS`` (or to any
group below it) appears without editing the docs. Lazy groups (``cli/_lazy.py``) are loaded
here by naming each command, exactly as ``certfleet <command> --help`` would."""

from __future__ import annotations

import inspect
import re
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

PAGE = "reference/cli.md"

_INTRO = """# CLI reference

Generated from the commands themselves (`certfleet <command> --help` shows the same text).
Every command takes `--data-dir DIR` (env `CERTFLEET_HOME`) and `--db URL` (env `CERTFLEET_DB`),
also before the subcommand (`certfleet --data-dir D ca list`). A usage error prints the usage and
`Error: ...` and exits 2; a refused request prints one line (`error: ...`) and exits 2.
"""


def anchor(command_path: str) -> str:
    """The heading id of a command: ``certfleet ca rotate`` -> ``certfleet-ca-rotate``."""
    return re.sub(r"[^a-z0-9]+", "-", command_path.lower()).strip("-")


def escape(text: str) -> str:
    """Help text as literal Markdown: no emphasis from ``*.example.test``, no HTML from ``<str>``."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return re.sub(r"([\\`*_\[\]])", r"\\\1", text)


def _help_paragraphs(command: Any) -> str:
    text = inspect.cleandoc(command.help or "")
    # click's "\b" marks a paragraph it must not rewrap: keep its lines as they are.
    paragraphs = []
    for block in re.split(r"\n\s*\n", text):
        if block.startswith("\b"):
            lines = block.splitlines()[1:]
            paragraphs.append("<br>\n".join(escape(line) for line in lines))
        else:
            paragraphs.append(escape(" ".join(block.split())))
    return "\n\n".join(p for p in paragraphs if p)


def _subcommands(command: Any, ctx: Any) -> list[tuple[str, Any]]:
    if not hasattr(command, "list_commands"):
        return []
    found = []
    for name in command.list_commands(ctx):
        sub = command.get_command(ctx, name)
        if sub is not None and not getattr(sub, "hidden", False):
            found.append((name, sub))
    return found


def _render(command: Any, ctx: Any, depth: int, out: list[str]) -> None:
    import typer

    path = ctx.command_path
    level = "#" * min(max(depth, 2), 6)  # the root and its commands at ##, subcommands below
    out.append(f"{level} `{path}` {{ #{anchor(path)} }}\n")
    helptext = _help_paragraphs(command)
    if helptext:
        out.append(helptext + "\n")
    usage = " ".join([path, *command.collect_usage_pieces(ctx)])
    out.append(f"```text\nUsage: {usage}\n```\n")
    records = []
    for param in command.get_params(ctx):
        if getattr(param, "hidden", False):
            continue
        record = param.get_help_record(ctx)
        if record is not None:
            records.append((param.param_type_name, record))
    for kind, title in (("argument", "Arguments"), ("option", "Options")):
        rows = [record for param_kind, record in records if param_kind == kind]
        if rows:
            out.append(f"**{title}**\n")
            out.extend(f"- `{name}`: {escape(text)}" if text else f"- `{name}`" for name, text in rows)
            out.append("")
    children = _subcommands(command, ctx)
    if children:
        out.append("**Commands**\n")
        for name, sub in children:
            sub_path = f"{path} {name}"
            short = escape(sub.get_short_help_str(limit=200))
            out.append(f"- [`{name}`](#{anchor(sub_path)}): {short}")
        out.append("")
        for name, sub in children:
            _render(sub, typer.Context(sub, info_name=name, parent=ctx), depth + 1, out)


def cli_reference_markdown() -> str:
    """The whole reference page, from ``certfleet``'s click command tree."""
    import typer

    from certfleet.cli.main import app

    root = typer.main.get_command(app)
    out = [_INTRO]
    _render(root, typer.Context(root, info_name="certfleet"), 1, out)
    return "\n".join(out) + "\n"


def on_files(files: Files, config: MkDocsConfig) -> Files:
    files.append(File.generated(config, PAGE, content=cli_reference_markdown()))
    return files
