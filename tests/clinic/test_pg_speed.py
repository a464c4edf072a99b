"""PostgreSQL: the statements a kept connection repeats are planned once (prepared), and
timestamps are read by psycopg's C loader, with the same values Django's own loader gives."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from django.db import connection
from django.urls import reverse

from clinic import pg_timestamps
from queues.models import Arrival
from tests.factories import check_in

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def test_timestamps_are_read_by_the_c_loader_as_the_same_datetimes_in_utc(site, front_desk):
    from psycopg.pq import Format

    moments = [
        datetime(2025, 1, 15, 9, 0, 0, 123456, tzinfo=timezone(timedelta(hours=-6))),
        datetime(2025, 7, 1, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(1999, 12, 31, 0, 0, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    ]
    made = [check_in(site=site, by=front_desk, name=f"P{i}", now=m) for i, m in enumerate(moments)]

    read = list(
        Arrival.objects.filter(pk__in=[a.pk for a in made])
        .order_by("pk")
        .values_list("arrived_at", flat=True)
    )

    loader = connection.connection.adapters.get_loader(1184, Format.TEXT)
    assert loader is pg_timestamps.UtcTimestamptzLoader
    assert read == moments
    assert all(value.tzinfo is UTC for value in read)


def test_a_null_timestamp_stays_none(site, front_desk):
    arrival = check_in(site=site, by=front_desk, name="No appointment")

    assert Arrival.objects.values_list("appointment_at", flat=True).get(pk=arrival.pk) is None


def test_pages_repeated_on_a_kept_connection_are_prepared(client, site, front_desk, clinician):
    """The board's statements, asked for again and again, are planned once per connection."""
    client.force_login(clinician)
    for n in range(3):
        check_in(site=site, by=front_desk, name=f"Person {n}")  # a change: the rows are read
        assert client.get(reverse("queues:board")).status_code == 200

    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in cursor.fetchall()]

    assert any('FROM "queue_arrival"' in sql for sql in prepared)
    assert any('FROM "clinic_site"' in sql for sql in prepared)
