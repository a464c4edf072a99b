"""Queue services: check-in, ticket codes, line order, transitions, undo, end of day, version.

Every refusal is checked for its `code` and for writing nothing at all. Volume tests run with
row ids in the thousands, the range where comparing integers with `is` silently fails.
"""

import uuid
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace

import pytest
from django.db import connection

from clinic.models import Person
from queues import services
from queues.errors import QueueError
from queues.models import Arrival, ArrivalEvent, EventKind, QueueClock, State, TicketCounter
from queues.selectors import queue_snapshot, queue_version
from tests.factories import PersonFactory, RoomFactory, ServiceFactory, check_in
from visits.models import Visit, VisitParticipant

T0 = datetime(2025, 1, 15, 15, 0, tzinfo=UTC)  # 09:00 in America/Chicago


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def fresh(arrival: Arrival) -> Arrival:
    return Arrival.objects.get(pk=arrival.pk)


def footprint() -> dict:
    """Everything a queue service may write, to show that a refusal wrote nothing."""
    return {
        "people": list(Person.objects.order_by("pk").values()),
        "arrivals": list(Arrival.objects.order_by("pk").values()),
        "events": ArrivalEvent.objects.count(),
        "counters": list(TicketCounter.objects.order_by("pk").values("site_id", "day", "last")),
        "visits": list(Visit.objects.order_by("pk").values()),
        "participants": list(VisitParticipant.objects.order_by("pk").values("visit_id", "user_id")),
        "versions": list(QueueClock.objects.order_by("site_id").values("site_id", "version")),
    }


def start_ids_at(first_id: int, model) -> None:
    """Make the next row of `model` get id `first_id` (and the following ones more)."""
    table = model._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT setval(pg_get_serial_sequence(%s, 'id'), %s)", [table, first_id - 1]
            )
        else:
            cursor.execute(
                "UPDATE sqlite_sequence SET seq = %s WHERE name = %s", [first_id - 1, table]
            )
            if cursor.rowcount == 0:
                cursor.execute(
                    "INSERT INTO sqlite_sequence (name, seq) VALUES (%s, %s)", [table, first_id - 1]
                )


@pytest.fixture
def ids_in_the_thousands(db):
    start_ids_at(3000, Person)
    start_ids_at(5000, Arrival)
    start_ids_at(7000, ArrivalEvent)
    start_ids_at(9000, Visit)


@pytest.fixture
def team(site, room, service, front_desk, clinician, second_clinician):
    return SimpleNamespace(
        site=site,
        room=room,
        service=service,
        front_desk=front_desk,
        clinician=clinician,
        second_clinician=second_clinician,
    )


# Actions a screen can take on an arrival, each with the revision it was drawn from.
ACTIONS = {
    "call": lambda a, t: services.arrival_call(
        arrival=a, by=t.clinician, revision=a.revision, room=t.room
    ),
    "start": lambda a, t: services.arrival_start(arrival=a, by=t.clinician, revision=a.revision),
    "hand_off": lambda a, t: services.arrival_hand_off(
        arrival=a, by=t.clinician, revision=a.revision, to_user=t.second_clinician
    ),
    "step_out": lambda a, t: services.arrival_step_out(
        arrival=a, by=t.front_desk, revision=a.revision
    ),
    "come_back": lambda a, t: services.arrival_come_back(
        arrival=a, by=t.front_desk, revision=a.revision
    ),
    "left": lambda a, t: services.arrival_mark_left(
        arrival=a, by=t.front_desk, revision=a.revision
    ),
    "done": lambda a, t: services.arrival_finish(arrival=a, by=t.clinician, revision=a.revision),
    "close_day": lambda a, t: services.queue_close_day(site=t.site, by=t.front_desk),
}


def drive(arrival: Arrival, team, *steps: str) -> Arrival:
    for step in steps:
        ACTIONS[step](fresh(arrival), team)
    return fresh(arrival)


# --- check-in -----------------------------------------------------------------------------------


def test_check_in_needs_only_the_name_a_person_goes_by(site, front_desk):
    arrival = check_in(site=site, by=front_desk, name="  Marcus  ", now=at(0))

    person = arrival.person
    assert person.name == "Marcus"
    assert person.site == site
    assert (person.pronouns, person.phone, person.what_helps, person.date_of_birth) == (
        "",
        "",
        "",
        None,
    )
    assert arrival.state == State.WAITING
    assert arrival.ticket == "K-1"
    assert arrival.arrived_at == at(0)
    assert arrival.service is None
    assert not arrival.urgent
    event = ArrivalEvent.objects.get(arrival=arrival)
    assert (event.kind, event.by, event.at, event.from_state, event.to_state) == (
        EventKind.CHECKED_IN,
        front_desk,
        at(0),
        "",
        State.WAITING,
    )


def test_check_in_records_the_optional_details_it_is_given(site, service, front_desk):
    arrival = check_in(
        site=site,
        by=front_desk,
        name="Marcus",
        pronouns="he/him",
        date_of_birth=date(1980, 5, 17),
        phone="555-0100",
        what_helps="has a dog called Pepper",
        service=service,
        urgent=True,
        urgent_reason="  chest pain  ",
        appointment_at=at(30),
    )

    person = Person.objects.get(pk=arrival.person_id)
    assert (person.pronouns, person.date_of_birth, person.phone, person.what_helps) == (
        "he/him",
        date(1980, 5, 17),
        "555-0100",
        "has a dog called Pepper",
    )
    arrival = fresh(arrival)
    assert (arrival.service, arrival.urgent, arrival.urgent_reason, arrival.appointment_at) == (
        service,
        True,
        "chest pain",
        at(30),
    )


def test_a_reason_is_dropped_when_the_person_is_not_urgent(site, front_desk):
    arrival = check_in(site=site, by=front_desk, name="Marcus", urgent_reason="chest pain")

    assert fresh(arrival).urgent_reason == ""


def test_checking_in_a_known_person_reuses_them(site, front_desk, clinician):
    person = PersonFactory(site=site, name="Marcus")
    first = check_in(site=site, by=front_desk, person=person, now=at(0))
    services.arrival_mark_left(arrival=first, by=front_desk, revision=first.revision, now=at(5))

    second = check_in(site=site, by=front_desk, person=person, now=at(60))

    assert Person.objects.count() == 1
    assert second.person_id == person.pk
    assert second.pk != first.pk
    assert fresh(second).state == State.WAITING


def test_blank_optional_details_never_erase_what_is_on_file(site, front_desk):
    person = PersonFactory(
        site=site,
        name="Marcus",
        pronouns="they/them",
        date_of_birth=date(1980, 5, 17),
        phone="555-0100",
        what_helps="has a dog",
    )

    check_in(
        site=site,
        by=front_desk,
        person=person,
        pronouns="",
        phone="   ",
        what_helps="",
        date_of_birth=None,
    )

    person.refresh_from_db()
    assert (
        person.name,
        person.pronouns,
        person.date_of_birth,
        person.phone,
        person.what_helps,
    ) == (
        "Marcus",
        "they/them",
        date(1980, 5, 17),
        "555-0100",
        "has a dog",
    )


def test_a_new_detail_given_at_check_in_is_added_to_a_known_person(site, front_desk):
    person = PersonFactory(site=site, name="Marcus", pronouns="they/them", phone="555-0100")

    check_in(site=site, by=front_desk, person=person, what_helps="likes coffee", phone="")

    person.refresh_from_db()
    assert (person.pronouns, person.phone, person.what_helps) == (
        "they/them",
        "555-0100",
        "likes coffee",
    )


def test_the_same_nonce_twice_gives_one_arrival(site, front_desk):
    nonce = uuid.uuid4()
    first = check_in(site=site, by=front_desk, name="Marcus", nonce=nonce)
    version = queue_version(site.pk)

    second = check_in(site=site, by=front_desk, name="Marcus", nonce=nonce)

    assert second.pk == first.pk
    assert Arrival.objects.count() == 1
    assert Person.objects.count() == 1
    assert ArrivalEvent.objects.count() == 1
    assert queue_version(site.pk) == version


def test_the_same_nonce_at_another_site_is_a_different_check_in(
    site, other_site, front_desk, other_site_clinician
):
    nonce = uuid.uuid4()
    here = check_in(site=site, by=front_desk, name="Marcus", nonce=nonce)
    there = check_in(site=other_site, by=other_site_clinician, name="Marcus", nonce=nonce)

    assert here.pk != there.pk
    assert (here.ticket, there.ticket) == ("K-1", "H-1")


@pytest.mark.parametrize(
    "steps", [(), ("call",), ("call", "start"), ("step_out",)], ids=lambda s: "+".join(s) or "wait"
)
def test_a_person_already_in_line_is_not_checked_in_twice(team, steps):
    person = PersonFactory(site=team.site, name="Marcus")
    first = drive(check_in(site=team.site, by=team.front_desk, person=person), team, *steps)
    before = footprint()

    with pytest.raises(QueueError) as caught:
        check_in(site=team.site, by=team.front_desk, person=person)

    assert caught.value.code == "already_here"
    assert caught.value.arrival.pk == first.pk
    assert first.ticket in caught.value.message
    assert footprint() == before


def test_a_refused_check_in_uses_up_no_ticket_number(site, front_desk):
    person = PersonFactory(site=site, name="Marcus")
    check_in(site=site, by=front_desk, person=person)
    for _ in range(3):
        with pytest.raises(QueueError):
            check_in(site=site, by=front_desk, person=person)
    with pytest.raises(QueueError):
        check_in(site=site, by=front_desk, name="   ")

    assert check_in(site=site, by=front_desk, name="Dee").ticket == "K-2"


@pytest.mark.parametrize("steps", [("left",), ("call", "start", "done")], ids=["left", "done"])
def test_a_person_can_check_in_again_once_their_last_arrival_is_over(team, steps):
    person = PersonFactory(site=team.site, name="Marcus")
    drive(check_in(site=team.site, by=team.front_desk, person=person), team, *steps)

    again = check_in(site=team.site, by=team.front_desk, person=person)

    assert again.state == State.WAITING
    assert Arrival.objects.filter(person=person).count() == 2


BAD_CHECK_INS = {
    "empty name": (lambda f: {"name": ""}, "name_required"),
    "blank name": (lambda f: {"name": " \t  "}, "name_required"),
    "10,000-character name": (lambda f: {"name": "N" * 10_000}, "name_too_long"),
    "201-character name": (lambda f: {"name": "N" * 201}, "name_too_long"),
    "other site's service": (
        lambda f: {"name": "Jo", "service": ServiceFactory(site=f.other_site)},
        "unknown_service",
    ),
    "service no longer offered": (
        lambda f: {"name": "Jo", "service": ServiceFactory(site=f.site, is_active=False)},
        "unknown_service",
    ),
    "urgent without a reason": (lambda f: {"name": "Jo", "urgent": True}, "urgent_needs_reason"),
    "urgent with a blank reason": (
        lambda f: {"name": "Jo", "urgent": True, "urgent_reason": "   "},
        "urgent_needs_reason",
    ),
    "10,000-character reason": (
        lambda f: {"name": "Jo", "urgent": True, "urgent_reason": "R" * 10_000},
        "reason_too_long",
    ),
    "10,000-character what helps": (
        lambda f: {"name": "Jo", "what_helps": "W" * 10_000},
        "too_long",
    ),
    "other site's person": (
        lambda f: {"person": PersonFactory(site=f.other_site, name="Jo")},
        "unknown_person",
    ),
}


@pytest.mark.parametrize("case", BAD_CHECK_INS, ids=list(BAD_CHECK_INS))
def test_bad_check_in_input_is_refused_with_a_reason_and_writes_nothing(
    case, site, other_site, front_desk
):
    build, code = BAD_CHECK_INS[case]
    kwargs = build(SimpleNamespace(site=site, other_site=other_site))
    check_in(site=site, by=front_desk, name="Already here")  # the counter and clock exist
    before = footprint()

    with pytest.raises(QueueError) as caught:
        services.arrival_check_in(site=site, by=front_desk, nonce=uuid.uuid4(), **kwargs)

    assert caught.value.code == code
    assert caught.value.message
    assert footprint() == before


# --- ticket codes -------------------------------------------------------------------------------


def test_ticket_codes_count_separately_at_each_site(
    site, other_site, front_desk, other_site_clinician
):
    tickets = [
        check_in(site=site, by=front_desk).ticket,
        check_in(site=other_site, by=other_site_clinician).ticket,
        check_in(site=site, by=front_desk).ticket,
        check_in(site=other_site, by=other_site_clinician).ticket,
        check_in(site=site, by=front_desk).ticket,
    ]

    assert tickets == ["K-1", "H-1", "K-2", "H-2", "K-3"]


def test_ticket_numbers_restart_at_local_midnight_in_the_sites_timezone(site, front_desk):
    # Chicago is UTC-6 in January: 05:59 UTC is 23:59 the day before, 06:01 UTC is 00:01.
    afternoon = check_in(site=site, by=front_desk, now=datetime(2025, 1, 14, 20, 0, tzinfo=UTC))
    late = check_in(site=site, by=front_desk, now=datetime(2025, 1, 15, 5, 59, tzinfo=UTC))
    after_midnight = check_in(site=site, by=front_desk, now=datetime(2025, 1, 15, 6, 1, tzinfo=UTC))
    next_one = check_in(site=site, by=front_desk, now=datetime(2025, 1, 15, 6, 30, tzinfo=UTC))

    assert [a.ticket for a in (afternoon, late, after_midnight, next_one)] == [
        "K-1",
        "K-2",
        "K-1",
        "K-2",
    ]
    assert [a.day for a in (afternoon, late, after_midnight, next_one)] == [
        date(2025, 1, 14),
        date(2025, 1, 14),
        date(2025, 1, 15),
        date(2025, 1, 15),
    ]


def test_ticket_numbers_keep_counting_well_past_256(site, front_desk, ids_in_the_thousands):
    arrivals = [check_in(site=site, by=front_desk, now=at(i / 10)) for i in range(300)]

    assert arrivals[0].pk >= 5000
    assert [a.ticket for a in arrivals] == [f"K-{n}" for n in range(1, 301)]
    assert TicketCounter.objects.get(site=site).last == 300
    assert Arrival.objects.values("ticket").distinct().count() == 300


# --- line order ---------------------------------------------------------------------------------


def line(site) -> list[str]:
    return [a.person.name for a in queue_snapshot(site=site, now=at(600)).waiting]


def call_all(site, by) -> list[str]:
    called = []
    while True:
        try:
            called.append(services.arrival_call_next(site=site, by=by).person.name)
        except QueueError as error:
            assert error.code == "nobody_waiting"
            return called


def test_urgent_people_go_first_then_everyone_by_arrival_time(site, front_desk, clinician):
    for minute, name, urgent in [
        (0, "Ana", False),
        (5, "Ben", True),
        (10, "Cy", False),
        (15, "Dee", True),
        (20, "Eli", False),
    ]:
        check_in(
            site=site,
            by=front_desk,
            name=name,
            now=at(minute),
            urgent=urgent,
            urgent_reason="short of breath" if urgent else "",
        )

    assert line(site) == ["Ben", "Dee", "Ana", "Cy", "Eli"]
    assert call_all(site, clinician) == ["Ben", "Dee", "Ana", "Cy", "Eli"]


def test_an_appointment_time_never_moves_anyone(site, front_desk, clinician):
    # Ana is early for an 11:00 appointment, Cy is an hour late for 08:00: neither moves.
    check_in(site=site, by=front_desk, name="Ana", now=at(0), appointment_at=at(120))
    check_in(site=site, by=front_desk, name="Ben", now=at(10))
    check_in(site=site, by=front_desk, name="Cy", now=at(20), appointment_at=at(-60))

    assert line(site) == ["Ana", "Ben", "Cy"]
    assert call_all(site, clinician) == ["Ana", "Ben", "Cy"]


def test_stepping_out_keeps_a_place_in_line_and_back_restores_it(site, front_desk, clinician):
    ana = check_in(site=site, by=front_desk, name="Ana", now=at(0))
    check_in(site=site, by=front_desk, name="Ben", now=at(5))
    check_in(site=site, by=front_desk, name="Cy", now=at(10))

    services.arrival_step_out(arrival=ana, by=front_desk, revision=ana.revision, now=at(15))

    assert line(site) == ["Ana", "Ben", "Cy"]
    assert fresh(ana).state == State.STEPPED_OUT
    assert services.arrival_call_next(site=site, by=clinician).person.name == "Ben"

    ana = fresh(ana)
    services.arrival_come_back(arrival=ana, by=front_desk, revision=ana.revision, now=at(40))

    assert fresh(ana).arrived_at == at(0)
    assert call_all(site, clinician) == ["Ana", "Cy"]


def test_call_next_follows_line_order_over_300_people_with_ids_in_the_thousands(
    site, front_desk, clinician, ids_in_the_thousands
):
    arrivals = [
        check_in(
            site=site,
            by=front_desk,
            name=f"Person {i:03d}",
            now=at(i / 4),
            urgent=i % 7 == 3,
            urgent_reason="bleeding" if i % 7 == 3 else "",
        )
        for i in range(300)
    ]
    assert min(a.pk for a in arrivals) >= 5000
    assert min(a.person_id for a in arrivals) >= 3000
    expected = [a.person.name for a in arrivals if a.urgent] + [
        a.person.name for a in arrivals if not a.urgent
    ]

    assert line(site) == expected
    assert call_all(site, clinician) == expected
    assert Arrival.objects.filter(state=State.CALLED, staff=clinician).count() == 300


# --- call next ----------------------------------------------------------------------------------


def test_call_next_gives_the_caller_the_first_person_and_their_room(
    site, room, front_desk, clinician
):
    check_in(site=site, by=front_desk, name="Ana", now=at(0))
    check_in(site=site, by=front_desk, name="Ben", now=at(1))

    called = services.arrival_call_next(site=site, by=clinician, room=room, now=at(5))

    called = fresh(called)
    assert (called.person.name, called.state, called.staff, called.room) == (
        "Ana",
        State.CALLED,
        clinician,
        room,
    )
    assert called.state_changed_at == at(5)


def test_call_next_for_one_service_skips_people_waiting_for_something_else(
    site, service, front_desk, clinician
):
    other = ServiceFactory(site=site, name="Prescriptions")
    check_in(site=site, by=front_desk, name="Ana", now=at(0), service=other)
    check_in(site=site, by=front_desk, name="Ben", now=at(1), service=service)
    check_in(site=site, by=front_desk, name="Cy", now=at(2))

    first = services.arrival_call_next(site=site, by=clinician, service=service)
    assert first.person.name == "Ben"

    before = footprint()
    with pytest.raises(QueueError) as caught:
        services.arrival_call_next(site=site, by=clinician, service=service)
    assert caught.value.code == "nobody_waiting"
    assert caught.value.message == "Nobody is waiting for Wound care."
    assert footprint() == before


def test_call_next_with_nobody_waiting_says_so_and_changes_nothing(site, front_desk, clinician):
    out = check_in(site=site, by=front_desk, name="Ana")
    services.arrival_step_out(arrival=out, by=front_desk, revision=out.revision)
    before = footprint()

    with pytest.raises(QueueError) as caught:
        services.arrival_call_next(site=site, by=clinician)

    assert caught.value.code == "nobody_waiting"
    assert caught.value.message == "Nobody is waiting."
    assert footprint() == before


def test_call_next_never_reaches_into_another_sites_line(
    site, other_site, front_desk, other_site_clinician, clinician
):
    check_in(site=other_site, by=other_site_clinician, name="Elsewhere")

    with pytest.raises(QueueError) as caught:
        services.arrival_call_next(site=site, by=clinician)

    assert caught.value.code == "nobody_waiting"
    assert Arrival.objects.get().state == State.WAITING


@pytest.mark.parametrize("which", ["other site's room", "room not in use"])
def test_calling_into_a_room_that_is_not_available_here_is_refused(
    which, site, other_site, front_desk, clinician
):
    room = (
        RoomFactory(site=other_site)
        if which == "other site's room"
        else RoomFactory(site=site, is_active=False)
    )
    arrival = check_in(site=site, by=front_desk, name="Ana")
    before = footprint()

    with pytest.raises(QueueError) as next_error:
        services.arrival_call_next(site=site, by=clinician, room=room)
    with pytest.raises(QueueError) as call_error:
        services.arrival_call(arrival=arrival, by=clinician, revision=arrival.revision, room=room)

    assert (next_error.value.code, call_error.value.code) == ("unknown_room", "unknown_room")
    assert footprint() == before


def test_call_next_for_another_sites_service_is_refused(site, other_site, front_desk, clinician):
    check_in(site=site, by=front_desk, name="Ana")
    before = footprint()

    with pytest.raises(QueueError) as caught:
        services.arrival_call_next(site=site, by=clinician, service=ServiceFactory(site=other_site))

    assert caught.value.code == "unknown_service"
    assert footprint() == before


# --- transitions --------------------------------------------------------------------------------


def test_each_transition_writes_exactly_one_event_with_who_when_from_and_to(
    site, room, front_desk, clinician, second_clinician, ids_in_the_thousands
):
    arrival = check_in(site=site, by=front_desk, name="Marcus", now=at(0))
    assert arrival.pk >= 5000
    steps = [
        # (service, kwargs, kind, by, from_state, to_state, staff before/after, room before/after)
        (
            services.arrival_call,
            {"by": clinician, "room": room},
            EventKind.CALLED,
            (State.WAITING, State.CALLED),
            (None, clinician),
            (None, room),
        ),
        (
            services.arrival_step_out,
            {"by": front_desk},
            EventKind.STEPPED_OUT,
            (State.CALLED, State.STEPPED_OUT),
            (clinician, None),
            (room, None),
        ),
        (
            services.arrival_come_back,
            {"by": front_desk},
            EventKind.CAME_BACK,
            (State.STEPPED_OUT, State.WAITING),
            (None, None),
            (None, None),
        ),
        (
            services.arrival_call,
            {"by": clinician, "room": room},
            EventKind.CALLED,
            (State.WAITING, State.CALLED),
            (None, clinician),
            (None, room),
        ),
        (
            services.arrival_start,
            {"by": clinician},
            EventKind.STARTED,
            (State.CALLED, State.WITH_STAFF),
            (clinician, clinician),
            (room, room),
        ),
        (
            services.arrival_hand_off,
            {"by": clinician, "to_user": second_clinician},
            EventKind.HANDED_OFF,
            (State.WITH_STAFF, State.WITH_STAFF),
            (clinician, second_clinician),
            (room, room),
        ),
        (
            services.arrival_finish,
            {"by": second_clinician},
            EventKind.DONE,
            (State.WITH_STAFF, State.DONE),
            (second_clinician, second_clinician),
            (room, room),
        ),
    ]

    for minute, (action, kwargs, kind, states, staff, rooms) in enumerate(steps, start=1):
        arrival = fresh(arrival)
        seen = set(ArrivalEvent.objects.values_list("pk", flat=True))

        action(arrival=arrival, revision=arrival.revision, now=at(minute), **kwargs)

        new = ArrivalEvent.objects.exclude(pk__in=seen)
        assert new.count() == 1, kind
        event = new.get()
        assert (event.arrival_id, event.site_id, event.kind, event.by, event.at) == (
            arrival.pk,
            site.pk,
            kind,
            kwargs["by"],
            at(minute),
        )
        assert (event.from_state, event.to_state) == states
        assert (event.from_staff, event.to_staff) == staff
        assert (event.from_room, event.to_room) == rooms
        after = fresh(arrival)
        assert (after.state, after.staff, after.room) == (states[1], staff[1], rooms[1])
        assert after.state_changed_at == at(minute)
        assert after.revision == arrival.revision + 1


@pytest.mark.parametrize(
    "steps", [(), ("call",), ("step_out",)], ids=["waiting", "called", "stepped_out"]
)
def test_left_before_being_seen_writes_one_event_from_any_state_not_seen_yet(team, steps):
    arrival = drive(check_in(site=team.site, by=team.front_desk, name="Ana"), team, *steps)
    events = ArrivalEvent.objects.count()

    services.arrival_mark_left(
        arrival=arrival, by=team.front_desk, revision=arrival.revision, now=at(30)
    )

    assert ArrivalEvent.objects.count() == events + 1
    event = ArrivalEvent.objects.latest("pk")
    assert (event.kind, event.by, event.at, event.from_state, event.to_state) == (
        EventKind.LEFT,
        team.front_desk,
        at(30),
        arrival.state,
        State.LEFT,
    )
    assert fresh(arrival).state == State.LEFT


def test_starting_opens_a_visit_with_the_clinician_as_participant(
    site, front_desk, clinician, ids_in_the_thousands
):
    arrival = check_in(site=site, by=front_desk, name="Marcus", now=at(0))
    services.arrival_call_next(site=site, by=clinician, now=at(5))

    services.arrival_start(
        arrival=arrival, by=clinician, revision=fresh(arrival).revision, now=at(6)
    )

    visit = Visit.objects.get()
    assert visit.pk >= 9000
    assert (visit.site, visit.person, visit.arrival_id, visit.opened_by) == (
        site,
        arrival.person,
        arrival.pk,
        clinician,
    )
    assert (visit.started_at, visit.ended_at) == (at(6), None)
    assert list(visit.participants.values_list("user_id", "discipline", "joined_at")) == [
        (clinician.pk, "np", at(6))
    ]


def test_a_waiting_person_can_be_started_without_being_called_first(site, front_desk, clinician):
    arrival = check_in(site=site, by=front_desk, name="Marcus")

    services.arrival_start(arrival=arrival, by=clinician, revision=arrival.revision)

    assert (fresh(arrival).state, fresh(arrival).staff) == (State.WITH_STAFF, clinician)
    assert Visit.objects.filter(arrival=arrival).exists()


def test_handing_off_adds_the_new_team_member_to_the_visit(team):
    arrival = drive(check_in(site=team.site, by=team.front_desk, name="Marcus"), team, "start")

    services.arrival_hand_off(
        arrival=arrival,
        by=team.clinician,
        revision=arrival.revision,
        to_user=team.second_clinician,
        now=at(20),
    )

    assert fresh(arrival).staff == team.second_clinician
    participants = dict(
        VisitParticipant.objects.filter(visit__arrival=arrival).values_list("user_id", "discipline")
    )
    assert participants == {team.clinician.pk: "np", team.second_clinician.pk: "peer_navigator"}


@pytest.mark.parametrize(
    ("to", "code"),
    [
        ("other_site_clinician", "unknown_staff"),
        ("front_desk", "unknown_staff"),
        ("director", "unknown_staff"),
        ("clinician", "same_staff"),
        (None, "unknown_staff"),
    ],
)
def test_handing_off_to_someone_who_cannot_take_over_here_is_refused(team, request, to, code):
    to_user = request.getfixturevalue(to) if to else None
    arrival = drive(check_in(site=team.site, by=team.front_desk, name="Marcus"), team, "start")
    before = footprint()

    with pytest.raises(QueueError) as caught:
        services.arrival_hand_off(
            arrival=arrival, by=team.clinician, revision=arrival.revision, to_user=to_user
        )

    assert caught.value.code == code
    assert footprint() == before


def test_done_closes_the_visit(team):
    arrival = check_in(site=team.site, by=team.front_desk, name="Marcus", now=at(0))
    arrival = services.arrival_start(
        arrival=arrival, by=team.clinician, revision=arrival.revision, now=at(10)
    )

    services.arrival_finish(
        arrival=arrival, by=team.clinician, revision=arrival.revision, now=at(45)
    )

    assert fresh(arrival).state == State.DONE
    assert Visit.objects.get(arrival=arrival).ended_at == at(45)


NOT_ALLOWED = {
    "done while waiting": ((), "done"),
    "back while waiting": ((), "come_back"),
    "hand off while called": (("call",), "hand_off"),
    "step out while with staff": (("call", "start"), "step_out"),
    "left while with staff": (("call", "start"), "left"),
    "call once done": (("start", "done"), "call"),
    "start once left": (("left",), "start"),
}


@pytest.mark.parametrize("case", NOT_ALLOWED, ids=list(NOT_ALLOWED))
def test_an_action_that_does_not_fit_the_current_state_is_refused(team, case):
    steps, action = NOT_ALLOWED[case]
    arrival = drive(check_in(site=team.site, by=team.front_desk, name="Ana"), team, *steps)
    before = footprint()

    with pytest.raises(QueueError) as caught:
        ACTIONS[action](arrival, team)

    assert caught.value.code == "not_allowed_now"
    assert caught.value.message
    assert footprint() == before


STALE = {
    "call": lambda a, u, rev: services.arrival_call(arrival=a, by=u, revision=rev),
    "start": lambda a, u, rev: services.arrival_start(arrival=a, by=u, revision=rev),
    "step out": lambda a, u, rev: services.arrival_step_out(arrival=a, by=u, revision=rev),
    "left": lambda a, u, rev: services.arrival_mark_left(arrival=a, by=u, revision=rev),
    "undo": lambda a, u, rev: services.arrival_undo(arrival=a, by=u, revision=rev),
}


@pytest.mark.parametrize("action", STALE)
def test_a_screen_that_is_behind_cannot_change_an_entry_someone_already_called(
    action, site, front_desk, clinician, second_clinician
):
    arrival = check_in(site=site, by=front_desk, name="Marcus")
    seen_revision = arrival.revision  # Sam's screen still shows Marcus waiting
    services.arrival_call(arrival=arrival, by=clinician, revision=seen_revision)
    before = footprint()

    with pytest.raises(QueueError) as caught:
        STALE[action](arrival, second_clinician, seen_revision)

    assert caught.value.code == "changed_elsewhere"
    assert caught.value.message == "Already called by Alex."
    assert caught.value.arrival.pk == arrival.pk
    assert footprint() == before


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        (("call", "start"), "Already with Alex."),
        (("call", "start", "done"), "Already finished by Alex."),
        (("left",), "Already marked as left before being seen."),
    ],
)
def test_a_stale_screen_is_told_what_happened_instead(team, steps, message):
    arrival = check_in(site=team.site, by=team.front_desk, name="Marcus")
    seen_revision = arrival.revision
    drive(arrival, team, *steps)
    before = footprint()

    with pytest.raises(QueueError) as caught:
        services.arrival_call(arrival=arrival, by=team.second_clinician, revision=seen_revision)

    assert (caught.value.code, caught.value.message) == ("changed_elsewhere", message)
    assert footprint() == before


def test_revisions_past_256_still_match_and_a_stale_one_is_still_refused(
    site, front_desk, clinician
):
    arrival = check_in(site=site, by=front_desk, name="Marcus")
    for _ in range(300):
        arrival = services.arrival_call(arrival=arrival, by=clinician, revision=arrival.revision)
    assert arrival.revision == 301

    with pytest.raises(QueueError) as caught:
        services.arrival_call(arrival=arrival, by=clinician, revision=300)
    assert caught.value.code == "changed_elsewhere"

    services.arrival_start(arrival=arrival, by=clinician, revision=301)
    assert fresh(arrival).state == State.WITH_STAFF


# --- undo ---------------------------------------------------------------------------------------


UNDO = {
    # last action: (steps, state, staff persona, room?) restored by undoing the last step
    "call": (("call",), State.WAITING, None, False),
    "start": (("call", "start"), State.CALLED, "clinician", True),
    "hand off": (("call", "start", "hand_off"), State.WITH_STAFF, "clinician", True),
    "step out": (("step_out",), State.WAITING, None, False),
    "back": (("step_out", "come_back"), State.STEPPED_OUT, None, False),
    "left": (("call", "left"), State.CALLED, "clinician", True),
    "done": (("call", "start", "done"), State.WITH_STAFF, "clinician", True),
    "day closed": (("close_day",), State.WAITING, None, False),
}


@pytest.mark.parametrize("case", UNDO, ids=list(UNDO))
def test_undo_restores_what_was_there_before_the_last_action(team, case):
    steps, state, staff, in_room = UNDO[case]
    arrival = drive(check_in(site=team.site, by=team.front_desk, name="Marcus"), team, *steps)
    target = ArrivalEvent.objects.filter(arrival=arrival).latest("pk")
    events = ArrivalEvent.objects.count()
    version = queue_version(team.site.pk)

    services.arrival_undo(
        arrival=arrival, by=team.front_desk, revision=arrival.revision, now=at(90)
    )

    after = fresh(arrival)
    assert (after.state, after.staff, after.room) == (
        state,
        getattr(team, staff) if staff else None,
        team.room if in_room else None,
    )
    assert after.revision == arrival.revision + 1
    assert ArrivalEvent.objects.count() == events + 1
    undo = ArrivalEvent.objects.latest("pk")
    assert (undo.kind, undo.reverts, undo.by, undo.at) == (
        EventKind.UNDONE,
        target,
        team.front_desk,
        at(90),
    )
    assert (undo.from_state, undo.to_state) == (arrival.state, state)
    assert queue_version(team.site.pk) == version + 1


def test_undoing_start_removes_the_visit_it_opened(team):
    arrival = drive(
        check_in(site=team.site, by=team.front_desk, name="Marcus"), team, "call", "start"
    )
    assert Visit.objects.filter(arrival=arrival).exists()

    services.arrival_undo(arrival=arrival, by=team.clinician, revision=arrival.revision)

    assert not Visit.objects.exists()
    assert not VisitParticipant.objects.exists()
    # Starting again opens a fresh visit.
    drive(arrival, team, "start")
    assert Visit.objects.filter(arrival=arrival).count() == 1


def test_undoing_a_hand_off_takes_the_new_team_member_off_the_visit(team):
    arrival = drive(
        check_in(site=team.site, by=team.front_desk, name="Marcus"), team, "start", "hand_off"
    )

    services.arrival_undo(arrival=arrival, by=team.clinician, revision=arrival.revision)

    assert list(
        VisitParticipant.objects.filter(visit__arrival=arrival).values_list("user_id", flat=True)
    ) == [team.clinician.pk]


def test_undoing_done_reopens_the_visit(team):
    arrival = drive(
        check_in(site=team.site, by=team.front_desk, name="Marcus"), team, "start", "done"
    )
    assert Visit.objects.get().ended_at is not None

    services.arrival_undo(arrival=arrival, by=team.clinician, revision=arrival.revision)

    assert Visit.objects.get().ended_at is None
    assert fresh(arrival).state == State.WITH_STAFF


def test_repeated_undo_walks_back_one_action_at_a_time_and_stops_at_check_in(team):
    arrival = drive(
        check_in(site=team.site, by=team.front_desk, name="Marcus"), team, "call", "start", "done"
    )
    states = []
    for _ in range(3):
        arrival = fresh(arrival)
        services.arrival_undo(arrival=arrival, by=team.clinician, revision=arrival.revision)
        states.append(fresh(arrival).state)

    assert states == [State.WITH_STAFF, State.CALLED, State.WAITING]
    assert not Visit.objects.exists()
    undone = list(
        ArrivalEvent.objects.filter(kind=EventKind.UNDONE)
        .order_by("pk")
        .values_list("reverts__kind", flat=True)
    )
    assert undone == [EventKind.DONE, EventKind.STARTED, EventKind.CALLED]

    arrival = fresh(arrival)
    before = footprint()
    with pytest.raises(QueueError) as caught:
        services.arrival_undo(arrival=arrival, by=team.clinician, revision=arrival.revision)
    assert caught.value.code == "nothing_to_undo"
    assert footprint() == before


def test_a_check_in_cannot_be_undone(site, front_desk):
    arrival = check_in(site=site, by=front_desk, name="Marcus")
    before = footprint()

    with pytest.raises(QueueError) as caught:
        services.arrival_undo(arrival=arrival, by=front_desk, revision=arrival.revision)

    assert caught.value.code == "nothing_to_undo"
    assert footprint() == before


@pytest.mark.parametrize("steps", [("left",), ("close_day",), ("start", "done")])
def test_undo_never_puts_a_person_in_line_twice(team, steps):
    person = PersonFactory(site=team.site, name="Marcus")
    earlier = drive(check_in(site=team.site, by=team.front_desk, person=person), team, *steps)
    now_here = check_in(site=team.site, by=team.front_desk, person=person)
    before = footprint()

    with pytest.raises(QueueError) as caught:
        services.arrival_undo(arrival=earlier, by=team.front_desk, revision=earlier.revision)

    assert caught.value.code == "already_here"
    assert caught.value.arrival.pk == now_here.pk
    assert footprint() == before


# --- end of day ---------------------------------------------------------------------------------


def test_closing_the_day_records_everyone_not_seen_yet_as_left(
    team, other_site, other_site_clinician
):
    def arrival(name, *steps):
        return drive(check_in(site=team.site, by=team.front_desk, name=name), team, *steps)

    waiting = arrival("Ana")
    called = arrival("Ben", "call")
    stepped_out = arrival("Cy", "step_out")
    with_staff = arrival("Dee", "start")
    done = arrival("Eli", "start", "done")
    left = arrival("Fay", "left")
    elsewhere = check_in(site=other_site, by=other_site_clinician, name="Gus")
    untouched = {a.pk: fresh(a).revision for a in (with_staff, done, left, elsewhere)}
    events = ArrivalEvent.objects.count()
    version = queue_version(team.site.pk)

    closed = services.queue_close_day(site=team.site, by=team.front_desk, now=at(600))

    assert closed == 3
    for before in (waiting, called, stepped_out):
        after = fresh(before)
        assert (after.state, after.staff, after.room) == (State.LEFT, None, None)
        event = ArrivalEvent.objects.filter(arrival=before).latest("pk")
        assert (event.kind, event.by, event.at, event.from_state, event.to_state) == (
            EventKind.DAY_CLOSED,
            team.front_desk,
            at(600),
            before.state,
            State.LEFT,
        )
    assert ArrivalEvent.objects.count() == events + 3
    assert {a.pk: a.revision for a in Arrival.objects.filter(pk__in=untouched)} == untouched
    assert fresh(with_staff).state == State.WITH_STAFF
    assert fresh(elsewhere).state == State.WAITING
    assert queue_version(team.site.pk) == version + 1


def test_closing_a_day_with_nobody_waiting_changes_nothing(team):
    drive(check_in(site=team.site, by=team.front_desk, name="Dee"), team, "start")
    before = footprint()

    assert services.queue_close_day(site=team.site, by=team.front_desk) == 0
    assert footprint() == before


def test_closing_the_day_at_volume_closes_everyone_with_ids_in_the_thousands(
    site, front_desk, clinician, ids_in_the_thousands
):
    arrivals = [check_in(site=site, by=front_desk, now=at(i)) for i in range(300)]
    services.arrival_call_next(site=site, by=clinician)
    services.arrival_start(arrival=arrivals[0], by=clinician, revision=fresh(arrivals[0]).revision)

    assert services.queue_close_day(site=site, by=front_desk) == 299
    assert ArrivalEvent.objects.filter(kind=EventKind.DAY_CLOSED).count() == 299
    assert fresh(arrivals[0]).state == State.WITH_STAFF
    assert Arrival.objects.filter(state=State.LEFT).count() == 299


# --- display link -------------------------------------------------------------------------------


def test_rotating_the_display_link_gives_a_new_secret(site):
    old = site.display_token
    version = queue_version(site.pk)

    services.site_rotate_display_token(site=site)

    site.refresh_from_db()
    assert site.display_token != old
    assert len(site.display_token) >= 24
    assert queue_version(site.pk) == version + 1


# --- queue version ------------------------------------------------------------------------------


def test_the_queue_version_goes_up_by_exactly_one_per_change(team, other_site):
    steps = []

    def change(label, fn):
        before = queue_version(team.site.pk)
        fn()
        steps.append((label, queue_version(team.site.pk) - before))

    nonce = uuid.uuid4()
    change(
        "check in", lambda: check_in(site=team.site, by=team.front_desk, name="Ana", nonce=nonce)
    )
    change(
        "same tap", lambda: check_in(site=team.site, by=team.front_desk, name="Ana", nonce=nonce)
    )
    change("check in", lambda: check_in(site=team.site, by=team.front_desk, name="Ben"))
    ana = Arrival.objects.get(person__name="Ana")
    ben = Arrival.objects.get(person__name="Ben")
    change("call next", lambda: services.arrival_call_next(site=team.site, by=team.clinician))
    for action in ("start", "hand_off", "done"):
        change(action, lambda action=action: ACTIONS[action](fresh(ana), team))
    change("undo", lambda: services.arrival_undo(arrival=ana, by=team.clinician, revision=None))
    for action in ("step_out", "come_back", "call", "left"):
        change(action, lambda action=action: ACTIONS[action](fresh(ben), team))
    change("close day", lambda: services.queue_close_day(site=team.site, by=team.front_desk))
    change("rotate", lambda: services.site_rotate_display_token(site=team.site))

    assert steps == [
        ("check in", 1),
        ("same tap", 0),
        ("check in", 1),
        ("call next", 1),
        ("start", 1),
        ("hand_off", 1),
        ("done", 1),
        ("undo", 1),
        ("step_out", 1),
        ("come_back", 1),
        ("call", 1),
        ("left", 1),
        ("close day", 0),  # nobody left to close
        ("rotate", 1),
    ]
    assert queue_version(team.site.pk) == 12
    assert queue_version(other_site.pk) == 0


def test_a_refused_action_leaves_the_queue_version_alone(site, front_desk, clinician):
    arrival = check_in(site=site, by=front_desk, name="Ana")
    version = queue_version(site.pk)

    for attempt in (
        lambda: services.arrival_finish(arrival=arrival, by=clinician, revision=None),
        lambda: services.arrival_undo(arrival=arrival, by=clinician, revision=None),
        lambda: services.arrival_call(arrival=arrival, by=clinician, revision=arrival.revision + 5),
        lambda: check_in(site=site, by=front_desk, name=""),
    ):
        with pytest.raises(QueueError):
            attempt()
    services.arrival_call_next(site=site, by=clinician)
    with pytest.raises(QueueError):
        services.arrival_call_next(site=site, by=clinician)

    assert queue_version(site.pk) == version + 1
