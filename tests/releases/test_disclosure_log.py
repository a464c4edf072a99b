"""The disclosure log is append-only: the model, its querysets and (on PostgreSQL) a database
trigger all refuse to change or remove a written row."""

import importlib
from types import SimpleNamespace

import pytest
from django.db import DatabaseError, connection, transaction

from releases import gate
from releases.models import DisclosureLog, Scope
from tests.releases.factories import make_consent, make_person, make_recipient

pytestmark = pytest.mark.django_db

MIGRATION = importlib.import_module("releases.migrations.0002_disclosure_log_append_only")
LOG_TABLE = DisclosureLog._meta.db_table


@pytest.fixture
def row(site, clinician):
    person = make_person(site=site)
    provider = make_recipient(site=site)
    make_consent(person=person, recipients=[provider])
    gate.release_attempt(
        site=site,
        path="test",
        asked_by=clinician,
        person=person,
        recipient=provider,
        purpose="attendance",
        scope=[Scope.ATTENDANCE],
    )
    return DisclosureLog.objects.get()


def snapshot(pk):
    return DisclosureLog.objects.filter(pk=pk).values().get()


def test_rows_can_be_added(row, site):
    assert row.decision == "granted"
    DisclosureLog.objects.create(
        at=row.at, site=site, path="test", decision="refused", reason="no_consent"
    )
    assert DisclosureLog.objects.count() == 2


def test_instance_save_of_a_written_row_is_refused(row):
    before = snapshot(row.pk)
    row.decision = "refused"
    row.reason = "no_consent"
    with pytest.raises(PermissionError):
        row.save()
    with pytest.raises(PermissionError):
        row.save(update_fields=["decision"])
    assert snapshot(row.pk) == before


def test_instance_delete_is_refused(row):
    before = snapshot(row.pk)
    with pytest.raises(PermissionError):
        row.delete()
    assert snapshot(row.pk) == before


@pytest.mark.parametrize(
    "change",
    [
        lambda: DisclosureLog.objects.filter(pk__gt=0).update(decision="refused"),
        lambda: DisclosureLog.objects.update(reason="tidied"),
        lambda: DisclosureLog.objects.all().update(reason="tidied"),
        lambda: DisclosureLog.objects.filter(pk__gt=0).delete(),
        lambda: DisclosureLog.objects.all().delete(),
        lambda: DisclosureLog.objects.order_by().delete(),
    ],
    ids=["filter-update", "manager-update", "all-update", "filter-delete", "all-delete", "ob-del"],
)
def test_queryset_update_and_delete_are_refused(row, change):
    before = snapshot(row.pk)
    with pytest.raises(PermissionError):
        change()
    assert snapshot(row.pk) == before


def test_bulk_update_is_refused(row):
    before = snapshot(row.pk)
    row.reason = "tidied"
    with pytest.raises(PermissionError), transaction.atomic():
        DisclosureLog.objects.bulk_update([row], ["reason"])
    assert snapshot(row.pk) == before


def test_related_managers_refuse_too(row):
    before = snapshot(row.pk)
    with pytest.raises(PermissionError):
        row.person.disclosures.update(reason="tidied")
    with pytest.raises(PermissionError):
        row.person.disclosures.all().delete()
    assert snapshot(row.pk) == before


def test_deleting_the_person_is_protected(row):
    from django.db.models import ProtectedError

    with pytest.raises(ProtectedError), transaction.atomic():
        row.person.delete()
    assert DisclosureLog.objects.filter(pk=row.pk).exists()


# --- the database itself (PostgreSQL) ------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.parametrize(
    "sql",
    [
        f"UPDATE {LOG_TABLE} SET decision = 'refused', reason = 'rewritten' WHERE id = %s",  # noqa: S608
        f"DELETE FROM {LOG_TABLE} WHERE id = %s",  # noqa: S608
    ],
    ids=["update", "delete"],
)
def test_raw_sql_update_and_delete_are_refused_by_the_trigger(row, sql):
    before = snapshot(row.pk)
    with (
        pytest.raises(DatabaseError) as caught,
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql, [row.pk])
    # The trigger, or (the application's role, with two roles) its grants, first.
    assert "append-only" in str(caught.value) or "permission denied" in str(caught.value)
    assert getattr(caught.value.__cause__, "sqlstate", None) == "42501"
    assert snapshot(row.pk) == before


@pytest.mark.postgres
def test_the_base_manager_cannot_update_either_on_postgresql(row):
    """`_base_manager` is a plain Manager (not the guarded queryset); the trigger stops it."""
    before = snapshot(row.pk)
    with pytest.raises(DatabaseError), transaction.atomic():
        DisclosureLog._base_manager.filter(pk=row.pk).update(reason="tidied")
    with pytest.raises(DatabaseError), transaction.atomic():
        DisclosureLog._base_manager.filter(pk=row.pk)._raw_delete(connection.alias)
    assert snapshot(row.pk) == before


@pytest.mark.postgres
def test_triggers_exist_on_postgresql():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tgname, tgrelid::regclass::text FROM pg_trigger WHERE NOT tgisinternal"
        )
        triggers = set(cursor.fetchall())
    assert ("releases_disclosure_log_append_only", LOG_TABLE) in triggers
    assert ("releases_recipient_category_fixed", "releases_recipient") in triggers


@pytest.mark.sqlite
def test_sqlite_has_only_the_recipient_category_trigger():
    with connection.cursor() as cursor:
        cursor.execute("SELECT name, tbl_name FROM sqlite_master WHERE type = 'trigger'")
        triggers = set(cursor.fetchall())
    assert ("releases_recipient_category_fixed", "releases_recipient") in triggers
    assert not any(name == "releases_disclosure_log_append_only" for name, _ in triggers)


class FakeSchemaEditor:
    def __init__(self, vendor):
        self.connection = SimpleNamespace(vendor=vendor)
        self.executed = []

    def execute(self, sql, params=()):
        self.executed.append((sql, params))


@pytest.mark.parametrize("vendor", ["postgresql", "sqlite", "mysql", "oracle"])
def test_the_migration_creates_triggers_only_for_its_vendor(vendor):
    editor = FakeSchemaEditor(vendor)
    MIGRATION.create(None, editor)
    sql = "\n".join(statement for statement, _ in editor.executed)
    if vendor == "postgresql":
        assert "BEFORE UPDATE OR DELETE ON releases_disclosurelog" in sql
        assert "releases_recipient_category_fixed" in sql
        # PL/pgSQL uses % itself: the statement must not be run with placeholders.
        assert all(params is None for _, params in editor.executed)
    elif vendor == "sqlite":
        assert "releases_recipient_category_fixed" in sql
        assert "releases_disclosurelog" not in sql
        assert "plpgsql" not in sql
    else:
        assert editor.executed == []


@pytest.mark.parametrize("vendor", ["postgresql", "sqlite", "mysql"])
def test_the_migration_reverses_only_for_its_vendor(vendor):
    editor = FakeSchemaEditor(vendor)
    MIGRATION.drop(None, editor)
    sql = "\n".join(statement for statement, _ in editor.executed)
    if vendor == "postgresql":
        assert "DROP TRIGGER IF EXISTS releases_disclosure_log_append_only" in sql
    elif vendor == "sqlite":
        assert "releases_recipient_category_fixed" in sql
        assert "disclosure" not in sql
    else:
        assert editor.executed == []
