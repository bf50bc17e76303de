"""The inventory: search, filters, sorting, keyset pagination, and the CSV export of the
current filter (streamed page by page, however many rows match)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from certfleet.access import Scope
from certfleet.clock import iso
from certfleet.inventory import Source, Status
from certfleet.inventory.search import InventoryRow, SortKey
from certfleet.web._filters import PAGE_SIZES, parse_inventory
from certfleet.web._render import HtmlRoute, render, url_with
from certfleet.web._state import current_user, dashboard

__all__ = ["CSV_COLUMNS", "router"]

router = APIRouter(route_class=HtmlRoute, include_in_schema=False)

COUNT_CAP = 10_000
KEY_TYPES = (
    *("ec-p256", "ec-p384", "ec-p521", "rsa-2048", "rsa-3072", "rsa-4096", "ed25519"),
    *("ml-dsa-44", "ml-dsa-65", "ml-dsa-87"),
)
CSV_COLUMNS = (
    "serial",
    "fingerprint_sha256",
    "common_name",
    "sans",
    "issuer",
    "issuer_ca_id",
    "not_before",
    "not_after",
    "status",
    "team",
    "source",
    "key_type",
)


@router.get("/certificates")
def inventory(request: Request) -> Response:
    user = current_user(request)
    user.principal.require(Scope.READ)
    d = dashboard(request)
    params = parse_inventory(request.query_params, user)
    now = d.platform.clock.now()
    page = d.queries.inventory_page(
        params.filter, now, limit=params.per_page, cursor=request.query_params.get("cursor") or None
    )
    matches = d.queries.inventory_count(params.filter, now, cap=COUNT_CAP)
    return render(
        request,
        "inventory.html",
        {
            "user": user,
            "now": now,
            "params": params,
            "rows": page.rows,
            "matches": matches,
            "capped": matches > COUNT_CAP,
            "cap": COUNT_CAP,
            "next_href": url_with("/certificates", {**params.link(), "cursor": page.next_cursor})
            if page.next_cursor
            else None,
            "first_href": url_with("/certificates", params.link())
            if request.query_params.get("cursor")
            else None,
            "csv_href": url_with("/certificates.csv", params.link(per_page=None)),
            "statuses": [s.value for s in Status],
            "sources": [s.value for s in Source],
            "sorts": [
                (SortKey.EXPIRES.value, "Expiry"),
                (SortKey.NAME.value, "Name"),
                (SortKey.SEEN.value, "First seen"),
            ],
            "page_sizes": PAGE_SIZES,
            "key_types": KEY_TYPES,
            "cas": d.platform.authorities.hierarchy(),
        },
    )


def _cell(value: str) -> str:
    # A cell that starts like a formula would run in a spreadsheet (CSV injection): names and
    # DNs come from certificates found on the network, so anyone could have chosen them.
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def _csv_line(row: InventoryRow, now_status: str) -> list[str]:
    values = [
        row.serial,
        row.fingerprint_sha256,
        row.common_name or "",
        " ".join(row.sans),
        row.issuer,
        row.issuer_ca_id or "",
        iso(row.not_before) or "",
        iso(row.not_after) or "",
        now_status,
        row.team or "",
        row.source,
        row.key_type,
    ]
    return [_cell(v) for v in values]


@router.get("/certificates.csv")
def export_csv(request: Request) -> Response:
    user = current_user(request)
    user.principal.require(Scope.READ)
    d = dashboard(request)
    params = parse_inventory(request.query_params, user)
    now = d.platform.clock.now()
    rows = d.queries.inventory_stream(params.filter, now)

    def lines() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")  # RFC 4180 section 2
        writer.writerow(CSV_COLUMNS)
        for count, row in enumerate(rows, 1):
            writer.writerow(_csv_line(row, row.effective_status(now)))
            if count % 1000 == 0:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    return StreamingResponse(
        lines(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="certificates-{stamp}.csv"'},
    )
