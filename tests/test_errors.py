"""database_outage: the foreign errors every edge answers as "the database is unavailable"
(HTTP 503, CLI one line and exit 2) rather than as a bug."""

from __future__ import annotations

import sqlite3

import psycopg
import pytest
from sqlalchemy.exc import InterfaceError, OperationalError

from certfleet.errors import database_outage


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (sqlite3.OperationalError("database is locked"), "database is locked"),
        (OperationalError("BEGIN", {}, sqlite3.OperationalError("database is locked")), "database is locked"),
        (
            InterfaceError("SELECT 1", {}, psycopg.InterfaceError("the connection is closed")),
            "the connection",
        ),
        (psycopg.OperationalError("connection refused\n\tIs the server running?"), "connection refused Is"),
    ],
)
def test_a_lost_or_locked_database_is_one_line(error: BaseException, expected: str) -> None:
    outage = database_outage(error)
    assert outage is not None and outage.startswith(f"the database is unavailable: {expected}")
    assert "\n" not in outage and len(outage) <= 230


@pytest.mark.parametrize("error", [RuntimeError("a bug"), ValueError("database is locked"), KeyError("x")])
def test_anything_else_is_not_an_outage(error: BaseException) -> None:
    assert database_outage(error) is None
