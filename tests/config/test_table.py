"""The one typed table parser: every field type it reads, what it refuses, and how it says so."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from typing import Literal

import pytest

from certfleet.config import parse_bind, parse_table
from certfleet.config._table import toml
from certfleet.errors import ConfigurationError

FILE = "/srv/certfleet/config.toml"


@dataclass(frozen=True)
class Example:
    flag: bool = False
    count: int = 1
    ratio: float = 0.5
    name: str = "x"
    mode: Literal["fast", "safe"] = "safe"
    names: tuple[str, ...] = ()
    note: str | None = None
    window: dt.timedelta = field(
        default=dt.timedelta(hours=1), metadata=toml("window_hours", unit=dt.timedelta(hours=1))
    )
    listen: tuple[str, int] | None = field(default=None, metadata=toml(parse=parse_bind))

    def __post_init__(self) -> None:
        if self.count > 10:
            raise ConfigurationError("example.count must be at most 10")


def parse(table: object) -> Example:
    return parse_table(Example, table, FILE, "example")


def test_an_absent_or_empty_section_is_all_defaults() -> None:
    assert parse(None) == Example() == parse({})


def test_every_field_type_is_read() -> None:
    table = {
        "flag": True,
        "count": 3,
        "ratio": 2,  # an integer is a number
        "name": "n",
        "mode": "fast",
        "names": ["a", "b"],
        "note": "hello",
        "window_hours": 1.5,  # the key carries the unit
        "listen": "[::1]:9464",
    }
    assert parse(table) == Example(
        flag=True,
        count=3,
        ratio=2.0,
        name="n",
        mode="fast",
        names=("a", "b"),
        note="hello",
        window=dt.timedelta(minutes=90),
        listen=("::1", 9464),
    )
    assert isinstance(parse(table).ratio, float)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"flag": 1}, "example.flag must be true or false"),
        ({"flag": "yes"}, "example.flag must be true or false"),
        ({"count": True}, "example.count must be an integer"),  # a bool is no integer here
        ({"count": 2.5}, "example.count must be an integer"),
        ({"count": "3"}, "example.count must be an integer"),
        ({"ratio": False}, "example.ratio must be a number"),
        ({"ratio": "0.5"}, "example.ratio must be a number"),
        ({"name": 3}, "example.name must be a string"),
        ({"note": ["a"]}, "example.note must be a string"),
        ({"mode": "quick"}, "example.mode must be one of 'fast', 'safe'"),
        ({"names": "a"}, "example.names must be a list of strings"),
        ({"names": ["a", 1]}, "example.names must be a list of strings"),
        ({"window_hours": 0}, "example.window_hours must be a positive number"),
        ({"window_hours": True}, "example.window_hours must be a positive number"),
        ({"listen": 9464}, "example.listen must be a string"),
        ({"listen": "nowhere"}, "example.listen: bad listen address 'nowhere': expected HOST:PORT"),
        ({"count": 11}, "example.count must be at most 10"),  # __post_init__, located in the file
    ],
)
def test_a_wrong_value_names_the_file_the_section_the_key_and_what_is_expected(
    table: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse(table)
    assert caught.value.detail == f"{FILE}: {message}"


def test_a_section_that_is_not_a_table_is_refused() -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse(3)
    assert caught.value.detail == f"{FILE}: [example] must be a table"


def test_an_unknown_key_is_refused_with_the_closest_known_one() -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse({"cuont": 2})
    assert caught.value.detail == f"{FILE}: unknown key [example] cuont; did you mean count?"


def test_an_unknown_key_like_none_lists_the_known_ones() -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse({"zzzzzz": 2})
    known = "count, flag, listen, mode, name, names, note, ratio, window_hours"
    assert caught.value.detail == f"{FILE}: unknown key [example] zzzzzz; known: {known}"


def test_a_field_is_known_by_its_toml_key_not_its_python_name() -> None:
    with pytest.raises(
        ConfigurationError, match="unknown key \\[example\\] window; did you mean window_hours"
    ):
        parse({"window": 2})


def test_a_type_the_parser_cannot_read_is_a_programming_error() -> None:
    @dataclass(frozen=True)
    class Odd:
        when: dt.date = dt.date(2026, 1, 1)

    with pytest.raises(TypeError):
        parse_table(Odd, {"when": "2026-01-01"}, FILE, "odd")
    assert dataclasses.is_dataclass(parse_table(Odd, {}, FILE, "odd"))
