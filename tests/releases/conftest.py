"""Fixtures for the releases tests."""

import pytest
from django.db import connection


@pytest.fixture
def consents_flushable(transactional_db):
    """For transactional tests that record consents on SQLite.

    A signed consent's recipients and purposes cannot be deleted while the consent exists
    (migration 0005), and Django's SQLite flush deletes tables in no fixed order. Delete the
    consent rows first (SQLite does not guard the consent row itself), so the flush after the
    test can delete their children. PostgreSQL flushes with TRUNCATE, which triggers ignore.
    """
    yield
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA foreign_keys = OFF")
            cursor.execute("DELETE FROM releases_consent")
            cursor.execute("PRAGMA foreign_keys = ON")
