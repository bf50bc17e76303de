"""Errors to RFC 7807 ``application/problem+json``, and the bearer challenge of RFC 6750."""

from __future__ import annotations

import logging
import sys
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from certfleet.errors import CertfleetError, Unauthenticated, database_outage

__all__ = [
    "DATABASE_RETRY_AFTER",
    "PROBLEM_JSON",
    "PROBLEM_RESPONSES",
    "InvalidToken",
    "Problem",
    "database_outage",
    "install_problem_handlers",
    "problem",
]

PROBLEM_JSON = "application/problem+json"
_log = logging.getLogger("certfleet.api")


class Problem(BaseModel):
    """An RFC 7807 problem document; ``detail`` names the precise reason."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str


def _documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    schema = Problem.model_json_schema()
    return {
        status: {"description": HTTPStatus(status).phrase, "content": {PROBLEM_JSON: {"schema": schema}}}
        for status in statuses
    }


# Shared by every authenticated route so the OpenAPI document shows the problem type.
PROBLEM_RESPONSES = _documented(400, 401, 403, 404, 422)


class InvalidToken(Unauthenticated):
    """A token was presented but is malformed, unknown or revoked. RFC 6750 section 3.1 asks
    for ``error="invalid_token"`` in the challenge then, and for no error code when the
    request carried no credentials at all."""


def _challenge(exc: CertfleetError) -> dict[str, str] | None:
    if exc.http_status != 401:
        return None
    if isinstance(exc, InvalidToken):
        return {"WWW-Authenticate": 'Bearer realm="certfleet", error="invalid_token"'}
    return {"WWW-Authenticate": 'Bearer realm="certfleet"'}


def problem(status: int, title: str, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        {"type": "about:blank", "title": title, "status": status, "detail": detail},
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


# Seconds a client is asked to wait when the database is out of reach (a failover takes some).
DATABASE_RETRY_AFTER = "5"


def _describe(error: Any) -> str:
    where = ".".join(str(p) for p in error.get("loc", ()) if p != "body")
    kind = error.get("type")
    if kind == "extra_forbidden":
        return f"unknown field {where!r}"
    if kind == "missing":
        return f"{where}: required"
    message = str(error.get("msg", "invalid"))
    return f"{where}: {message}" if where else f"request body: {message}"


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(CertfleetError)
    async def _certfleet(_: Request, exc: CertfleetError) -> JSONResponse:
        return problem(exc.http_status, exc.title, exc.detail, _challenge(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        for error in errors:
            if error.get("type") == "json_invalid":
                # Syntax, not semantics: 400 (RFC 9110 section 15.5.1) rather than 422.
                reason = (error.get("ctx") or {}).get("error", "invalid JSON")
                return problem(400, "Invalid request", f"request body is not valid JSON: {reason}")
        detail = "; ".join(_describe(e) for e in errors) or "invalid request"
        return problem(422, "Invalid request", detail)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        title = HTTPStatus(exc.status_code).phrase
        return problem(exc.status_code, title, str(exc.detail), dict(exc.headers or {}))

    async def _outage(_: Request, exc: Exception) -> JSONResponse:
        outage = database_outage(exc) or "the database is unavailable: " + " ".join(str(exc).split())[:200]
        _log.error("request failed: %s", outage)
        return problem(503, "Service Unavailable", outage, {"Retry-After": DATABASE_RETRY_AFTER})

    # A database outage by its own types too: what reaches the Exception handler below is
    # answered and then re-raised by Starlette, and uvicorn logs its traceback; an outage
    # (a locked SQLite file, a restarting PostgreSQL) is one log line, not a crash report.
    # psycopg's and sqlite3's own as well: the token reader and the SQLite write gate raise them
    # unwrapped. psycopg only where it is loaded: the engine imports it when it connects to
    # PostgreSQL (before the application is built); a SQLite node never raises its errors and
    # need not carry it (about 9 MiB a worker).
    import sqlite3

    from sqlalchemy.exc import InterfaceError, OperationalError

    outage_types: list[type[Exception]] = [OperationalError, InterfaceError, sqlite3.OperationalError]
    psycopg = sys.modules.get("psycopg")
    if psycopg is not None:
        outage_types += [psycopg.OperationalError, psycopg.InterfaceError]
    for outage_type in outage_types:
        app.add_exception_handler(outage_type, _outage)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        outage = database_outage(exc)
        if outage is not None:
            _log.error("request failed: %s", outage)
            return problem(503, "Service Unavailable", outage, {"Retry-After": DATABASE_RETRY_AFTER})
        # Only the type and message: a traceback or a request body may hold secrets.
        _log.error("unhandled error: %s: %s", type(exc).__name__, exc)
        return problem(500, "Internal error", "the server failed to handle this request")
