"""PostgreSQL timestamps read by psycopg's own loader, in C.

Django reads every `timestamp with time zone` through a loader of its own, written in Python
(it parses the text with a regular expression): about 5 µs a value, 3 to 4 ms for the 700 or
so that a board of 300 people reads each time it is built. psycopg's loader, in C when psycopg
comes with its binary or C part (the lock files install `psycopg[binary]`), takes 0.3 µs.
Both read the value in the session's time zone, which Django sets to UTC on every connection
(USE_TZ): this loader gives the same datetimes, in `datetime.timezone.utc`, as Django's.

Used only where it changes nothing: PostgreSQL, USE_TZ with the database in UTC, and
psycopg's C loader present (the pure-Python one is the one Django already extends).
"""

import datetime

from django.conf import settings

UTC = datetime.UTC


def _c_loader():
    try:
        from psycopg import adapters, pq
        from psycopg.types.datetime import TimestamptzLoader as PythonLoader
    except ImportError:  # psycopg2, or no PostgreSQL driver
        return None
    loader = adapters.get_loader(adapters.types["timestamptz"].oid, pq.Format.TEXT)
    return None if loader is None or issubclass(loader, PythonLoader) else loader


_C_LOADER = _c_loader()

if _C_LOADER is not None:
    from psycopg.adapt import Loader

    class UtcTimestamptzLoader(Loader):
        # What Django compares with its connection's time zone before each cursor
        # (DatabaseWrapper.create_cursor): equal, so it leaves this loader in place.
        timezone = UTC

        def __init__(self, oid, context=None):
            super().__init__(oid, context)
            self._load = _C_LOADER(oid, context).load

        def load(self, data):
            value = self._load(data)
            return value if value.tzinfo is UTC else value.astimezone(UTC)


def connection_created(sender, connection, **kwargs):
    """Put the C loader in place on a new PostgreSQL connection, where it reads the same."""
    if (
        _C_LOADER is None
        or connection.vendor != "postgresql"
        or not settings.USE_TZ
        or connection.timezone is not UTC
    ):
        return
    connection.connection.adapters.register_loader("timestamptz", UtcTimestamptzLoader)
