"""The stylesheet and the script, served from the package (nothing from a CDN)."""

from __future__ import annotations

import hashlib
from importlib import resources

from fastapi import APIRouter, Request
from fastapi.responses import Response

from certfleet.errors import NotFound
from certfleet.web._render import HtmlRoute

__all__ = ["STATIC", "router"]

router = APIRouter(route_class=HtmlRoute, include_in_schema=False)

_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}


def _load() -> dict[str, tuple[bytes, str, str]]:
    files: dict[str, tuple[bytes, str, str]] = {}
    for entry in resources.files("certfleet.web").joinpath("static").iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1]
        if suffix in _TYPES:
            body = entry.read_bytes()
            files[entry.name] = (body, _TYPES[suffix], '"' + hashlib.sha256(body).hexdigest()[:32] + '"')
    return files


STATIC = _load()


@router.get("/static/{name}")
def static(name: str, request: Request) -> Response:
    found = STATIC.get(name)
    if found is None:
        raise NotFound(f"no static file {name!r}")
    body, media_type, etag = found
    headers = {"ETag": etag, "Cache-Control": "public, max-age=3600"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=media_type, headers=headers)
