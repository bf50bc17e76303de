"""A connection PostgreSQL drops before it returns to the pool (a restart, a failover) is
logged as one line, not as SQLAlchemy's traceback; other log records are untouched."""

from __future__ import annotations

import logging
import sys

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from certfleet.store import Database


def test_a_connection_lost_before_its_return_is_one_warning_line(
    pg_database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    database = Database(pg_database_url)
    try:
        victim = database.engine.raw_connection()
        cursor = victim.cursor()
        cursor.execute("SELECT pg_backend_pid()")
        row = cursor.fetchone()
        assert row is not None
        cursor.close()  # the read's transaction is still open: returning it rolls it back
        with database.engine.connect() as admin:
            admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": row[0]})
            admin.commit()
        with caplog.at_level(logging.WARNING, logger="sqlalchemy.pool"):
            victim.close()  # the pool's reset fails: the server is gone
        pooled = [r for r in caplog.records if r.name.startswith("sqlalchemy.pool")]
        assert [(r.levelname, r.exc_info) for r in pooled] == [("WARNING", None)]
        message = pooled[0].getMessage()
        assert message.startswith("a database connection was lost before it returned to the pool")
        assert "\n" not in message and "Traceback" not in caplog.text
        # and the pool hands out a working connection next
        with database.engine.connect() as conn:
            assert conn.execute(text("SELECT 1")).scalar_one() == 1
    finally:
        database.dispose()


def test_a_stream_closed_on_a_lost_connection_is_one_warning_line(
    pg_database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A streamed read (``yield_per``: a server-side cursor) left before its end is closed by a
    round trip; when PostgreSQL dropped the connection meanwhile (a restart under load),
    SQLAlchemy logs "Error closing cursor" with a traceback: one warning line instead."""
    database = Database(pg_database_url)
    try:
        with pytest.raises(OperationalError), database.engine.connect() as conn:
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
            result = conn.execution_options(yield_per=10).execute(text("SELECT generate_series(1, 1000)"))
            assert len(result.fetchmany(5)) == 5
            with database.engine.connect() as admin:
                admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
                admin.commit()
            with caplog.at_level(logging.WARNING, logger="sqlalchemy.pool"):
                result.close()  # closing the server-side cursor fails: the server is gone
        pooled = [r for r in caplog.records if r.name.startswith("sqlalchemy.pool")]
        assert [(r.levelname, r.exc_info) for r in pooled] == [("WARNING", None)]
        message = pooled[0].getMessage()
        assert message.startswith("a database connection was lost while a result was closed: ")
        assert "terminating connection" in message
        assert "\n" not in message and "Traceback" not in caplog.text
        with database.engine.connect() as conn:
            assert conn.execute(text("SELECT 1")).scalar_one() == 1
    finally:
        database.dispose()


def test_other_records_of_the_pool_logger_are_untouched(pg_database_url: str) -> None:
    Database(pg_database_url).dispose()  # installs the filter
    logger = logging.getLogger("sqlalchemy.pool.impl.QueuePool")
    try:
        raise ValueError("not a lost connection")
    except ValueError:
        record = logger.makeRecord(
            logger.name, logging.ERROR, __file__, 1, "Exception during reset or similar", (), None
        )
        record.exc_info = sys.exc_info()
    assert all(f.filter(record) for f in logger.filters)
    assert record.levelname == "ERROR" and record.exc_info is not None


def test_an_interrupt_during_the_reset_is_not_logged(pg_database_url: str) -> None:
    """Ctrl-C or SIGTERM landing while a connection is reset: the pool re-raises it (the CLI
    exits 130 or 143, saying so itself), so no record and no traceback on stderr."""
    Database(pg_database_url).dispose()  # installs the filter
    logger = logging.getLogger("sqlalchemy.pool.impl.QueuePool")
    for interruption in (KeyboardInterrupt(), SystemExit(143)):
        try:
            raise interruption
        except (KeyboardInterrupt, SystemExit):
            record = logger.makeRecord(
                logger.name, logging.ERROR, __file__, 1, "Exception during reset or similar", (), None
            )
            record.exc_info = sys.exc_info()
        assert not all(f.filter(record) for f in logger.filters)
