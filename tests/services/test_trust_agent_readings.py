"""An agent's trust-store report, checked before anything is recorded: each root must be
the certificate its fingerprint names, and each store may list only roots the report carries."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from certfleet.discovery import fingerprint
from certfleet.errors import InvalidInput
from certfleet.services.discovery import agent_readings
from tests.discovery.pki import Pki


def _b64(pki: Pki) -> str:
    return base64.b64encode(pki.root.cert.public_bytes(Encoding.DER)).decode()


def test_a_report_becomes_one_reading_per_store() -> None:
    alpha = Pki("Alpha")
    fp = fingerprint(alpha.root.cert)
    stores = [
        {"kind": "system", "path": "/etc/ssl/certs/ca-certificates.crt", "format": "pem", "roots": [fp]},
        {"kind": "nss", "path": "/etc/pki/nssdb", "error": "certutil failed: bad database", "roots": []},
    ]
    readings = agent_readings({fp: _b64(alpha)}, stores)
    assert [(r.kind.value, len(r.roots), r.error) for r in readings] == [
        ("system", 1, None),
        ("nss", 0, "certutil failed: bad database"),
    ]


@pytest.mark.parametrize(
    ("roots", "stores", "message"),
    [
        ({"ab" * 32: "not base64!"}, [], "is not a base64 DER certificate"),
        ({"ab" * 32: "MAMCAQE="}, [], "is not a base64 DER certificate"),
        (None, [], "does not have the SHA-256 fingerprint it is sent under"),
        ({}, [{"kind": "system", "path": "/x", "roots": ["cd" * 32]}], "stores[0] lists root cdcdcdcd"),
        ({}, [{"kind": "windows", "path": "/x", "roots": []}], "stores[0]: unknown store kind 'windows'"),
    ],
)
def test_a_bad_report_is_refused_precisely(
    roots: dict[str, str] | None, stores: list[dict[str, object]], message: str
) -> None:
    if roots is None:  # a real root sent under another root's fingerprint
        roots = {fingerprint(Pki("Other").root.cert): _b64(Pki("Sent"))}
    with pytest.raises(InvalidInput) as refused:
        agent_readings(roots, stores)
    assert message in refused.value.detail
