"""``key_type=`` in rotation selections (issue 17): the field spelled with an underscore, and
ML-DSA matched whatever the record stored for it (``ml-dsa-65``, or the class name recorded
before ML-DSA was a key type)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from certfleet.errors import InvalidInput
from certfleet.lifecycle.selection import Selection
from tests.lifecycle.test_selection import NOW, _record


@pytest.mark.parametrize(
    ("expression", "key_algorithm", "key_size", "matches"),
    [
        ("key_type=rsa-2048", "rsa", 2048, True),
        ("key_type=rsa-2048", "rsa", 3072, False),
        ("key_type=ml-dsa-65", "ml-dsa-65", 1952, True),
        ("key_type=ml-dsa-65", "mldsa65publickey", 0, True),
        ("key_type=ml-dsa-65", "ml-dsa-44", 1312, False),
        ("key_type=ml-dsa", "ml-dsa-87", 2592, True),  # the family
        ("key_type=rsa-2048,team=web", "rsa", 2048, True),
        ("expires_within=30d", "rsa", 2048, True),  # every field takes the underscore
    ],
)
def test_key_type_selects_by_algorithm(
    expression: str, key_algorithm: str, key_size: int, matches: bool
) -> None:
    record = replace(_record(), key_algorithm=key_algorithm, key_size=key_size)
    assert Selection.parse(expression).matches(record, NOW) is matches


def test_key_type_reads_back_as_key() -> None:
    assert str(Selection.parse("key_type=rsa-2048")) == "key=rsa-2048"


def test_an_unknown_field_is_still_refused() -> None:
    with pytest.raises(InvalidInput, match="unknown selection field 'key_kind'"):
        Selection.parse("key_kind=rsa-2048")
