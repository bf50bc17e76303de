"""Compliance presets: rule packs shipped with certfleet, layered onto a policy by naming
them (``presets: [cabf-tls]`` in the document, ``certfleet policy apply --preset cabf-tls``).

Each preset is a policy document (``<name>.yaml`` beside this module) in the ordinary rule
language; every rule is one clause of the standard, its ``description`` the citation a
compliance report prints. A stored policy names its presets rather than copying them, so
the clauses are those of the certfleet release that judges (each file carries a revision).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from importlib import resources

import yaml

__all__ = ["PRESET_NAMES", "layer_presets", "preset_document"]

_FLOW_PRESETS = re.compile(r"^presets:[ \t]*\[[^\]\n]*\][ \t]*$", re.MULTILINE)

PRESET_NAMES = ("cabf-tls", "nist-sp800-131a", "nist-sp800-57")


def preset_document(name: str) -> str:
    """The rules of preset ``name`` (one of :data:`PRESET_NAMES`) as a policy document."""
    if name not in PRESET_NAMES:
        raise KeyError(name)
    return resources.files(__name__).joinpath(f"{name}.yaml").read_text(encoding="utf-8")


def layer_presets(document: str | None, names: Sequence[str]) -> str:
    """``document`` (a policy's YAML, or None for none) with ``names`` added to its
    ``presets`` list: its own rules are kept as written and the presets layered after them
    (every rule must hold, so the stricter wins). Unchanged text when all are there already.
    Names are not checked here: parsing the result refuses an unknown one."""
    text = document or ""
    try:
        loaded = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError:
        loaded = None  # parsing the result reports it, at the same line (appended below)
    present = loaded.get("presets") if isinstance(loaded, dict) else None
    existing = [str(p) for p in present] if isinstance(present, list) else []
    merged = existing + [n for n in dict.fromkeys(names) if n not in existing]
    if merged == existing and existing:
        return text
    line = f"presets: [{', '.join(merged)}]"
    if present is None:
        # Appended, so the lines of the document's own rules (and of its errors) stay put.
        separator = "" if not text or text.endswith("\n") else "\n"
        return f"{text}{separator}{line}\n"
    if _FLOW_PRESETS.search(text):
        return _FLOW_PRESETS.sub(line, text, count=1)
    assert isinstance(loaded, dict)
    # A block-style list written by hand: re-serialised (its comments are lost).
    return str(yaml.safe_dump({**loaded, "presets": merged}, sort_keys=False, allow_unicode=True))
