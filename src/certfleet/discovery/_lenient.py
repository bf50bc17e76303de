"""Certificates in the wild break RFC 5280 (negative or zero serials, odd encodings), and
``cryptography`` warns while parsing them. A scanner must read them all the same, and a
warning turned into an error (as our tests do) must not hide one."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

from cryptography.utils import CryptographyDeprecationWarning

__all__ = ["lenient_parsing"]


@contextmanager
def lenient_parsing() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        yield
