"""Every package of certfleet has a curated public surface: an ``__all__`` whose names all
import from the package itself, none of them private (a leading underscore) and none a
private module. Work lives in private modules; callers import from the package."""

from __future__ import annotations

import importlib
import pkgutil
import types

import pytest

import certfleet


def _packages() -> list[str]:
    found = [certfleet.__name__]
    for info in pkgutil.walk_packages(certfleet.__path__, prefix=f"{certfleet.__name__}."):
        if info.ispkg and ".migrations" not in info.name:
            found.append(info.name)
    return sorted(found)


PACKAGES = _packages()


def test_the_walk_finds_the_packages() -> None:
    assert {"certfleet.ca", "certfleet.x509", "certfleet.store", "certfleet.protocols.acme"} <= set(PACKAGES)


@pytest.mark.parametrize("name", PACKAGES)
def test_package_declares_its_public_names(name: str) -> None:
    package = importlib.import_module(name)
    exported = getattr(package, "__all__", None)
    assert isinstance(exported, list | tuple), f"{name} has no __all__"
    assert len(set(exported)) == len(exported), f"{name}.__all__ lists a name twice"
    for public in exported:
        assert isinstance(public, str)
        # A dunder such as __version__ is module metadata, not a private name.
        dunder = public.startswith("__") and public.endswith("__")
        assert dunder or not public.startswith("_"), f"{name}.__all__ exports the private name {public!r}"
        assert hasattr(package, public), f"{name}.__all__ names {public!r}, which it does not define"
        value = getattr(package, public)
        if isinstance(value, types.ModuleType):
            private = [part for part in value.__name__.split(".") if part.startswith("_")]
            assert not private, f"{name}.__all__ exports the private module {value.__name__}"
