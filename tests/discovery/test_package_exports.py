"""``certfleet.discovery`` names its public values without importing every module (PEP 562):
a network scan loads the scanner, targets, trust and findings, not the file scanner with its
formats and keystores (issue 11: the scan CLI's start-up)."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import pytest

import certfleet.discovery

_FRESH = """
import json, sys
from certfleet.discovery import NetScanOptions, NetworkScanner, Severity, endpoint_findings, parse_ports
from certfleet.discovery.requests import FileScanRequest, NetScanRequest
print(json.dumps(sorted(n for n in sys.modules if n.startswith("certfleet.discovery"))))
"""


def test_what_a_network_scan_imports_leaves_the_file_scanner_out() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _FRESH], capture_output=True, text=True, check=False, timeout=120
    )

    assert done.returncode == 0, done.stderr
    loaded = set(json.loads(done.stdout))
    assert {
        "certfleet.discovery.scanner",
        "certfleet.discovery.findings",
        "certfleet.discovery.trust",
    } <= loaded
    assert loaded.isdisjoint(
        {
            "certfleet.discovery.files",
            "certfleet.discovery.formats",
            "certfleet.discovery.keystores",
            "certfleet.discovery.truststores",
        }
    ), sorted(loaded)


@pytest.mark.parametrize("name", certfleet.discovery.__all__)
def test_every_exported_name_is_its_home_modules_object(name: str) -> None:
    exported = getattr(certfleet.discovery, name)
    home = importlib.import_module(certfleet.discovery._EXPORTS.home_of(name))

    assert exported is getattr(home, name)
    assert name in dir(certfleet.discovery)


def test_a_file_scan_request_still_defaults_to_the_file_scanners_options() -> None:
    from certfleet.discovery import DEFAULT_MAX_FILE_SIZE, FileScanOptions
    from certfleet.discovery.requests import FileScanRequest

    request = FileScanRequest(paths=("/etc/ssl",))

    assert request.options == FileScanOptions()
    assert request.options.max_file_size == DEFAULT_MAX_FILE_SIZE
    with pytest.raises(AttributeError, match="no attribute 'NoSuchThing'"):
        certfleet.discovery.NoSuchThing  # noqa: B018
