"""The agent.yaml keys about trust stores (parsed here: ``config.py`` keeps the rest)::

    report_trust_stores: true     # (default) read the host's stores each run, report changes
    trust_store_root: /           # where the host's file system starts (an image, a test)
    trust_store: system           # keep certfleet's roots in the system store
    trust_anchors_dir: /usr/local/share/ca-certificates
    trust_update_command: [update-ca-certificates]

``report_trust_stores`` is on unless agent.yaml turns it off: the agent reports its host's
stores each run, sending them only when they changed since the last report accepted. A
stock Debian adds about 150 roots, deduplicated by fingerprint on the server (one row per
root, one location per host). A ``TrustSettings`` built in code (tests, embedders) reports
only when asked.

``trust_store: system`` also writes certfleet's other active roots (learned only over the
authenticated channel, see trust_anchors.py) beside the pinned one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["DEBIAN_ANCHORS_DIR", "TRUST_KEYS", "TrustSettings", "parse_trust"]

DEBIAN_ANCHORS_DIR = Path("/usr/local/share/ca-certificates")
TRUST_KEYS = frozenset(
    {"report_trust_stores", "trust_store_root", "trust_store", "trust_anchors_dir", "trust_update_command"}
)


@dataclass(frozen=True)
class TrustSettings:
    report: bool = False
    root: Path = Path("/")
    system: bool = False
    anchors_dir: Path = DEBIAN_ANCHORS_DIR
    update_command: tuple[str, ...] = ("update-ca-certificates",)


def parse_trust(spec: Mapping[str, Any], error: Callable[[str, str], Exception]) -> TrustSettings:
    """``error(key, message)`` makes the configuration error naming the key."""
    report = spec.get("report_trust_stores", True)
    if not isinstance(report, bool):
        raise error("report_trust_stores", "must be true or false")
    paths: dict[str, Path] = {}
    for key, default in (("trust_store_root", Path("/")), ("trust_anchors_dir", DEBIAN_ANCHORS_DIR)):
        raw = spec.get(key, str(default))
        if not isinstance(raw, str) or not raw.startswith("/"):
            raise error(key, "must be an absolute path")
        paths[key] = Path(raw)
    mode = spec.get("trust_store")
    if mode not in (None, "system"):
        raise error("trust_store", f"{mode!r} is not a trust store certfleet manages (expected: system)")
    command = spec.get("trust_update_command", ["update-ca-certificates"])
    if not isinstance(command, list) or not command or not all(isinstance(a, str) and a for a in command):
        raise error(
            "trust_update_command", "must be a non-empty list of strings (the command and its arguments)"
        )
    return TrustSettings(
        report=report,
        root=paths["trust_store_root"],
        system=mode == "system",
        anchors_dir=paths["trust_anchors_dir"],
        update_command=tuple(command),
    )
