"""Lazy package exports (PEP 562): a package's ``__init__`` names its public values in a
``TYPE_CHECKING`` block for the type checker and imports each from its home module when it
is first read at run time. Importing one module of a package runs the package's
``__init__`` first: this keeps that from importing every sibling (issue 11: ``certfleet
scan`` and ``inventory list`` start-up)."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

__all__ = ["LazyExports"]


class LazyExports:
    """``homes`` maps each exported name to the module that defines it. A package calls
    :meth:`get` from its module-level ``__getattr__``."""

    def __init__(self, package: str, homes: Mapping[str, str]) -> None:
        self._package = package
        self._homes = dict(homes)

    def home_of(self, name: str) -> str:
        return self._homes[name]

    def get(self, name: str) -> Any:
        home = self._homes.get(name)
        if home is None:
            raise AttributeError(f"module {self._package!r} has no attribute {name!r}")
        try:
            module = importlib.import_module(home)
        except AttributeError as exc:
            # Python reports an AttributeError raised while importing as "cannot import
            # name": say what failed instead.
            raise ImportError(f"importing {home} failed: {exc}") from exc
        return getattr(module, name)
