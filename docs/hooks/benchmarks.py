"""MkDocs hook: the benchmarks page is bench/README.md itself, rendered at build time, so the
figures have one home and the site never shows a stale copy."""

from __future__ import annotations

from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

PAGE = "benchmarks.md"


def on_files(files: Files, config: MkDocsConfig) -> Files:
    source = Path(config.config_file_path).parent / "bench" / "README.md"
    files.append(File.generated(config, PAGE, content=source.read_text(encoding="utf-8")))
    return files
