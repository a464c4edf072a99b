"""Audit trails nobody can erase: two database roles, append-only tables, queue changes only
with their event, sealed visits.

On PostgreSQL with two roles (CI) the tests run as the application's role, as the product
does: what it may not do is refused by its grants; the owner role, which may write the tables,
meets the triggers. On SQLite the triggers are all there is.
"""

import pytest
from django.contrib.admin.models import ADDITION, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from clinic.access import access_log_record
from clinic.db_roles import APPEND_ONLY_TABLES, READ_ONLY_TABLES, as_owner
from clinic.models import AccessLog, LockoutEvent, Site
from clinic.throttling import lockout_record
from queues import services as queue
from queues.errors import QueueError
from queues.models import Arrival, ArrivalEvent, State
from tests.factories import PersonFactory, check_in
from visits.models import Addendum, Medication, MedicationEvent, Visit
from visits.services import visits as visit_services


def refused(sql: str, params=()) -> str:
    """Run `sql`; it must be refused. Returns the database's message."""
    with pytest.raises(DatabaseError) as caught, transaction.atomic(), connection.cursor() as c:
        c.execute(sql, params)
    return str(caught.value)


@pytest.fixture
def audit_rows(site, front_desk, clinician, director):
    """One row in each of the append-only tables the product writes in a day."""
    person = PersonFactory(site=site)
    arrival = check_in(site=site, by=front_desk, person=person)
    queue.arrival_call(arrival=arrival, by=clinician, revision=None)
    queue.arrival_start(arrival=arrival, by=clinician, revision=None)
    visit = Visit.objects.get(arrival=arrival)
    visit_services.visit_end(visit=visit, by=clinician)
    visit_services.visit_add_addendum(visit=visit, by=clinician, text="A later note.")
    access_log_record(user=clinician, site=site, what=AccessLog.What.VISIT, person=person)
    lockout_record(username=front_desk.username, ip_address="10.0.0.9")
    LogEntry.objects.create(
        user=director,
        content_type=ContentType.objects.get_for_model(Site),
        object_id=str(site.pk),
        object_repr=str(site),
        action_flag=ADDITION,
    )
    return {"arrival": arrival, "visit": visit}


# --- the application's role (PostgreSQL, two roles) ---------------------------------------------


@pytest.mark.app_role
@pytest.mark.parametrize("table", APPEND_ONLY_TABLES)
def test_the_application_role_may_not_rewrite_or_empty_an_audit_table(db, table):
    for sql in (
        f"UPDATE {table} SET id = id",  # noqa: S608
        f"DELETE FROM {table}",  # noqa: S608
        f"TRUNCATE {table} CASCADE",
    ):
        assert "permission denied" in refused(sql), sql
    assert "must be owner" in refused(f"ALTER TABLE {table} DISABLE TRIGGER ALL")
    # And it may still read, and add (the history of changes only through its triggers).
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT has_table_privilege(%s, 'SELECT'), has_table_privilege(%s, 'INSERT')",
            [table, table],
        )
        assert cursor.fetchone() == (True, table not in READ_ONLY_TABLES)


@pytest.mark.app_role
def test_the_application_role_can_neither_silence_triggers_nor_change_the_schema(db):
    assert "permission denied" in refused("SET session_replication_role = replica")
    assert "permission denied" in refused("CREATE TABLE escape (id int)")
    assert "must be owner" in refused("ALTER TABLE queue_arrival DISABLE TRIGGER USER")
    assert "must be owner" in refused(
        "DROP TRIGGER queue_arrival_change_has_event ON queue_arrival"
    )


@pytest.mark.app_role
def test_the_application_role_owns_nothing_and_the_owner_is_no_superuser(db):
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        (app,) = cursor.fetchone()
        cursor.execute("SELECT count(*) FROM pg_tables WHERE tableowner = %s", [app])
        assert cursor.fetchone() == (0,)
        cursor.execute("SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'")
        owners = [row[0] for row in cursor.fetchall()]
        assert owners and app not in owners
        cursor.execute(
            "SELECT bool_or(rolsuper) FROM pg_roles WHERE rolname = ANY(%s)", [[app, *owners]]
        )
        assert cursor.fetchone() == (False,)


@pytest.mark.app_role
def test_the_application_role_may_only_insert_and_read_an_audit_table_it_still_uses(
    audit_rows, site
):
    # Ordinary tables stay writable (the product works), audit tables grow.
    before = AccessLog.objects.count()
    access_log_record(user=audit_rows["visit"].opened_by, site=site, what=AccessLog.What.VISIT)
    assert AccessLog.objects.count() == before + 1


# --- the triggers: what the owner role (or anyone on SQLite) meets ------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_triggers_refuse_rewriting_every_audit_table_even_for_the_owner(audit_rows):
    with as_owner():
        for table in APPEND_ONLY_TABLES:
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT count(*) FROM {table}")  # noqa: S608
                if not cursor.fetchone()[0]:
                    continue  # the disclosure log and emergency releases: tests/releases
            for sql in (f"UPDATE {table} SET id = id", f"DELETE FROM {table}"):  # noqa: S608
                assert "append-only" in refused(sql), sql
    assert ArrivalEvent.objects.count() == 4
    assert LockoutEvent.objects.count() == 1
    assert Addendum.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_every_audit_table_has_its_triggers():
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT DISTINCT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                "WHERE NOT t.tgisinternal AND t.tgenabled = 'O' "
                "AND (t.tgname LIKE '%%append_only%%' OR t.tgname LIKE '%%no_delete%%')"
            )
        else:
            cursor.execute(
                "SELECT DISTINCT tbl_name FROM sqlite_master WHERE type = 'trigger' "
                "AND (name LIKE '%append_only%' OR name LIKE '%no_delete%')"
            )
        assert set(APPEND_ONLY_TABLES) <= {row[0] for row in cursor.fetchall()}


# --- a place in line changes only with its event --------------------------------------------------


def test_a_queue_row_changes_state_only_with_the_event_for_that_change(site, front_desk):
    arrival = check_in(site=site, by=front_desk, name="Marcus")
    with pytest.raises(DatabaseError), transaction.atomic():
        Arrival.objects.filter(pk=arrival.pk).update(state=State.LEFT)
    with pytest.raises(DatabaseError), transaction.atomic():
        # An event for another change than the one made is not enough either.
        ArrivalEvent.objects.create(
            arrival=arrival,
            site=site,
            kind="left",
            at=arrival.state_changed_at,
            from_state=State.WAITING,
            to_state=State.STEPPED_OUT,
            revision=arrival.revision + 1,
        )
        Arrival.objects.filter(pk=arrival.pk).update(
            state=State.LEFT, revision=arrival.revision + 1
        )
    arrival.refresh_from_db()
    assert (arrival.state, arrival.revision) == (State.WAITING, 1)
    # Through the service (event first, then the row) it works, and other fields stay free.
    queue.arrival_mark_left(arrival=arrival, by=front_desk, revision=1)
    Arrival.objects.filter(pk=arrival.pk).update(urgent_reason="")
    arrival.refresh_from_db()
    assert (arrival.state, arrival.revision) == (State.LEFT, 2)
    assert list(arrival.events.values_list("revision", flat=True)) == [1, 2]


# --- sealed visits ----------------------------------------------------------------------------


def test_closing_the_day_seals_ended_visits_and_then_nothing_in_them_changes(
    site, front_desk, clinician, audit_rows
):
    visit = audit_rows["visit"]
    visit.refresh_from_db()
    assert visit.sealed_at is None

    def add_medication():
        return MedicationEvent.objects.create(
            visit=visit,
            medication=Medication.BUPRENORPHINE_SL,
            dose="16 mg",
            days_supply=7,
            action=MedicationEvent.Action.DISPENSED,
            recorded_by=clinician,
            recorded_at=timezone.now(),
        )

    add_medication()  # accepted while the visit is not sealed
    queue.queue_close_day(site=site, by=front_desk)
    visit.refresh_from_db()
    assert visit.sealed_at is not None

    for change in (
        lambda: Visit.objects.filter(pk=visit.pk).update(note="rewritten"),
        lambda: Visit.objects.filter(pk=visit.pk).update(sealed_at=None),
        lambda: Visit.objects.filter(pk=visit.pk).delete(),
        add_medication,
        lambda: visit.participants.all().delete(),
        lambda: Addendum.objects.filter(visit=visit).update(text="rewritten"),
    ):
        with pytest.raises(DatabaseError), transaction.atomic():
            change()
    assert visit.medications.count() == 1
    # Corrections are addenda.
    visit_services.visit_add_addendum(visit=visit, by=clinician, text="Corrected dose.")
    assert visit.addenda.count() == 2


def test_done_cannot_be_undone_once_the_day_is_closed(site, front_desk, clinician, audit_rows):
    arrival = audit_rows["arrival"]
    queue.queue_close_day(site=site, by=front_desk)
    with pytest.raises(QueueError) as info:
        queue.arrival_undo(arrival=arrival, by=clinician, revision=None)
    assert info.value.code == "visit_sealed"
    arrival.refresh_from_db()
    assert arrival.state == State.DONE


def test_before_the_day_is_closed_done_can_still_be_undone(site, clinician, audit_rows):
    arrival = audit_rows["arrival"]
    queue.arrival_undo(arrival=arrival, by=clinician, revision=None)
    audit_rows["visit"].refresh_from_db()
    assert audit_rows["visit"].ended_at is None


def test_an_open_visit_cannot_be_sealed(site, clinician, front_desk):
    arrival = check_in(site=site, by=front_desk, name="Jess")
    queue.arrival_call(arrival=arrival, by=clinician, revision=None)
    queue.arrival_start(arrival=arrival, by=clinician, revision=None)
    with pytest.raises(DatabaseError), transaction.atomic():
        Visit.objects.filter(arrival=arrival).update(sealed_at=timezone.now())
