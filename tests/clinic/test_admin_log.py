"""The admin's action log is append-only: the database refuses UPDATE and DELETE of its rows
(clinic/migrations/0008), on SQLite and on PostgreSQL; new entries are still written."""

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import DatabaseError, connection, transaction
from django.urls import reverse

from clinic.models import Site


@pytest.fixture
def entry(site, director):
    return LogEntry.objects.create(
        user=director,
        content_type=ContentType.objects.get_for_model(Site),
        object_id=str(site.pk),
        object_repr=str(site),
        action_flag=CHANGE,
        change_message="[]",
    )


def snapshot(entry) -> dict:
    return LogEntry.objects.filter(pk=entry.pk).values().get()


def refused(action):
    with pytest.raises(DatabaseError), transaction.atomic():
        action()


def test_admin_changes_are_still_logged(client, site, director):
    client.force_login(director)
    page = client.get(reverse("admin:clinic_site_change", args=[site.pk]))
    data = {
        "name": "Riverside Community Health",
        "slug": site.slug,
        "timezone": site.timezone,
        "ticket_prefix": site.ticket_prefix,
        "wait_warning_minutes": "20",
        "is_active": "on",
    }
    for prefix in ("services", "rooms", "memberships"):
        formset = next(
            f.formset for f in page.context["inline_admin_formsets"] if f.formset.prefix == prefix
        )
        data.update(
            {
                f"{prefix}-TOTAL_FORMS": "0",
                f"{prefix}-INITIAL_FORMS": "0",
                f"{prefix}-MAX_NUM_FORMS": str(formset.max_num),
            }
        )
    assert client.post(reverse("admin:clinic_site_change", args=[site.pk]), data).status_code == 302
    assert LogEntry.objects.filter(user=director, object_id=str(site.pk)).count() == 1


@pytest.mark.parametrize("how", ["save", "update", "delete", "queryset_delete"])
def test_the_orm_cannot_change_or_delete_a_log_entry(entry, how):
    before = snapshot(entry)
    entry.change_message = "nothing happened"
    action = {
        "save": entry.save,
        "update": lambda: LogEntry.objects.filter(pk=entry.pk).update(object_repr="elsewhere"),
        "delete": entry.delete,
        "queryset_delete": lambda: LogEntry.objects.filter(pk=entry.pk).delete(),
    }[how]
    refused(action)
    assert snapshot(entry) == before


def test_deleting_an_account_with_log_entries_is_refused(entry, director):
    refused(director.delete)
    assert LogEntry.objects.filter(pk=entry.pk).exists()


def _raw(sql: str, entry) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, [entry.pk])


RAW = [
    "UPDATE django_admin_log SET change_message = 'rewritten' WHERE id = %s",
    "DELETE FROM django_admin_log WHERE id = %s",
]


@pytest.mark.sqlite
@pytest.mark.parametrize("sql", RAW, ids=["update", "delete"])
def test_raw_sql_on_sqlite_is_refused(entry, sql):
    before = snapshot(entry)
    refused(lambda: _raw(sql, entry))
    assert snapshot(entry) == before


@pytest.mark.postgres
@pytest.mark.parametrize("sql", RAW, ids=["update", "delete"])
def test_raw_sql_on_postgresql_is_refused(entry, sql):
    before = snapshot(entry)
    refused(lambda: _raw(sql, entry))
    assert snapshot(entry) == before


@pytest.mark.postgres
def test_on_postgresql_the_trigger_is_there_and_says_why(entry):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = 'django_admin_log'::regclass "
            "AND NOT tgisinternal"
        )
        assert [row[0] for row in cursor.fetchall()] == ["clinic_admin_log_append_only"]
    # The application's role is refused by its grants before the trigger is reached (with two
    # roles, as in CI); a role that may write the table meets the trigger
    # (tests/clinic/test_db_roles.py tries both).
    with pytest.raises(DatabaseError, match=r"append-only|permission denied"), transaction.atomic():
        _raw(RAW[1], entry)


@pytest.mark.sqlite
def test_on_sqlite_both_triggers_are_there(db):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT name FROM sqlite_master "
            "WHERE type = 'trigger' AND tbl_name = 'django_admin_log'"
        )
        assert sorted(row[0] for row in cursor.fetchall()) == [
            "clinic_admin_log_no_delete",
            "clinic_admin_log_no_update",
        ]
