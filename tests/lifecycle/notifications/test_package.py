"""The notifications package exports lazily: writing events (every service and the scan
CLI do) loads neither the channels nor httpx, and the registry still knows the built-in
channel types the first time it is asked, in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys


def _fresh(code: str) -> object:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    return json.loads(done.stdout)


def test_writing_events_imports_no_channel_and_no_httpx() -> None:
    loaded = _fresh(
        "import json, sys\n"
        "import certfleet.lifecycle.notifications.events\n"
        "print(json.dumps(sorted(m for m in sys.modules if m == 'httpx'"
        " or m.startswith('certfleet.lifecycle.notifications.'))))"
    )
    assert loaded == ["certfleet.lifecycle.notifications.events"]


def test_the_registry_knows_the_built_in_types_when_first_asked() -> None:
    found = _fresh(
        "import json\n"
        "from certfleet.lifecycle.notifications import available, channel_type\n"
        "print(json.dumps([list(available()), channel_type('webhook').__name__]))"
    )
    assert found == [["email", "slack", "webhook"], "WebhookChannel"]


def test_every_export_is_the_object_of_its_home_module() -> None:
    import importlib

    import certfleet.lifecycle.notifications as package

    for name in package.__all__:
        home = importlib.import_module(package._EXPORTS.home_of(name))
        assert getattr(package, name) is getattr(home, name)
