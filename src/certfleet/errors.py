"""The one exception hierarchy of certfleet.

::

    CertfleetError                  every error certfleet raises on purpose
    ├── InvalidInput                malformed or unacceptable input (CLI exit 2, HTTP 400)
    │   └── PolicyViolation         a well-formed request that a rule refuses (HTTP 403)
    ├── Unauthenticated             missing or bad credentials (HTTP 401)
    ├── Forbidden                   authenticated, but not allowed (HTTP 403)
    ├── NotFound                    no such object, or not visible to the caller (HTTP 404)
    ├── Conflict                    the state forbids the change, e.g. already initialised (HTTP 409)
    ├── IntegrityError              stored data failed a consistency check (e.g. the audit chain)
    └── ConfigurationError          unusable configuration or data directory

Packages define their own subclasses in their ``errors.py``; foreign exceptions are translated
at the boundary with ``raise ... from``. Each error carries a one-line ``detail`` fit to show to
a user: no traceback, no secret.
"""

from __future__ import annotations

import sys

__all__ = [
    "CertfleetError",
    "ConfigurationError",
    "Conflict",
    "Forbidden",
    "IntegrityError",
    "InvalidInput",
    "NotFound",
    "PolicyViolation",
    "Unauthenticated",
    "database_outage",
]


class CertfleetError(Exception):
    """Root of every deliberate certfleet error. A subclass states its HTTP status and title
    in its class line (``class NotFound(CertfleetError, http_status=404, title="Not found")``);
    one it leaves out is inherited."""

    http_status: int = 500
    title: str = "Internal error"

    def __init_subclass__(cls, *, http_status: int | None = None, title: str | None = None) -> None:
        super().__init_subclass__()
        if http_status is not None:
            cls.http_status = http_status
        if title is not None:
            cls.title = title

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidInput(CertfleetError, http_status=400, title="Invalid input"):
    pass


class PolicyViolation(InvalidInput, http_status=403, title="Policy violation"):
    """A request refused by a named rule."""

    def __init__(self, detail: str, rule: str | None = None) -> None:
        super().__init__(detail)
        self.rule = rule


class Unauthenticated(CertfleetError, http_status=401, title="Unauthenticated"):
    pass


class Forbidden(CertfleetError, http_status=403, title="Forbidden"):
    pass


class NotFound(CertfleetError, http_status=404, title="Not found"):
    pass


class Conflict(CertfleetError, http_status=409, title="Conflict"):
    pass


class IntegrityError(CertfleetError, title="Integrity check failed"):
    pass


class ConfigurationError(CertfleetError, title="Configuration error"):
    pass


def database_outage(exc: BaseException) -> str | None:
    """One line saying the database is out of reach when ``exc`` is a lost or refused
    connection or a lock held past the wait (SQLAlchemy's OperationalError or InterfaceError,
    psycopg's own, sqlite3's from the write gate's bounded wait), else None: what the edges
    answer with 503 and Retry-After (HTTP) or one line and exit 2 (CLI), never as a bug.

    Nothing is imported here: an error of SQLAlchemy's, sqlite3's or psycopg's can only come
    from a process that loaded it, and the CLI's error path must not pay their imports."""
    sqlalchemy_errors = sys.modules.get("sqlalchemy.exc")
    if sqlalchemy_errors is not None and isinstance(
        exc, sqlalchemy_errors.OperationalError | sqlalchemy_errors.InterfaceError
    ):
        orig = exc.orig
        exc = orig if isinstance(orig, BaseException) else exc
    elif not any(
        t.__name__ == "OperationalError" and t.__module__.startswith(("psycopg", "sqlite3"))
        for t in type(exc).__mro__
    ):
        return None
    return "the database is unavailable: " + " ".join(str(exc).split())[:200]
