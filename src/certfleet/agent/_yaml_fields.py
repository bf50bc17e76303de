"""Reading one value of agent.yaml: typed readers that refuse a bad value with an error
naming the file and the place in it (``certificates[0].files.key: ...``). What the file may
contain, and what each value means, is :mod:`certfleet.agent.config`'s."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from certfleet.agent.errors import AgentConfigError

__all__ = ["Where", "absolute", "argv", "endpoint", "file_mode", "mapping", "number", "string"]


class Where:
    """Builds error messages that point at the offending place of the file."""

    def __init__(self, source: str, path: str = "") -> None:
        self.source = source
        self.path = path

    def __truediv__(self, part: str | int) -> Where:
        if isinstance(part, int):
            return Where(self.source, f"{self.path}[{part}]")
        return Where(self.source, f"{self.path}.{part}" if self.path else part)

    def error(self, message: str) -> AgentConfigError:
        where = f"{self.source}: {self.path}" if self.path else self.source
        return AgentConfigError(f"{where}: {message}")


def mapping(value: object, where: Where, allowed: set[str]) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise where.error(f"must be a mapping, not {type(value).__name__}")
    for key in value:
        if not isinstance(key, str) or key not in allowed:
            raise where.error(f"unknown key {key!r} (expected one of {', '.join(sorted(allowed))})")
    return value


def string(value: object, where: Where) -> str:
    if not isinstance(value, str) or not value.strip():
        raise where.error("must be a non-empty string")
    return value.strip()


def number(value: object, where: Where, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise where.error(f"must be a number from {low:g} to {high:g}")
    return float(value)


def absolute(value: object, where: Where) -> Path:
    text = string(value, where)
    if "\x00" in text or not Path(text).is_absolute():
        raise where.error(f"{text!r} must be an absolute path")
    return Path(os.path.normpath(text))


def file_mode(value: object, where: Where) -> int:
    # Only a quoted octal string: YAML 1.1 reads 0640 as 416 but 400 as four hundred, so a
    # bare number cannot be told apart from a mistake.
    if isinstance(value, str) and re.fullmatch(r"0?[0-7]{3}", value.strip()):
        return int(value.strip(), 8)
    raise where.error(f'{value!r} is not a file mode: write it quoted in octal, e.g. "0640"')


def endpoint(value: object, where: Where) -> tuple[str, int]:
    text = string(value, where)
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise where.error(f"{text!r} must be HOST:PORT")
    return host.strip("[]"), int(port)


def argv(value: object, where: Where) -> tuple[str, ...]:
    if isinstance(value, str):
        raise where.error(
            "must be a list of arguments, e.g. [nginx, -s, reload]: it never runs through a shell"
        )
    if not isinstance(value, list) or not value or not all(isinstance(a, str) and a for a in value):
        raise where.error("must be a non-empty list of non-empty strings")
    return tuple(value)
