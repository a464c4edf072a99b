"""The report summaries kept up to date by triggers and `summaries.refresh()`.

The invariant: after any sequence of writes (ORM saves, queryset updates, m2m changes, bulk
inserts, raw SQL), `refresh()` leaves the five summary tables exactly as a full `rebuild()`
would, and the rows show the change.
"""

import random
from datetime import timedelta

import pytest
from django.db import connection

from queues.models import Arrival, ArrivalEvent
from reports import summaries
from reports._sql import day_number
from reports.models import CoverageRun, ServiceDay, SiteDay, Stale, VisitDay, VisitWait
from tests.factories import UserFactory
from tests.reports.conftest import D
from visits.models import MedicationEvent, Visit

pytestmark = pytest.mark.django_db

MODELS = {
    "reports_visitday": VisitDay,
    "reports_serviceday": ServiceDay,
    "reports_visitwait": VisitWait,
    "reports_coveragerun": CoverageRun,
    "reports_siteday": SiteDay,
}


def n(day: int) -> int:
    """The day number of scenario day `day`."""
    return day_number(D(day))


def _sort_key(row):
    return tuple((value is not None, value if value is not None else 0) for value in row)


def snapshot() -> dict[str, list[tuple]]:
    """Every row of the five summary tables, without ids, sorted."""
    assert set(MODELS) == set(summaries.SUMMARY_TABLES)
    result = {}
    for table, model in MODELS.items():
        columns = [f.attname for f in model._meta.concrete_fields if f.attname != "id"]
        rows = model.objects.values_list(*columns)
        result[table] = sorted((tuple(row) for row in rows), key=_sort_key)
    return result


def assert_incremental_equals_rebuild() -> dict[str, list[tuple]]:
    summaries.refresh()
    assert not Stale.objects.exists()
    incremental = snapshot()
    summaries.rebuild()
    assert snapshot() == incremental
    return incremental


def visit_days(person) -> list[tuple]:
    """(d, visits, multi, medication_events, prev, next) of a person, by day."""
    return list(
        VisitDay.objects.filter(person_id=person.pk)
        .order_by("d")
        .values_list("d", "visits", "multi", "medication_events", "prev", "next")
    )


def coverage(person) -> list[tuple]:
    """(cs, ce, pce, ncs) of a person's coverage runs."""
    return list(
        CoverageRun.objects.filter(person_id=person.pk)
        .order_by("cs")
        .values_list("cs", "ce", "pce", "ncs")
    )


def service_days(site, person=None) -> list[tuple]:
    """(service_id, d, deliveries, prev) at `site` of a person (None: anonymous contacts)."""
    rows = ServiceDay.objects.filter(site_id=site.pk)
    rows = rows.filter(person_id=person.pk) if person else rows.filter(person_id__isnull=True)
    return list(
        rows.order_by("service_id", "d").values_list("service_id", "d", "deliveries", "prev")
    )


def site_day(site, day: int) -> dict | None:
    return (
        SiteDay.objects.filter(site_id=site.pk, d=n(day))
        .values(
            "arrivals",
            "lwbs",
            "waiting",
            "named",
            "walk_in",
            "named_waiting",
            "visits",
            "named_visits",
        )
        .first()
    )


def visits_on(site, day: int) -> tuple[int, int] | None:
    """(visits, named_visits) of a site's day, None when it has no row."""
    row = site_day(site, day)
    return None if row is None else (row["visits"], row["named_visits"])


def waits(person) -> list[tuple]:
    return list(VisitWait.objects.filter(person_id=person.pk).order_by("d").values_list("d", "ms"))


def delete_visit(visit) -> None:
    """A visit goes with its medication events (PROTECT); Django clears its services."""
    visit.medications.all().delete()
    visit.delete()


def test_a_new_visit_makes_a_visit_day_and_a_site_day(build, site):
    person = build.person()
    assert snapshot() == {table: [] for table in MODELS}
    build.visit(person, D(3))

    assert summaries.refresh() > 0
    assert summaries.refresh() == 0
    assert not Stale.objects.exists()
    assert list(VisitDay.objects.values_list("site_id", "person_id", "d", "visits")) == [
        (site.pk, person.pk, n(3), 1)
    ]
    assert visit_days(person) == [(n(3), 1, 0, 0, None, None)]
    assert site_day(site, 3) == {
        "arrivals": 0,
        "lwbs": 0,
        "waiting": 0,
        "named": 0,
        "walk_in": 0,
        "named_waiting": 0,
        "visits": 1,
        "named_visits": 1,
    }
    assert SiteDay.objects.count() == 1
    assert assert_incremental_equals_rebuild()["reports_visitday"] == [
        (site.pk, person.pk, n(3), 1, 0, 0, None, None)
    ]


def test_a_second_staff_member_the_same_day_sets_multi(build, site):
    person = build.person()
    build.visit(person, D(1))
    assert_incremental_equals_rebuild()
    second = build.visit(person, D(1), staff=UserFactory())
    assert_incremental_equals_rebuild()
    assert visit_days(person) == [(n(1), 2, 1, 0, None, None)]
    second.opened_by = build.staff
    second.save()
    assert_incremental_equals_rebuild()
    assert visit_days(person) == [(n(1), 2, 0, 0, None, None)]


def test_medication_events_added_changed_and_deleted(build, site):
    person = build.person()
    first = build.visit(person, D(0))
    assert_incremental_equals_rebuild()
    assert coverage(person) == []

    event = build.med(first, 30)
    assert_incremental_equals_rebuild()
    assert coverage(person) == [(n(0), n(29), None, None)]
    assert visit_days(person) == [(n(0), 1, 0, 1, None, None)]

    event.days_supply = 10
    event.save()
    assert_incremental_equals_rebuild()
    assert coverage(person) == [(n(0), n(9), None, None)]

    MedicationEvent.objects.filter(pk=event.pk).update(days_supply=5)
    assert_incremental_equals_rebuild()
    assert coverage(person) == [(n(0), n(4), None, None)]

    build.visit_with_med(person, D(20), 10)
    assert_incremental_equals_rebuild()
    assert coverage(person) == [(n(0), n(4), None, n(20)), (n(20), n(29), n(4), None)]

    # 25 days from D0 run into D20's supply, which then stacks: one run D0..D34.
    MedicationEvent.objects.filter(pk=event.pk).update(days_supply=25)
    assert_incremental_equals_rebuild()
    assert coverage(person) == [(n(0), n(34), None, None)]

    event.delete()
    assert_incremental_equals_rebuild()
    assert coverage(person) == [(n(20), n(29), None, None)]
    assert visit_days(person) == [(n(0), 1, 0, 0, None, n(20)), (n(20), 1, 0, 1, n(0), None)]


def test_services_of_a_named_visit(build, site):
    person = build.person()
    early, late = build.visit(person, D(1)), build.visit(person, D(5))
    naloxone, wound = build.service("naloxone"), build.service("wound-care")
    assert_incremental_equals_rebuild()
    assert service_days(site, person) == []

    late.services.add(naloxone)
    assert_incremental_equals_rebuild()
    assert service_days(site, person) == [(naloxone.pk, n(5), 1, None)]

    early.services.add(naloxone, wound)
    assert_incremental_equals_rebuild()
    assert service_days(site, person) == [
        (naloxone.pk, n(1), 1, None),
        (naloxone.pk, n(5), 1, n(1)),
        (wound.pk, n(1), 1, None),
    ]

    early.services.remove(naloxone)
    assert_incremental_equals_rebuild()
    assert service_days(site, person) == [(naloxone.pk, n(5), 1, None), (wound.pk, n(1), 1, None)]

    early.services.clear()
    assert_incremental_equals_rebuild()
    assert service_days(site, person) == [(naloxone.pk, n(5), 1, None)]
    assert service_days(site) == []


def test_services_at_anonymous_contacts(build, site):
    naloxone, wound = build.service("naloxone"), build.service("wound-care")
    first, second = build.visit(None, D(3)), build.visit(None, D(3))
    assert_incremental_equals_rebuild()
    assert service_days(site) == []

    first.services.add(naloxone, wound)
    second.services.add(naloxone)
    assert_incremental_equals_rebuild()
    assert service_days(site) == [(naloxone.pk, n(3), 2, None), (wound.pk, n(3), 1, None)]
    assert ServiceDay.objects.filter(person_id__isnull=False).count() == 0

    first.services.remove(naloxone)
    assert_incremental_equals_rebuild()
    assert service_days(site) == [(naloxone.pk, n(3), 1, None), (wound.pk, n(3), 1, None)]

    first.services.clear()
    assert_incremental_equals_rebuild()
    assert service_days(site) == [(naloxone.pk, n(3), 1, None)]

    second.services.clear()
    assert_incremental_equals_rebuild()
    assert not ServiceDay.objects.exists()
    assert visits_on(site, 3) == (2, 0)


def test_deleting_the_middle_visit_joins_its_neighbours(build, site):
    person = build.person()
    build.visit(person, D(0))
    middle = build.visit_with_med(person, D(10), 14, services=["naloxone"])
    build.visit(person, D(20))
    assert_incremental_equals_rebuild()
    assert visit_days(person) == [
        (n(0), 1, 0, 0, None, n(10)),
        (n(10), 1, 0, 1, n(0), n(20)),
        (n(20), 1, 0, 0, n(10), None),
    ]
    assert coverage(person) == [(n(10), n(23), None, None)]
    assert visits_on(site, 10) == (1, 1)

    delete_visit(middle)
    assert_incremental_equals_rebuild()
    assert visit_days(person) == [(n(0), 1, 0, 0, None, n(20)), (n(20), 1, 0, 0, n(0), None)]
    assert coverage(person) == []
    assert service_days(site, person) == []
    assert visits_on(site, 10) is None


def test_changing_a_visits_person_moves_their_rows(build, site):
    old, new = build.person(), build.person()
    moved = build.visit_with_med(old, D(2), 7, services=["naloxone"], waited=15)
    build.visit(new, D(5), services=["naloxone"])
    naloxone = build.service("naloxone")
    assert_incremental_equals_rebuild()
    assert visit_days(old) == [(n(2), 1, 0, 1, None, None)]

    moved.person = new
    moved.save()
    assert_incremental_equals_rebuild()
    for rows in (visit_days(old), coverage(old), service_days(site, old), waits(old)):
        assert rows == []
    assert visit_days(new) == [(n(2), 1, 0, 1, None, n(5)), (n(5), 1, 0, 0, n(2), None)]
    assert coverage(new) == [(n(2), n(8), None, None)]
    assert service_days(site, new) == [(naloxone.pk, n(2), 1, None), (naloxone.pk, n(5), 1, n(2))]
    assert waits(new) == [(n(2), 15 * 60_000)]
    assert visits_on(site, 2) == (1, 1)

    Visit.objects.filter(pk=moved.pk).update(person=None)
    assert_incremental_equals_rebuild()
    assert visit_days(new) == [(n(5), 1, 0, 0, None, None)]
    assert coverage(new) == []
    assert service_days(site) == [(naloxone.pk, n(2), 1, None)]
    assert visits_on(site, 2) == (1, 0)

    Visit.objects.filter(pk=moved.pk).update(person=old)
    assert_incremental_equals_rebuild()
    assert visit_days(old) == [(n(2), 1, 0, 1, None, None)]
    assert service_days(site) == []
    assert visits_on(site, 2) == (1, 1)


def test_changing_a_visits_day_moves_the_site_day(build, site):
    person, other = build.person(), build.person()
    moved = build.visit(person, D(2))
    build.visit(other, D(5))
    assert_incremental_equals_rebuild()
    assert (visits_on(site, 2), visits_on(site, 5)) == ((1, 1), (1, 1))

    moved.started_at += timedelta(days=3)
    moved.ended_at += timedelta(days=3)
    moved.save()
    assert moved.day == D(5)
    assert_incremental_equals_rebuild()
    assert (visits_on(site, 2), visits_on(site, 5)) == (None, (2, 2))
    assert visit_days(person) == [(n(5), 1, 0, 0, None, None)]

    Visit.objects.filter(pk=moved.pk).update(day=D(9))
    assert_incremental_equals_rebuild()
    assert (visits_on(site, 5), visits_on(site, 9)) == ((1, 1), (1, 1))
    assert visit_days(person) == [(n(9), 1, 0, 0, None, None)]


def test_changing_a_visits_site_moves_its_rows(build, site, other_site):
    person = build.person()
    moved = build.visit(person, D(4), services=["naloxone"])
    assert_incremental_equals_rebuild()
    Visit.objects.filter(pk=moved.pk).update(site=other_site)
    rows = assert_incremental_equals_rebuild()
    assert rows["reports_visitday"] == [(other_site.pk, person.pk, n(4), 1, 0, 0, None, None)]
    assert (visits_on(site, 4), visits_on(other_site, 4)) == (None, (1, 1))
    assert [row[:2] for row in rows["reports_serviceday"]] == [(other_site.pk, person.pk)]


def test_an_arrivals_state_changes_the_site_day(build, site):
    person = build.person()
    arrival = build.arrival(person, D(1), state="waiting")
    unnamed = build.arrival(None, D(1), state="waiting")
    assert_incremental_equals_rebuild()
    assert site_day(site, 1) == {
        "arrivals": 0,
        "lwbs": 0,
        "waiting": 2,
        "named": 0,
        "walk_in": 0,
        "named_waiting": 1,
        "visits": 0,
        "named_visits": 0,
    }

    change_state(arrival, "left")
    assert_incremental_equals_rebuild()
    assert site_day(site, 1) == {
        "arrivals": 1,
        "lwbs": 1,
        "waiting": 1,
        "named": 1,
        "walk_in": 1,
        "named_waiting": 0,
        "visits": 0,
        "named_visits": 0,
    }

    change_state(arrival, "done", appointment_at=arrival.arrived_at)
    assert_incremental_equals_rebuild()
    assert {k: site_day(site, 1)[k] for k in ("arrivals", "lwbs", "named", "walk_in")} == {
        "arrivals": 1,
        "lwbs": 0,
        "named": 1,
        "walk_in": 0,
    }

    # An arrival with no queue events can go (one with events is kept by them).
    Arrival.objects.filter(pk=unnamed.pk).delete()
    assert_incremental_equals_rebuild()
    assert site_day(site, 1)["waiting"] == 0
    assert site_day(site, 1)["arrivals"] == 1


def change_state(arrival, state, **fields):
    """A queryset update of the arrival's state, as raw as the database allows: it takes the
    change only with the queue event for it written first (queues migration 0004)."""
    current = Arrival.objects.get(pk=arrival.pk)
    ArrivalEvent.objects.create(
        arrival=current,
        site_id=current.site_id,
        kind="left" if state == "left" else "done",
        at=current.state_changed_at,
        from_state=current.state,
        to_state=state,
        revision=current.revision + 1,
    )
    Arrival.objects.filter(pk=arrival.pk).update(
        state=state, revision=current.revision + 1, **fields
    )


def test_an_arrivals_time_changes_the_wait(build, site):
    person = build.person()
    visit = build.visit(person, D(1), waited=15)
    assert_incremental_equals_rebuild()
    assert waits(person) == [(n(1), 15 * 60_000)]

    arrival = visit.arrival
    arrival.arrived_at -= timedelta(minutes=5)
    arrival.save()
    assert_incremental_equals_rebuild()
    assert waits(person) == [(n(1), 20 * 60_000)]

    Arrival.objects.filter(pk=arrival.pk).update(import_key="imported-1")
    assert_incremental_equals_rebuild()
    assert waits(person) == [(n(1), None)]

    Visit.objects.filter(pk=visit.pk).update(
        started_at=arrival.arrived_at + timedelta(hours=1), ended_at=None
    )
    Arrival.objects.filter(pk=arrival.pk).update(import_key=None)
    assert_incremental_equals_rebuild()
    assert waits(person) == [(n(1), 60 * 60_000)]

    Visit.objects.filter(pk=visit.pk).update(arrival=None)
    assert_incremental_equals_rebuild()
    assert waits(person) == []


def test_raw_sql_updates_and_deletes_are_caught(build, site):
    person, other = build.person(), build.person()
    first = build.visit_with_med(person, D(0), 30)
    second = build.visit(person, D(40))
    event = first.medications.get()
    assert_incremental_equals_rebuild()
    assert coverage(person) == [(n(0), n(29), None, None)]

    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE visits_medicationevent SET days_supply = %s WHERE id = %s", [7, event.pk]
        )
    assert_incremental_equals_rebuild()
    assert coverage(person) == [(n(0), n(6), None, None)]

    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM visits_medicationevent WHERE id = %s", [event.pk])
    assert_incremental_equals_rebuild()
    assert coverage(person) == []
    assert visit_days(person)[0] == (n(0), 1, 0, 0, None, n(40))

    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE visits_visit SET person_id = %s WHERE id = %s", [other.pk, second.pk]
        )
    assert_incremental_equals_rebuild()
    assert visit_days(person) == [(n(0), 1, 0, 0, None, None)]
    assert visit_days(other) == [(n(40), 1, 0, 0, None, None)]

    with connection.cursor() as cursor:
        cursor.execute("UPDATE visits_visit SET day = %s WHERE id = %s", [D(41), second.pk])
    assert_incremental_equals_rebuild()
    assert visit_days(other) == [(n(41), 1, 0, 0, None, None)]
    assert (visits_on(site, 40), visits_on(site, 41)) == (None, (1, 1))

    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM visits_visit WHERE id = %s", [second.pk])
    assert_incremental_equals_rebuild()
    assert visit_days(other) == []
    assert visits_on(site, 41) is None


def test_bulk_created_visits_and_events_are_caught(build, site, other_site):
    a, b = build.person(), build.person()
    far = build.person(site=other_site)
    build.visit(a, D(0))
    assert_incremental_equals_rebuild()

    def visit(person, day, at=site):
        start = build.at(D(day), site=at)
        return Visit(
            site=at,
            person=person,
            started_at=start,
            ended_at=start + timedelta(minutes=20),
            day=D(day),
            opened_by=build.staff,
        )

    created = Visit.objects.bulk_create(
        [visit(a, 3), visit(a, 3), visit(b, 3), visit(None, 3), visit(far, 3, other_site)]
    )
    rows = assert_incremental_equals_rebuild()
    assert visit_days(a) == [(n(0), 1, 0, 0, None, n(3)), (n(3), 2, 0, 0, n(0), None)]
    assert visit_days(b) == [(n(3), 1, 0, 0, None, None)]
    assert visit_days(far) == [(n(3), 1, 0, 0, None, None)]
    assert (visits_on(site, 3), visits_on(other_site, 3)) == ((4, 3), (1, 1))
    assert len(rows["reports_visitday"]) == 4

    MedicationEvent.objects.bulk_create(
        [
            MedicationEvent(
                visit=v,
                medication="bup_nx",
                dose="16 mg daily",
                days_supply=supply,
                action="prescribed",
                recorded_by=build.staff,
                recorded_at=v.started_at,
            )
            for v, supply in ((created[0], 10), (created[1], 5), (created[2], 28))
        ]
    )
    assert_incremental_equals_rebuild()
    assert coverage(a) == [(n(3), n(17), None, None)]
    assert coverage(b) == [(n(3), n(30), None, None)]
    assert visit_days(a)[1][3] == 2


def test_random_writes_refresh_like_a_rebuild(build, site, other_site):
    rng = random.Random(20250106)
    sites = (site, other_site)
    people = {s.pk: [build.person(site=s) for _ in range(3)] for s in sites}
    staff = [build.staff, UserFactory()]
    services = {
        s.pk: [build.service(code, site=s) for code in ("naloxone", "wound-care")] for s in sites
    }
    counts = {"visits": 0, "checks": 0}

    def visits():
        return list(Visit.objects.order_by("pk"))

    def add_visit():
        at = rng.choice(sites)
        person = rng.choice([*people[at.pk], None])
        waited = rng.choice((None, rng.randrange(0, 90)))
        build.visit(
            person,
            D(rng.randrange(0, 40)),
            site=at,
            staff=rng.choice(staff),
            waited=waited,
        )
        counts["visits"] += 1

    def add_med():
        if existing := visits():
            build.med(rng.choice(existing), rng.choice((1, 7, 14, 28, 30)))

    def delete_med():
        if events := list(MedicationEvent.objects.order_by("pk")):
            rng.choice(events).delete()

    def change_supply():
        if events := list(MedicationEvent.objects.order_by("pk")):
            event = rng.choice(events)
            MedicationEvent.objects.filter(pk=event.pk).update(days_supply=rng.randrange(1, 60))

    def toggle_service():
        if existing := visits():
            v = rng.choice(existing)
            service = rng.choice(services[v.site_id])
            if v.services.filter(pk=service.pk).exists():
                v.services.remove(service)
            else:
                v.services.add(service)

    def remove_visit():
        if existing := visits():
            delete_visit(rng.choice(existing))

    def change_person():
        if existing := visits():
            v = rng.choice(existing)
            v.person = rng.choice([*people[v.site_id], None])
            v.save()

    operations = [
        (add_visit, 4),
        (add_med, 3),
        (delete_med, 1),
        (change_supply, 2),
        (toggle_service, 3),
        (remove_visit, 1),
        (change_person, 2),
    ]
    chosen = rng.choices([op for op, _ in operations], weights=[w for _, w in operations], k=40)
    for i, operation in enumerate(chosen, 1):
        operation()
        if i % 3 == 0:
            assert_incremental_equals_rebuild()
            counts["checks"] += 1
    rows = assert_incremental_equals_rebuild()

    assert counts["checks"] == 13
    assert counts["visits"] > 5
    assert rows["reports_visitday"]
    assert rows["reports_coveragerun"]
    assert rows["reports_serviceday"]
    assert sum(row[8] for row in rows["reports_siteday"]) == Visit.objects.count()
    named_days = {
        (v.site_id, v.person_id, day_number(v.day))
        for v in Visit.objects.filter(person__isnull=False)
    }
    assert {row[:3] for row in rows["reports_visitday"]} == named_days


def test_rebuild_with_nothing_stale_changes_nothing(build, site):
    person = build.person()
    build.visit_with_med(person, D(0), 30, services=["naloxone"], waited=10)
    build.visit(person, D(10))
    build.lwbs(build.person(), D(10))
    summaries.refresh()
    assert not Stale.objects.exists()
    before = snapshot()
    assert len(before["reports_visitday"]) == 2
    assert before["reports_coveragerun"] == [(site.pk, person.pk, n(0), n(29), None, None)]
    assert before["reports_visitwait"] == [(site.pk, person.pk, n(0), 10 * 60_000)]
    assert len(before["reports_siteday"]) == 2

    summaries.rebuild()
    assert snapshot() == before
    summaries.rebuild()
    assert snapshot() == before
    assert summaries.refresh() == 0
    assert snapshot() == before


def test_a_merge_of_two_records_moves_their_summaries_to_the_kept_record(
    site, front_desk, clinician, privacy_officer
):
    """Two records of one person merged (visits.services.merge): the moved visits, sealed
    ones too, mark both people stale, and the summaries then count them for the kept record
    only, exactly as a full rebuild would."""
    from tests.visits.merging import propose, two_records
    from visits.services.merge import person_merge_approve

    records = two_records(
        site=site, front_desk=front_desk, clinician=clinician, privacy_officer=privacy_officer
    )
    summaries.refresh()
    before = visit_days(records.duplicate)
    assert before
    person_merge_approve(merge=propose(records, by=clinician), by=privacy_officer)
    assert_incremental_equals_rebuild()
    assert visit_days(records.duplicate) == []
    assert coverage(records.duplicate) == []
    assert VisitWait.objects.filter(person_id=records.duplicate.pk).count() == 0
    kept_visits = sum(visits for _d, visits, *_ in visit_days(records.kept))
    assert kept_visits == Visit.objects.filter(person=records.kept).count() == 3
