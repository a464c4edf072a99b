"""The history of changes, as the database writes it (clinic/history.py).

Every audited table, through every way of writing: the ORM (save, delete), queryset
`.update()`, `bulk_create` and raw SQL. Each must write exactly the expected history rows:
table and row, the person and site, the operation, who and through what, and the columns
with their values (all of them on INSERT and DELETE, only the changed ones on UPDATE). The
suite runs on SQLite and on PostgreSQL, so every test here runs on both.
"""

# ruff: noqa: S608 (SQL from the models' own table and column names)

import datetime as dt
import uuid
from dataclasses import dataclass, field

import pytest
from django.db import IntegrityError, connection, models, transaction
from django.db.utils import DatabaseError
from django.utils import timezone

from clinic import history, roles
from clinic.db_roles import APPEND_ONLY_TABLES
from clinic.history import HISTORY_TABLE, decoded_changes, history_actor
from clinic.models import ChangeHistory, Discipline, Person, PersonMerge
from releases.models import Consent, ConsentPurpose, ExpiryEventRecord, Revocation
from tests.factories import PersonFactory, ServiceFactory, make_staff
from tests.releases.factories import SIGNATURE, make_consent, make_recipient
from visits.models import (
    Addendum,
    Appointment,
    Goal,
    GoalProgress,
    Medication,
    MedicationEvent,
    Substance,
    ToxResult,
    ToxScreen,
    Visit,
    VisitParticipant,
)

NOW = timezone.now().replace(microsecond=123456)
TODAY = dt.date(2025, 3, 14)


@dataclass
class World:
    """Parents for every audited row: a person at a site, staff, a visit, a tox screen, a goal
    and an unsealed consent (a sealed one refuses changes to its children)."""

    site: object
    person: object
    staff: list
    services: list
    recipients: list
    visit: object = None
    screen: object = None
    goal: object = None
    consent: object = None
    extra: dict = field(default_factory=dict)


@pytest.fixture
def world(site):
    staff = [
        make_staff(site=site, roles=[roles.CLINICIAN], username=f"clin{i}", first_name=f"C{i}")
        for i in range(3)
    ]
    person = PersonFactory(site=site, name="Marcus")
    w = World(
        site=site,
        person=person,
        staff=staff,
        services=[ServiceFactory(site=site, name=f"Service {i}") for i in range(4)],
        recipients=[make_recipient(site=site, organisation=f"Org {i}") for i in range(4)],
    )
    w.visit = Visit.objects.create(site=site, person=person, started_at=NOW, opened_by=staff[0])
    w.screen = ToxScreen.objects.create(
        visit=w.visit,
        specimen=ToxScreen.Specimen.URINE,
        collected_on=TODAY,
        recorded_by=staff[0],
        recorded_at=NOW,
    )
    w.goal = Goal.objects.create(
        person=person, words="A place of my own", set_on=TODAY, status_changed_at=NOW,
        created_by=staff[0],
    )  # fmt: skip
    w.consent = make_consent(person=person, recipients=[], purposes=(), seal=False)
    w.extra["kept"] = PersonFactory(site=site, name="Marcus K.")
    return w


@dataclass(frozen=True)
class Case:
    """How to make the i-th row of a table (unsaved), and one change to it (column name and a
    function of the world giving the new value); no change: the database refuses UPDATE."""

    make: object
    change: tuple | None
    # After the change the database refuses DELETE of the row (a sealed consent on PostgreSQL).
    change_seals: bool = False


CASES = {
    "clinic_person": Case(
        lambda w, i: Person(site=w.site, name=f"Sam {i}", phone="555-0100", what_helps="Tea"),
        ("name", lambda w: "Samuel"),
    ),
    # A merge concerns its second record; only a proposal changes, and only by being decided
    # (clinic migration 0012).
    "clinic_personmerge": Case(
        lambda w, i: PersonMerge(
            site=w.site,
            kept=w.extra["kept"],
            duplicate=w.person,
            reason="Same birthday, same dog",
            take_from_duplicate=["phone"],
            snapshot={"kept": {"name": "Marcus K."}, "duplicate": {"name": "Marcus"}},
            nonce=uuid.UUID(int=i + 1),
            proposed_by=w.staff[0],
            proposed_at=NOW,
        ),
        ("decline_reason", lambda w: "Two brothers"),
    ),
    "visits_visit": Case(
        lambda w, i: Visit(
            site=w.site,
            person=w.person,
            started_at=NOW + dt.timedelta(hours=i),
            day=TODAY,
            opened_by=w.staff[0],
            priorities="Housing first",
            note="Talked about the winter shelter",
        ),
        ("ended_at", lambda w: NOW + dt.timedelta(hours=30)),
    ),
    "visits_visitparticipant": Case(
        lambda w, i: VisitParticipant(
            visit=w.visit, user=w.staff[i], discipline=Discipline.NURSE, joined_at=NOW
        ),
        ("discipline", lambda w: Discipline.PHYSICIAN),
    ),
    "visits_visit_services": Case(
        lambda w, i: Visit.services.through(visit=w.visit, service=w.services[i]),
        ("service_id", lambda w: w.services[3].pk),
    ),
    # Addenda are append-only (clinic/db_roles.py): no change, no delete; only inserts.
    "visits_addendum": Case(
        lambda w, i: Addendum(visit=w.visit, author=w.staff[0], written_at=NOW, text=f"Also {i}"),
        None,
    ),
    "visits_medicationevent": Case(
        lambda w, i: MedicationEvent(
            visit=w.visit,
            medication=Medication.BUPRENORPHINE_NALOXONE,
            dose="16 mg daily",
            days_supply=7 + i,
            action=MedicationEvent.Action.PRESCRIBED,
            recorded_by=w.staff[0],
            recorded_at=NOW,
        ),
        ("days_supply", lambda w: 28),
    ),
    "visits_toxscreen": Case(
        lambda w, i: ToxScreen(
            visit=w.visit,
            specimen=ToxScreen.Specimen.ORAL_FLUID,
            collected_on=TODAY,
            own_account="Some fentanyl at the weekend",
            talked_mixing=True,
            recorded_by=w.staff[0],
            recorded_at=NOW,
        ),
        ("talked_naloxone_given", lambda w: True),
    ),
    "visits_toxresult": Case(
        lambda w, i: ToxResult(
            screen=w.screen,
            substance=[Substance.FENTANYL, Substance.COCAINE, Substance.XYLAZINE][i],
            result=ToxResult.Result.NEGATIVE,
        ),
        ("result", lambda w: ToxResult.Result.POSITIVE),
    ),
    "visits_goal": Case(
        lambda w, i: Goal(
            person=w.person,
            words=f"Goal {i}",
            set_on=TODAY,
            status_changed_at=NOW,
            created_by=w.staff[0],
        ),
        ("status", lambda w: Goal.Status.REACHED),
    ),
    "visits_goalprogress": Case(
        lambda w, i: GoalProgress(
            goal=w.goal, on=TODAY, note=f"Step {i}", author=w.staff[0], written_at=NOW
        ),
        ("on", lambda w: TODAY + dt.timedelta(days=2)),  # a column named like a keyword
    ),
    "visits_appointment": Case(
        lambda w, i: Appointment(
            site=w.site,
            person=w.person,
            at=NOW + dt.timedelta(days=i + 1),
            with_staff=w.staff[1],
            service=w.services[0],
            note="Wound check",
            created_by=w.staff[0],
        ),
        ("at", lambda w: NOW + dt.timedelta(days=9)),
    ),
    "releases_consent": Case(
        lambda w, i: Consent(
            person=w.person,
            site=w.site,
            scope=["attendance", "tox"],
            revocation_statement="Tell any staff member.",
            expires_on=TODAY + dt.timedelta(days=365),
            signed_by=Consent.SignedBy.PERSON,
            signature_image=SIGNATURE,
            signed_on=TODAY,
            recorded_by=w.staff[0],
            recorded_at=NOW,
        ),
        # The one change the database allows a consent: sealing it (releases migration 0005).
        ("sealed", lambda w: True),
        change_seals=True,
    ),
    "releases_consentpurpose": Case(
        lambda w, i: ConsentPurpose(consent=w.consent, text=f"Purpose {i}"), None
    ),
    "releases_consent_recipients": Case(
        lambda w, i: Consent.recipients.through(consent=w.consent, recipient=w.recipients[i]),
        None,
    ),
    "releases_revocation": Case(
        lambda w, i: Revocation(
            consent=w.consent,
            how=Revocation.How.ORAL,
            received_on=TODAY,
            taken_by=w.staff[0],
            recorded_at=NOW,
        ),
        ("note", lambda w: "In writing since"),
    ),
    "releases_expiryeventrecord": Case(
        lambda w, i: ExpiryEventRecord(
            consent=w.consent, happened_on=TODAY, recorded_by=w.staff[0], recorded_at=NOW
        ),
        ("note", lambda w: "Finished the programme"),
    ),
}
UPDATABLE = [table for table, case in CASES.items() if case.change is not None]
DELETABLE = [table for table in CASES if table not in APPEND_ONLY_TABLES]


def test_every_audited_table_has_a_case_here():
    assert set(CASES) == set(history.AUDITED)


# --- helpers --------------------------------------------------------------------------------------


def stored(obj) -> dict:
    """The row's columns (id aside) as Python values, as the history should hold them."""
    values = {}
    for f in type(obj)._meta.concrete_fields:
        if f.primary_key:
            continue
        value = getattr(obj, f.attname)
        if isinstance(f, models.FileField):
            value = value.name or ""
        if f.column in history.OPAQUE.get(obj._meta.db_table, ()):
            value = len(value)
        values[f.column] = value
    return values


def rows_for(table, since=0) -> list[ChangeHistory]:
    return list(ChangeHistory.objects.filter(table_name=table, pk__gt=since).order_by("pk"))


def last_id() -> int:
    return ChangeHistory.objects.aggregate(m=models.Max("pk"))["m"] or 0


def person_of(table, obj, w):
    return obj.pk if table == "clinic_person" else w.person.pk


def assert_row(entry, *, table, obj, w, operation, changes, actor, via):
    assert entry.table_name == table
    assert entry.row_id == obj.pk
    assert entry.operation == operation
    assert entry.person_id == person_of(table, obj, w)
    assert entry.site_id == w.site.pk
    assert entry.actor_id == (actor.pk if actor else None)
    assert entry.via == via
    assert decoded_changes(entry) == changes
    assert abs(entry.at - timezone.now()) < dt.timedelta(minutes=1)  # the database's clock


def insert_raw(obj) -> int:
    """INSERT the unsaved `obj` with plain SQL; its new id."""
    model = type(obj)
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    for f in fields:
        setattr(obj, f.attname, f.pre_save(obj, add=True))
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    marks = ", ".join(["%s"] * len(fields))
    values = [f.get_db_prep_save(getattr(obj, f.attname), connection) for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {model._meta.db_table} ({columns}) VALUES ({marks}) RETURNING id",
            values,
        )
        obj.pk = cursor.fetchone()[0]
    obj._state.adding = False
    return obj.pk


def db_value(obj, column, value):
    f = next(f for f in type(obj)._meta.concrete_fields if f.column == column)
    return f.get_db_prep_save(value, connection)


# --- every table, every way of writing ------------------------------------------------------------


@pytest.mark.parametrize("table", list(CASES))
def test_an_orm_insert_records_every_column_and_who(world, table):
    actor = world.staff[2]
    obj = CASES[table].make(world, 0)
    since = last_id()
    with history_actor(actor, via="tests"):
        obj.save()
    [entry] = rows_for(table, since)
    changes = {c: (None, v) for c, v in stored(obj).items()}
    assert_row(
        entry, table=table, obj=obj, w=world, operation="insert", changes=changes,
        actor=actor, via="tests",
    )  # fmt: skip


@pytest.mark.parametrize("table", UPDATABLE)
def test_an_orm_update_records_only_the_changed_column_old_and_new(world, table):
    column, new = CASES[table].change
    obj = CASES[table].make(world, 0)
    obj.save()
    before = stored(obj)[column]
    since = last_id()
    with history_actor(world.staff[1], via="tests"):
        setattr(obj, next(f.attname for f in obj._meta.concrete_fields if f.column == column),
                new(world))  # fmt: skip
        obj.save()
    [entry] = rows_for(table, since)
    obj.refresh_from_db()
    assert_row(
        entry, table=table, obj=obj, w=world, operation="update",
        changes={column: (before, stored(obj)[column])}, actor=world.staff[1], via="tests",
    )  # fmt: skip


# A consent's only allowed UPDATE is its sealing: the database refuses a save that changes
# nothing (releases migration 0005).
@pytest.mark.parametrize("table", [t for t in UPDATABLE if t != "releases_consent"])
def test_a_save_that_changes_nothing_records_nothing(world, table):
    obj = CASES[table].make(world, 0)
    obj.save()
    since = last_id()
    obj.save()
    assert rows_for(table, since) == []


@pytest.mark.parametrize("table", UPDATABLE)
def test_a_queryset_update_records_one_row_per_row_changed(world, table):
    column, new = CASES[table].change
    model = type(CASES[table].make(world, 0))
    objs = model.objects.bulk_create([CASES[table].make(world, i) for i in range(2)])
    befores = [stored(o)[column] for o in objs]
    since = last_id()
    attname = next(f.attname for f in model._meta.concrete_fields if f.column == column)
    if table == "visits_visit_services":  # (visit, service) is unique: one row at a time
        for i, obj in enumerate(objs):
            model.objects.filter(pk=obj.pk).update(**{attname: world.services[2 + i].pk})
    else:
        with history_actor(world.staff[0], via="tests"):
            model.objects.filter(pk__in=[o.pk for o in objs]).update(**{attname: new(world)})
    entries = rows_for(table, since)
    assert [e.row_id for e in entries] == sorted(o.pk for o in objs)
    for obj, before in zip(sorted(objs, key=lambda o: o.pk), befores, strict=True):
        entry = next(e for e in entries if e.row_id == obj.pk)
        obj.refresh_from_db()
        actor = None if table == "visits_visit_services" else world.staff[0]
        assert_row(
            entry, table=table, obj=obj, w=world, operation="update",
            changes={column: (before, stored(obj)[column])}, actor=actor,
            via="" if actor is None else "tests",
        )  # fmt: skip


@pytest.mark.parametrize("table", list(CASES))
def test_a_bulk_create_records_every_row(world, table):
    objs = [CASES[table].make(world, i) for i in range(3)]
    since = last_id()
    with history_actor(world.staff[0], via="tests"):
        type(objs[0]).objects.bulk_create(objs)
    entries = rows_for(table, since)
    assert sorted(e.row_id for e in entries) == sorted(o.pk for o in objs)
    for obj in objs:
        [entry] = [e for e in entries if e.row_id == obj.pk]
        assert_row(
            entry, table=table, obj=obj, w=world, operation="insert",
            changes={c: (None, v) for c, v in stored(obj).items()}, actor=world.staff[0],
            via="tests",
        )  # fmt: skip


@pytest.mark.parametrize("table", DELETABLE)
def test_an_orm_delete_records_every_last_value(world, table):
    obj = CASES[table].make(world, 0)
    obj.save()
    obj.refresh_from_db()
    values = stored(obj)
    pk = obj.pk
    since = last_id()
    with history_actor(world.staff[1], via="tests"):
        obj.delete()
    [entry] = rows_for(table, since)
    obj.pk = pk
    assert_row(
        entry, table=table, obj=obj, w=world, operation="delete",
        changes={c: (v, None) for c, v in values.items()}, actor=world.staff[1], via="tests",
    )  # fmt: skip


@pytest.mark.parametrize("table", DELETABLE)
def test_a_queryset_delete_records_every_row_removed(world, table):
    model = type(CASES[table].make(world, 0))
    objs = model.objects.bulk_create([CASES[table].make(world, i) for i in range(2)])
    values = {o.pk: stored(o) for o in objs}
    since = last_id()
    with history_actor(world.staff[1], via="tests"):
        model.objects.filter(pk__in=list(values)).delete()
    entries = rows_for(table, since)
    assert sorted(e.row_id for e in entries) == sorted(values)
    for obj in objs:
        [entry] = [e for e in entries if e.row_id == obj.pk]
        assert_row(
            entry, table=table, obj=obj, w=world, operation="delete",
            changes={c: (v, None) for c, v in values[obj.pk].items()}, actor=world.staff[1],
            via="tests",
        )  # fmt: skip


def test_bulk_update_records_each_rows_own_change(world):
    people = Person.objects.bulk_create(
        [Person(site=world.site, name=f"P{i}", phone="") for i in range(3)]
    )
    for i, person in enumerate(people):
        person.phone = f"555-010{i}"
    since = last_id()
    with history_actor(world.staff[0], via="tests"):
        Person.objects.bulk_update(people, ["phone"])
    entries = rows_for("clinic_person", since)
    assert {e.row_id: decoded_changes(e) for e in entries} == {
        p.pk: {"phone": ("", f"555-010{i}")} for i, p in enumerate(people)
    }
    assert {(e.actor_id, e.via) for e in entries} == {(world.staff[0].pk, "tests")}


@pytest.mark.parametrize("table", list(CASES))
def test_raw_sql_inserts_updates_and_deletes_are_recorded(world, table):
    case = CASES[table]
    obj = case.make(world, 0)
    since = last_id()
    insert_raw(obj)
    obj.refresh_from_db()
    [inserted] = rows_for(table, since)
    assert_row(
        inserted, table=table, obj=obj, w=world, operation="insert",
        changes={c: (None, v) for c, v in stored(obj).items()}, actor=None, via="",
    )  # fmt: skip

    if case.change is not None:
        column, new = case.change
        before = stored(obj)[column]
        since = last_id()
        with connection.cursor() as cursor:
            cursor.execute(
                f'UPDATE {table} SET "{column}" = %s WHERE id = %s',
                [db_value(obj, column, new(world)), obj.pk],
            )
        obj.refresh_from_db()
        [updated] = rows_for(table, since)
        assert_row(
            updated, table=table, obj=obj, w=world, operation="update",
            changes={column: (before, stored(obj)[column])}, actor=None, via="",
        )  # fmt: skip

    if table in APPEND_ONLY_TABLES:
        return  # refused (tests/clinic/test_db_roles.py)
    if case.change_seals:
        obj = case.make(world, 1)
        insert_raw(obj)
        obj.refresh_from_db()
    values = stored(obj)
    since = last_id()
    with history_actor(world.staff[2], via="dbshell"), connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table} WHERE id = %s", [obj.pk])
    [deleted] = rows_for(table, since)
    assert_row(
        deleted, table=table, obj=obj, w=world, operation="delete",
        changes={c: (v, None) for c, v in values.items()}, actor=world.staff[2], via="dbshell",
    )  # fmt: skip


@pytest.mark.parametrize("table", ["releases_consentpurpose", "releases_consent_recipients"])
def test_an_update_the_database_refuses_leaves_no_history(world, table):
    obj = CASES[table].make(world, 0)
    obj.save()
    since = last_id()
    column = "text" if table == "releases_consentpurpose" else "recipient_id"
    value = "Changed" if column == "text" else world.recipients[3].pk
    with pytest.raises(IntegrityError), transaction.atomic():
        type(obj).objects.filter(pk=obj.pk).update(**{column: value})
    assert rows_for(table, since) == []


# --- what a row concerns -----------------------------------------------------------------------


def test_a_visits_records_concern_the_visits_person_and_an_anonymous_contact_nobody(world):
    anonymous = Visit.objects.create(site=world.site, started_at=NOW, opened_by=world.staff[0])
    anonymous.services.add(world.services[0])
    [visit_row] = rows_for("visits_visit", 0)[-1:]
    [service_row] = rows_for("visits_visit_services", 0)
    assert (visit_row.person_id, visit_row.site_id) == (None, world.site.pk)
    assert (service_row.person_id, service_row.site_id) == (None, world.site.pk)


def test_moving_a_visit_to_another_person_is_recorded_for_the_person_it_now_concerns(world):
    other = PersonFactory(site=world.site, name="Lee")
    since = last_id()
    Visit.objects.filter(pk=world.visit.pk).update(person=other)
    [entry] = rows_for("visits_visit", since)
    assert entry.person_id == other.pk
    assert decoded_changes(entry) == {"person_id": (world.person.pk, other.pk)}


def test_a_child_deleted_after_its_parent_still_says_whom_it_concerned(world):
    """Raw SQL may delete a parent before its children within one transaction (foreign keys
    are checked at commit): the parent's own history says whom they concerned."""
    result = ToxResult.objects.create(
        screen=world.screen, substance=Substance.FENTANYL, result=ToxResult.Result.POSITIVE
    )
    since = last_id()
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("PRAGMA defer_foreign_keys = ON")
        cursor.execute("DELETE FROM visits_toxscreen WHERE id = %s", [world.screen.pk])
        cursor.execute("DELETE FROM visits_toxresult WHERE id = %s", [result.pk])
    [screen_row] = rows_for("visits_toxscreen", since)
    [result_row] = rows_for("visits_toxresult", since)
    assert screen_row.person_id == result_row.person_id == world.person.pk
    assert screen_row.site_id == result_row.site_id == world.site.pk


def test_a_goals_site_comes_from_its_person(world):
    [entry] = [e for e in rows_for("visits_goal", 0) if e.row_id == world.goal.pk]
    assert (entry.person_id, entry.site_id) == (world.person.pk, world.site.pk)


def test_a_consents_signature_is_recorded_by_its_length_only(world):
    since = last_id()
    consent = make_consent(person=world.person, recipients=[world.recipients[0]])
    [entry] = rows_for("releases_consent", since)[:1]
    assert entry.changes["signature_image"] == len(SIGNATURE)
    assert SIGNATURE not in str(entry.changes)
    # Recorded, then its recipients and purposes, then sealed: each is in the history.
    assert [(e.table_name, e.operation) for e in ChangeHistory.objects.filter(
        pk__gt=since).order_by("pk")] == [
        ("releases_consent", "insert"),
        ("releases_consent_recipients", "insert"),
        ("releases_consentpurpose", "insert"),
        ("releases_consent", "update"),
    ]  # fmt: skip
    assert decoded_changes(rows_for("releases_consent", since)[-1]) == {"sealed": (False, True)}
    assert consent.sealed


# --- the history itself cannot be changed ----------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        f"UPDATE {HISTORY_TABLE} SET via = 'rewritten'",
        f"UPDATE {HISTORY_TABLE} SET actor_id = NULL",
        f"DELETE FROM {HISTORY_TABLE}",
    ],
)
def test_the_history_refuses_update_and_delete_in_the_database(world, statement):
    before = list(ChangeHistory.objects.values_list("pk", "via", "actor_id"))
    assert before
    # (The application's role, with two roles, is refused by its grants before the trigger.)
    with (
        pytest.raises(DatabaseError, match=r"append-only|permission denied"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(statement)
    assert list(ChangeHistory.objects.values_list("pk", "via", "actor_id")) == before


def test_the_history_refuses_update_and_delete_through_the_orm(world):
    entry = ChangeHistory.objects.first()
    with pytest.raises(PermissionError):
        ChangeHistory.objects.update(via="x")
    with pytest.raises(PermissionError):
        ChangeHistory.objects.all().delete()
    with pytest.raises(PermissionError):
        entry.delete()
    with pytest.raises(PermissionError):
        entry.save()


def test_deleting_a_person_keeps_their_history(site):
    person = PersonFactory(site=site, name="Quinn")
    pk = person.pk
    person.delete()
    assert [e.operation for e in ChangeHistory.objects.filter(person_id=pk).order_by("pk")] == [
        "insert",
        "delete",
    ]


# --- the triggers are there ----------------------------------------------------------------


def test_every_audited_table_has_its_three_triggers_with_todays_columns(db):
    from django.apps import apps

    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(
                "SELECT tbl_name, name, sql FROM sqlite_master WHERE type = 'trigger' "
                "AND name LIKE 'clinic_history_%'"
            )
            found = {}
            for table, name, sql in cursor.fetchall():
                found.setdefault(table, {})[name.rsplit("_", 1)[1]] = sql
            kinds = history.column_kinds(apps, list(history.AUDITED))
            for table in history.AUDITED:
                assert set(found.get(table, {})) == {"insert", "update", "delete"}, table
                # A migration that added a column, or rebuilt the table, re-creates them.
                for column, _kind in kinds[table]:
                    if column != "id":
                        assert f'"{column}"' in found[table]["insert"], (table, column)
        else:
            cursor.execute(
                "SELECT c.relname, t.tgname FROM pg_trigger t JOIN pg_class c "
                "ON c.oid = t.tgrelid WHERE t.tgname LIKE 'clinic_history_%%'"
            )
            found = {}
            for table, name in cursor.fetchall():
                found.setdefault(table, set()).add(name)
            for table in history.AUDITED:
                assert found.get(table) == {
                    "clinic_history_insert",
                    "clinic_history_update",
                    "clinic_history_delete",
                }, table
    assert set(found) == set(history.AUDITED)


@pytest.mark.postgres
def test_an_application_role_with_only_select_on_the_history_still_writes_it(world):
    """The trigger functions run as the tables' owner: the application's role needs no right
    to write the history, so it cannot forge or remove rows of it. (The role exists only in
    this test's transaction, which is rolled back.)"""
    person = world.person
    with connection.cursor() as cursor:
        cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        # With two roles (CI) the tests already run as the application's role; otherwise a
        # role like it is made for the test.
        stand_in = cursor.fetchone()[0]
        if stand_in:
            cursor.execute("CREATE ROLE threshold_history_test_app NOLOGIN")
            cursor.execute(
                "GRANT SELECT, INSERT, UPDATE, DELETE ON clinic_person "
                "TO threshold_history_test_app"
            )
            cursor.execute(f"GRANT SELECT ON {HISTORY_TABLE} TO threshold_history_test_app")
            cursor.execute("SET ROLE threshold_history_test_app")
        try:
            with history_actor(world.staff[0], via="tests"):
                Person.objects.filter(pk=person.pk).update(phone="555-0177")
            for statement in (
                f"INSERT INTO {HISTORY_TABLE} (table_name, row_id, operation, at, via, changes) "
                "VALUES ('clinic_person', 1, 'insert', now(), '', '{}')",
                f"DELETE FROM {HISTORY_TABLE}",
            ):
                with pytest.raises(DatabaseError, match="permission denied"), transaction.atomic():
                    cursor.execute(statement)
        finally:
            if stand_in:
                cursor.execute("RESET ROLE")
    [entry] = rows_for("clinic_person", 0)[-1:]
    assert (entry.operation, entry.actor_id, entry.via) == ("update", world.staff[0].pk, "tests")
    assert decoded_changes(entry) == {"phone": ("", "555-0177")}
