"""One line, not a traceback, when the database drops a connection as it returns to the pool.

SQLAlchemy's pool rolls a connection back as it is returned; if that fails it logs "Exception
during reset or similar" at ERROR with the traceback, then discards the connection (the next
checkout gets a new one, checked by ``pool_pre_ping``). When PostgreSQL restarts or fails
over, a connection whose last statement succeeded can lose its server before it is returned:
handled, expected, and an operator should read one line about it, not a traceback that looks
like a crash. The same holds for "Error closing cursor", which SQLAlchemy logs the same way
when a result is closed before it was read to the end (a streamed read, ``yield_per``: closing
a server-side cursor is a round trip) on a connection whose server is gone. An interruption
(Ctrl-C, SIGTERM) that lands during the reset is not logged at all: the pool re-raises it. Any
other failure keeps SQLAlchemy's record as it is.
"""

from __future__ import annotations

import logging

__all__ = ["quiet_lost_connections"]

# The pool's logger (sqlalchemy.log: the class's qualified name; an engine's pool has no
# logging_name unless echo_pool is set), the messages SQLAlchemy logs on it with a traceback
# (a failed reset; a failed cursor close, through ``Connection._safe_close_cursor``) and the
# one line each becomes when the connection's server is gone.
_POOL_LOGGER = "sqlalchemy.pool.impl.QueuePool"
_RESET_FAILED = "Exception during reset or similar"
_CLOSE_FAILED = "Error closing cursor"
_ONE_LINE = {
    _RESET_FAILED: "a database connection was lost before it returned to the pool; discarded: %s",
    _CLOSE_FAILED: "a database connection was lost while a result was closed: %s",
}


class _LostOnReturn(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        one_line = _ONE_LINE.get(record.msg) if isinstance(record.msg, str) else None
        if one_line is None or not record.exc_info:
            return True
        error = record.exc_info[1]
        if isinstance(error, KeyboardInterrupt | SystemExit):
            # Ctrl-C or SIGTERM while the connection was reset: the pool discards it and
            # re-raises the interruption, which whoever stops reports; no traceback here.
            return False
        if not _lost_connection(error):
            return True
        record.msg = one_line
        record.args = (" ".join(str(error).split()),)
        record.exc_info = None
        record.exc_text = None
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def _lost_connection(error: BaseException | None) -> bool:
    """psycopg's errors for a connection whose server went away (closed, terminated by an
    administrator command, a broken socket) are OperationalError or InterfaceError."""
    import psycopg  # only PostgreSQL engines install the filter: psycopg is loaded

    return isinstance(error, psycopg.OperationalError | psycopg.InterfaceError)


_FILTER = _LostOnReturn()


def quiet_lost_connections() -> None:
    """Install the filter on the pool's logger (once; installing again changes nothing)."""
    logging.getLogger(_POOL_LOGGER).addFilter(_FILTER)
