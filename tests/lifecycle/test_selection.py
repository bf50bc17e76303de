"""Campaign selection expressions: fields AND-ed, a repeated field OR-ed."""

from __future__ import annotations

import datetime as dt

import pytest

from certfleet.errors import InvalidInput
from certfleet.inventory import CertificateRecord, Source, Status
from certfleet.lifecycle.selection import Selection

NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)


def _record(**overrides: object) -> CertificateRecord:
    values: dict[str, object] = {
        "serial": "a1",
        "fingerprint_sha256": "0" * 64,
        "subject": "CN=www.example.test",
        "common_name": "www.example.test",
        "sans": ("www.example.test", "api.example.test"),
        "issuer": "CN=Test Issuing CA 1,O=Test",
        "not_before": NOW - dt.timedelta(days=10),
        "not_after": NOW + dt.timedelta(days=20),
        "key_algorithm": "rsa",
        "key_size": 2048,
        "signature_algorithm": "ecdsa-with-SHA256",
        "source": Source.ISSUED,
        "status": Status.ACTIVE,
        "first_seen": NOW,
        "last_seen": NOW,
        "der": b"",
        "issuer_ca_id": "00aa11bb22cc33dd",
        "profile": "tls-server",
        "team": "web",
        "tags": ("prod",),
    }
    values.update(overrides)
    return CertificateRecord(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("expression", "matches"),
    [
        ("key=rsa-2048", True),
        ("key=RSA-2048", True),
        ("key=rsa", True),
        ("key=ec-p256", False),
        ("key=rsa-2048,key=ec-p256", True),  # one field twice: either
        ("key-size=2048", True),
        ("issuer=00aa11bb22cc33dd", True),
        ("issuer=Issuing", True),
        ("ca=00aa11bb22cc33dd", True),
        ("ca=Issuing", False),
        ("sig=ECDSA-with-SHA256", True),
        ("expires-within=30d", True),
        ("expires-within=7d", False),
        ("expires-before=2026-07-01", True),
        ("expires-before=2026-06-15", False),
        ("team=web", True),
        ("team=db", False),
        ("tag=prod", True),
        ("name=*.example.test", True),
        ("name=API.example.test", True),
        ("name=*.other.test", False),
        ("profile=tls-server", True),
        ("serial=00:A1", True),
        ("key=rsa-2048,team=web issuer=00aa11bb22cc33dd", True),  # commas or spaces: all must hold
        ("key=rsa-2048,team=db", False),
    ],
)
def test_matching(expression: str, matches: bool) -> None:
    assert Selection.parse(expression).matches(_record(), NOW) is matches


def test_single_valued_fields_are_hints_for_storage() -> None:
    selection = Selection.parse("team=web,key=rsa-2048,key=ec-p256")
    assert selection.single("team") == "web"
    assert selection.single("key") is None  # two values: no narrowing
    assert str(Selection.parse("team=web, key=rsa-2048")) == "key=rsa-2048,team=web"


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("", "empty selection"),
        ("rsa", "expected field=value"),
        ("issuer=Issuing CA", "expected field=value"),  # a space separates terms
        ("colour=red", "unknown selection field"),
        ("key-size=big", "number of bits"),
        ("expires-within=soon", "bad duration"),
        ("expires-before=tomorrow", "bad date"),
    ],
)
def test_bad_expressions_say_why(expression: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        Selection.parse(expression)
