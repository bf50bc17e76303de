"""The one typed parser of ``config.toml`` tables.

A section is a frozen dataclass; its fields' resolved type hints say what each key accepts.
Every section goes through :func:`parse_table`, so every key gets the same checks and the
same messages: an unknown key is refused with a suggestion, a wrong type names the file,
the section, the key and the type expected, and the dataclass's ``__post_init__`` checks
ranges and relations between keys.

Supported field types: ``bool``, ``int`` (a TOML boolean is not an integer), ``float`` (an
integer is accepted), ``str``, a ``Literal`` of strings, ``tuple[str, ...]`` (a TOML
array), ``X | None`` (the key may be absent; TOML has no null), and ``timedelta`` in the unit
the key's name carries (``crl_validity_days``, see :func:`toml`). A field may instead
name a ``parse`` function taking the TOML string (``"HOST:PORT"`` into ``(host, port)``), or
an ``each`` function for every string of a TOML array (CIDR ranges into networks);
:func:`toml` says so in the field's metadata.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import types
import typing
from collections.abc import Callable, Collection, Iterator, Mapping
from typing import Any, TypeVar

from certfleet.errors import ConfigurationError

__all__ = ["only_subtable", "parse_table", "refuse_unknown", "toml"]

T = TypeVar("T")
_META = "certfleet.config"


@dataclasses.dataclass(frozen=True)
class _Key:
    name: str | None = None
    unit: dt.timedelta | None = None
    parse: Callable[[str], object] | None = None
    each: Callable[[str], object] | None = None
    zero: bool = False


def toml(
    key: str | None = None,
    *,
    unit: dt.timedelta | None = None,
    parse: Callable[[str], object] | None = None,
    each: Callable[[str], object] | None = None,
    zero: bool = False,
) -> Mapping[str, object]:
    """The ``metadata`` of a section field whose TOML key or reading differs from the plain
    one: ``key`` is its name in the file (``crl_validity_days`` for ``crl_validity``),
    ``unit`` what one of it is worth for a ``timedelta`` field, ``parse`` turns the TOML
    string into the value (``field(default=..., metadata=toml("https", parse=parse_bind))``),
    ``each`` turns every string of an array into one item of a tuple, and ``zero`` lets a
    ``timedelta`` be zero (it must be positive otherwise)."""
    return {_META: _Key(key, unit, parse, each, zero)}


def _fields(kind: type[object]) -> Iterator[tuple[str, dataclasses.Field[Any], _Key, object]]:
    """(TOML key, field, how to read it, resolved type) for each field of a section."""
    if not dataclasses.is_dataclass(kind):
        raise TypeError(f"{kind!r}: a config section is a dataclass")
    hints = typing.get_type_hints(kind)
    for item in dataclasses.fields(kind):
        if item.init:
            meta = item.metadata.get(_META)
            if not isinstance(meta, _Key):
                meta = _Key()
            yield meta.name or item.name, item, meta, hints[item.name]


def refuse_unknown(
    table: Mapping[str, object], known: Collection[str], file: str, section: str | None
) -> None:
    """Refuse the first key not in ``known`` (``section`` None: the top level of the file),
    suggesting the closest known one: a typo must never silently leave a default in force."""
    for key, value in table.items():
        if key in known:
            continue
        close = difflib.get_close_matches(key, list(known), n=1)
        is_section = section is None and isinstance(value, Mapping)
        suggestion = f"[{close[0]}]" if is_section and close else "".join(close[:1])
        hint = f"; did you mean {suggestion}?" if close else f"; known: {', '.join(sorted(known))}"
        where = f"section [{key}]" if is_section else f"key [{section}] {key}" if section else f"key {key}"
        raise ConfigurationError(f"{file}: unknown {where}{hint}")


def only_subtable(raw: object, file: str, section: str, key: str) -> Mapping[str, object] | None:
    """The ``[section.key]`` table of a ``[section]`` that holds nothing else (``[web.oidc]``,
    ``[audit.siem]``); None when either is absent."""
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise ConfigurationError(f"{file}: [{section}] must be a table")
    refuse_unknown(raw, (key,), file, section)
    inner = raw.get(key)
    if inner is not None and not isinstance(inner, Mapping):
        raise ConfigurationError(f"{file}: [{section}.{key}] must be a table")
    return inner


def parse_table(kind: type[T], raw: object, file: str, section: str) -> T:
    """Build the section ``kind`` from its ``raw`` TOML table (``None``: the section is
    absent, every default applies)."""
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigurationError(f"{file}: [{section}] must be a table")
    fields = list(_fields(kind))
    refuse_unknown(raw, [key for key, *_ in fields], file, section)
    values: dict[str, object] = {}
    for key, item, meta, hint in fields:
        if key in raw:
            values[item.name] = _value(raw[key], hint, meta, f"{section}.{key}", file)
    try:
        return kind(**values)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{file}: {exc.detail}") from exc


def _value(value: object, hint: object, meta: _Key, name: str, file: str) -> object:
    hint = _without_none(hint)
    if meta.parse is not None:
        if not isinstance(value, str):
            raise ConfigurationError(f"{file}: {name} must be a string")
        try:
            return meta.parse(value)
        except ConfigurationError as exc:
            raise ConfigurationError(f"{file}: {name}: {exc.detail}") from exc
    if meta.each is not None:
        return _each(value, meta.each, name, file)
    if hint is dt.timedelta:
        if meta.unit is None:
            raise TypeError(f"{name}: a timedelta setting needs a unit")
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ConfigurationError(f"{file}: {name} must be a {'' if meta.zero else 'positive '}number")
        if value == 0 and not meta.zero:
            raise ConfigurationError(f"{file}: {name} must be a positive number")
        return meta.unit * value
    checked = _checked(value, hint)
    if checked is _WRONG:
        raise ConfigurationError(f"{file}: {name} must be {_expected(hint)}")
    return checked


def _each(value: object, parse: Callable[[str], object], name: str, file: str) -> tuple[object, ...]:
    if not isinstance(value, list):
        raise ConfigurationError(f"{file}: {name} must be a list of strings")
    items: list[object] = []
    for item in value:
        if not isinstance(item, str):
            raise ConfigurationError(f"{file}: {name}: {item!r} is not a string")
        try:
            items.append(parse(item))
        except ConfigurationError as exc:
            raise ConfigurationError(f"{file}: {name}: {exc.detail}") from exc
    return tuple(items)


_WRONG = object()


def _checked(value: object, hint: object) -> object:
    """``value`` as ``hint`` wants it, or ``_WRONG``."""
    if hint is bool:
        return value if isinstance(value, bool) else _WRONG
    if isinstance(value, bool):
        return _WRONG  # True is an int in Python, never in a config file
    if hint is int:
        return value if isinstance(value, int) else _WRONG
    if hint is float:
        return float(value) if isinstance(value, int | float) else _WRONG
    if hint is str:
        return value if isinstance(value, str) else _WRONG
    if typing.get_origin(hint) is typing.Literal:
        return value if value in typing.get_args(hint) else _WRONG
    if typing.get_origin(hint) is tuple and typing.get_args(hint) == (str, ...):
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            return tuple(value)
        return _WRONG
    raise TypeError(f"no config reading for {hint!r}")


def _expected(hint: object) -> str:
    if typing.get_origin(hint) is typing.Literal:
        return "one of " + ", ".join(repr(choice) for choice in typing.get_args(hint))
    names: dict[object, str] = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    return names.get(hint, "a list of strings")


def _without_none(hint: object) -> object:
    """``X`` for ``X | None``."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        rest = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        if len(rest) == 1:
            return rest[0]
    return hint
