"""The inventory's filters as query parameters: parsed strictly (a bad value is a precise 400,
never a silent "show everything"), and written back for links, pagination and the export."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

from certfleet.errors import Forbidden, InvalidInput
from certfleet.inventory import Source, Status
from certfleet.inventory.search import InventoryFilter, SortKey
from certfleet.web._sessions import User

_E = TypeVar("_E", Status, Source, SortKey)

__all__ = ["PAGE_SIZES", "InventoryParams", "parse_day", "parse_inventory"]

PAGE_SIZES = (25, 50, 100, 200)
MAX_EXPIRING_DAYS = 100 * 366  # "within a century": all active; bounds now + delta
_KEY = re.compile(r"^(rsa|dsa)-(\d{3,5})$|^ec-p(\d{3})$|^(ed25519|ed448|rsa|ec|dsa|ml-dsa-(?:44|65|87))$")
FIELDS = (
    "q",
    "status",
    "issuer",
    "team",
    "key",
    "expiring",
    "expires_after",
    "expires_before",
    "source",
    "location",
    "sort",
    "order",
    "per_page",
)


def parse_day(value: str, name: str) -> dt.datetime:
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{name} must be a date such as 2026-12-01, not {value!r}") from None
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def _choice(kind: type[_E], value: str, name: str) -> _E:
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(v.value for v in kind)
        raise InvalidInput(f"{name} must be one of {allowed}, not {value!r}") from None


def _key(value: str) -> tuple[str, int | None]:
    match = _KEY.match(value.lower())
    if not match:
        raise InvalidInput(f"key must look like rsa-2048, ec-p256, ed25519 or ml-dsa-65, not {value!r}")
    if match.group(1):
        return match.group(1), int(match.group(2))
    if match.group(3):
        return "ec", int(match.group(3))
    return match.group(4), None


@dataclass(frozen=True)
class InventoryParams:
    """The filter, the page size, and the raw parameters to echo into the form and links."""

    filter: InventoryFilter
    per_page: int
    raw: dict[str, str]

    def link(self, **changes: str | None) -> dict[str, str]:
        out = {k: v for k, v in self.raw.items() if v}
        for k, v in changes.items():
            if v:
                out[k] = v
            else:
                out.pop(k, None)
        return out


def parse_inventory(query: Mapping[str, str], user: User) -> InventoryParams:
    raw = {k: query.get(k, "").strip() for k in FIELDS}
    team = raw["team"] or None
    if not user.is_admin:
        # As the REST API: a team token reads its own team only, and asking for another is
        # refused rather than silently narrowed.
        if team is not None and team != user.principal.team:
            raise Forbidden("this token may read only its own team's certificates")
        team = user.principal.team
    expiring = None
    if raw["expiring"]:
        if not raw["expiring"].isdigit() or int(raw["expiring"]) > MAX_EXPIRING_DAYS:
            raise InvalidInput(f"expiring must be a number of days up to {MAX_EXPIRING_DAYS}")
        expiring = int(raw["expiring"])
    algorithm, size = _key(raw["key"]) if raw["key"] else (None, None)
    per_page = 50
    if raw["per_page"]:
        if not raw["per_page"].isdigit() or int(raw["per_page"]) not in PAGE_SIZES:
            raise InvalidInput(f"per_page must be one of {', '.join(map(str, PAGE_SIZES))}")
        per_page = int(raw["per_page"])
    if raw["order"] not in ("", "asc", "desc"):
        raise InvalidInput("order must be asc or desc")
    if len(raw["q"]) > 255 or len(raw["location"]) > 1000 or len(raw["issuer"]) > 1000:
        raise InvalidInput("search text is too long")
    f = InventoryFilter(
        text=raw["q"] or None,
        status=_choice(Status, raw["status"], "status") if raw["status"] else None,
        issuer=raw["issuer"] or None,
        team=team,
        key_algorithm=algorithm,
        key_size=size,
        expiring_days=expiring,
        expires_after=parse_day(raw["expires_after"], "expires_after") if raw["expires_after"] else None,
        expires_before=parse_day(raw["expires_before"], "expires_before") if raw["expires_before"] else None,
        source=_choice(Source, raw["source"], "source") if raw["source"] else None,
        location=raw["location"] or None,
        sort=_choice(SortKey, raw["sort"], "sort") if raw["sort"] else SortKey.EXPIRES,
        descending=raw["order"] == "desc",
    )
    return InventoryParams(f, per_page, raw)
