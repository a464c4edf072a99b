"""Appointments without penalties: services, the check-in hook, the reach-out list, and the
proof the issue asks for (PRODUCT.md invariants 1 and 2).

Times are fixed on a real calendar day in the site's zone (America/Chicago) so that "today"
means the local day, not the UTC one.
"""

import re
import uuid
from datetime import UTC, date, datetime, time, timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from clinic.models import Person
from queues import services as queue
from queues.errors import QueueError
from queues.models import Arrival, ArrivalEvent
from queues.selectors import queue_snapshot
from tests.factories import PersonFactory, ServiceFactory, SiteFactory, check_in, make_staff
from visits.errors import VisitError
from visits.models import Appointment
from visits.selectors.appointments import reach_out_list
from visits.services import appointments as services

DAY = date(2025, 3, 12)  # a Wednesday; Chicago is on daylight time (UTC-5)


def local(day: date, hh: int, mm: int = 0, site=None) -> datetime:
    tz = site.tz if site is not None else timezone.get_default_timezone()
    return datetime.combine(day, time(hh, mm), tzinfo=tz)


@pytest.fixture
def at(site):
    def make(hh: int, mm: int = 0, day: date = DAY) -> datetime:
        return local(day, hh, mm, site)

    return make


def book(site, person, when, by, **fields) -> Appointment:
    """An appointment row as it stands, whenever it was booked (past ones included)."""
    return Appointment.objects.create(site=site, person=person, at=when, created_by=by, **fields)


def footprint() -> dict:
    return {
        "appointments": list(Appointment.objects.order_by("pk").values()),
        "people": list(Person.objects.order_by("pk").values()),
    }


# --- booking, rescheduling, cancelling --------------------------------------------------------


def test_booking_records_person_time_whom_and_what(site, front_desk, clinician, service, at):
    person = PersonFactory(site=site)
    appointment = services.appointment_create(
        site=site,
        by=front_desk,
        person=person,
        at=at(10),
        with_staff=clinician,
        service=service,
        note="  Bring the housing letter  ",
        now=at(8),
    )
    appointment.refresh_from_db()
    assert appointment.person == person
    assert appointment.at == at(10)
    assert appointment.with_staff == clinician
    assert appointment.service == service
    assert appointment.note == "Bring the housing letter"
    assert appointment.created_by == front_desk
    assert appointment.arrival is None


def test_there_is_no_limit_on_future_appointments(site, front_desk, at):
    person = PersonFactory(site=site)
    for _ in range(12):
        book(site, person, at(10, day=DAY - timedelta(days=30)), front_desk)  # never came
    for days in range(40):
        services.appointment_create(
            site=site,
            by=front_desk,
            person=person,
            at=at(10, day=DAY + timedelta(days=days)),
            now=at(8),
        )
    assert Appointment.objects.filter(person=person, at__gte=at(8)).count() == 40


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"at": None}, "time_required"),
        ({"at": "past"}, "in_the_past"),
        ({"person": "other_site"}, "unknown_person"),
        ({"with_staff": "other_site"}, "unknown_staff"),
        ({"with_staff": "inactive"}, "unknown_staff"),
        ({"service": "other_site"}, "unknown_service"),
        ({"service": "inactive"}, "unknown_service"),
        ({"note": "x" * 201}, "note_too_long"),
    ],
)
def test_booking_refuses_bad_input_with_a_code_and_writes_nothing(
    site, other_site, front_desk, clinician, other_site_clinician, at, change, code
):
    values = {
        "site": site,
        "by": front_desk,
        "person": PersonFactory(site=site),
        "at": at(10),
        "with_staff": clinician,
        "service": ServiceFactory(site=site),
        "note": "",
        "now": at(8),
    }
    inactive_staff = make_staff(site=site, roles=[], username="gone", is_active=False)
    replacements = {
        ("at", "past"): at(7, 59),
        ("person", "other_site"): PersonFactory(site=other_site),
        ("with_staff", "other_site"): other_site_clinician,
        ("with_staff", "inactive"): inactive_staff,
        ("service", "other_site"): ServiceFactory(site=other_site),
        ("service", "inactive"): ServiceFactory(site=site, is_active=False),
    }
    for key, value in change.items():
        values[key] = replacements.get((key, value), value)
    before = footprint()
    with pytest.raises(VisitError) as error:
        services.appointment_create(**values)
    assert error.value.code == code
    assert error.value.message
    assert footprint() == before


def test_rescheduling_changes_time_whom_what_and_note(site, front_desk, clinician, service, at):
    appointment = book(site, PersonFactory(site=site), at(10), front_desk)
    services.appointment_reschedule(
        appointment=appointment,
        by=front_desk,
        at=at(15, 30, day=DAY + timedelta(days=2)),
        with_staff=clinician,
        service=service,
        note="Afternoon is easier",
        now=at(8),
    )
    appointment.refresh_from_db()
    assert appointment.at == at(15, 30, day=DAY + timedelta(days=2))
    assert (appointment.with_staff, appointment.service) == (clinician, service)
    assert appointment.note == "Afternoon is easier"


def test_an_appointment_the_person_came_for_cannot_be_rescheduled_or_cancelled(
    site, front_desk, at
):
    person = PersonFactory(site=site)
    appointment = book(site, person, at(10), front_desk)
    check_in(site=site, by=front_desk, person=person, now=at(9, 50))
    appointment.refresh_from_db()
    before = footprint()
    with pytest.raises(VisitError) as error:
        services.appointment_reschedule(
            appointment=appointment, by=front_desk, at=at(16), now=at(9, 55)
        )
    assert error.value.code == "already_here"
    with pytest.raises(VisitError) as error:
        services.appointment_cancel(appointment=appointment, by=front_desk, now=at(9, 55))
    assert error.value.code == "already_here"
    assert footprint() == before


def test_cancelling_deletes_the_appointment_and_keeps_nothing(site, front_desk, at):
    person = PersonFactory(site=site)
    before_person = Person.objects.filter(pk=person.pk).values().get()
    later_today = book(site, person, at(16), front_desk)
    earlier_today = book(site, person, at(9), front_desk)  # earlier today: still cancellable
    services.appointment_cancel(appointment=later_today, by=front_desk, now=at(11))
    services.appointment_cancel(appointment=earlier_today, by=front_desk, now=at(11))
    assert not Appointment.objects.exists()
    assert Person.objects.filter(pk=person.pk).values().get() == before_person


def test_a_past_day_appointment_is_not_cancelled_it_simply_stays_not_seen_yet(site, front_desk, at):
    appointment = book(
        site, PersonFactory(site=site), at(16, day=DAY - timedelta(days=1)), front_desk
    )
    with pytest.raises(VisitError) as error:
        services.appointment_cancel(appointment=appointment, by=front_desk, now=at(11))
    assert error.value.code == "in_the_past"
    assert Appointment.objects.filter(pk=appointment.pk).exists()


# --- the check-in hook --------------------------------------------------------------------------


def test_check_in_links_todays_appointment_and_shows_its_time_on_the_board(
    site, front_desk, clinician, at
):
    person = PersonFactory(site=site)
    appointment = book(site, person, at(10), front_desk)
    arrival = check_in(site=site, by=front_desk, person=person, now=at(10, 20))
    appointment.refresh_from_db()
    arrival.refresh_from_db()
    assert appointment.arrival == arrival
    assert arrival.appointment_at == at(10)
    assert arrival.arrived_at == at(10, 20)

    client = Client()
    client.force_login(front_desk)
    html = client.get(reverse("queues:board")).content.decode()
    row = re.search(rf'<tr[^>]*data-arrival="{arrival.pk}".*?</tr>', html, re.S).group(0)
    assert ">10:00<" in row


def test_check_in_links_the_earliest_unlinked_appointment_of_the_local_day_only(
    site, front_desk, clinician, at
):
    person = PersonFactory(site=site)
    yesterday = book(site, person, at(23, 30, day=DAY - timedelta(days=1)), front_desk)
    tomorrow = book(site, person, at(0, 30, day=DAY + timedelta(days=1)), front_desk)
    afternoon = book(site, person, at(15), front_desk)
    morning = book(site, person, at(0, 30), front_desk)  # 05:30 UTC: same UTC day as yesterday's
    assert yesterday.at.astimezone(UTC).date() == DAY

    first = check_in(site=site, by=front_desk, person=person, now=at(9))
    queue.arrival_start(arrival=first, by=clinician, revision=None, now=at(9, 10))
    queue.arrival_finish(arrival=first, by=clinician, revision=None, now=at(9, 30))
    second = check_in(site=site, by=front_desk, person=person, now=at(14))

    for appointment in (yesterday, tomorrow, afternoon, morning):
        appointment.refresh_from_db()
    assert morning.arrival == first
    assert afternoon.arrival == second
    assert yesterday.arrival is None
    assert tomorrow.arrival is None
    assert Arrival.objects.get(pk=second.pk).appointment_at == at(15)


def test_check_in_does_not_link_someone_elses_or_another_sites_appointment(
    site, other_site, front_desk, at
):
    person = PersonFactory(site=site)
    someone_else = book(site, PersonFactory(site=site), at(10), front_desk)
    elsewhere = book(other_site, PersonFactory(site=other_site), at(10), front_desk)
    arrival = check_in(site=site, by=front_desk, person=person, now=at(10))
    assert Arrival.objects.get(pk=arrival.pk).appointment_at is None
    assert (
        Appointment.objects.filter(pk__in=[someone_else.pk, elsewhere.pk], arrival=None).count()
        == 2
    )


def test_a_time_typed_at_check_in_is_kept_and_the_appointment_still_linked(site, front_desk, at):
    person = PersonFactory(site=site)
    appointment = book(site, person, at(10), front_desk)
    arrival = check_in(
        site=site, by=front_desk, person=person, appointment_at=at(10, 30), now=at(10, 5)
    )
    appointment.refresh_from_db()
    assert appointment.arrival_id == arrival.pk
    assert Arrival.objects.get(pk=arrival.pk).appointment_at == at(10, 30)


def test_a_repeated_tap_or_a_refused_check_in_links_nothing_more(site, front_desk, at):
    person = PersonFactory(site=site)
    morning = book(site, person, at(10), front_desk)
    afternoon = book(site, person, at(15), front_desk)
    nonce = uuid.uuid4()
    first = check_in(site=site, by=front_desk, person=person, nonce=nonce, now=at(10))
    again = check_in(site=site, by=front_desk, person=person, nonce=nonce, now=at(10))
    assert again.pk == first.pk
    with pytest.raises(QueueError) as error:
        check_in(site=site, by=front_desk, person=person, now=at(10, 1))
    assert error.value.code == "already_here"
    morning.refresh_from_db()
    afternoon.refresh_from_db()
    assert morning.arrival_id == first.pk
    assert afternoon.arrival_id is None


# --- place in line: arrival time and urgency only ---------------------------------------------


def line(site, now=None) -> list[str]:
    return [a.person.name for a in queue_snapshot(site=site, now=now).waiting]


def test_a_person_who_comes_late_for_an_appointment_goes_behind_those_who_came_earlier(
    site, front_desk, at
):
    late = PersonFactory(site=site, name="Late for ten")
    book(site, late, at(10), front_desk)
    check_in(site=site, by=front_desk, name="Came 10:30", now=at(10, 30))
    arrival = check_in(site=site, by=front_desk, person=late, now=at(11, 30))
    check_in(site=site, by=front_desk, name="Came 11:45", now=at(11, 45))
    assert line(site) == ["Came 10:30", "Late for ten", "Came 11:45"]
    arrival.refresh_from_db()
    assert arrival.appointment_at == at(10)
    assert arrival.arrived_at == at(11, 30)  # lateness changes nothing else either


def test_a_person_who_comes_early_for_an_appointment_does_not_jump_ahead(
    site, front_desk, clinician, at
):
    early = PersonFactory(site=site, name="Early for two")
    book(site, early, at(14), front_desk)
    check_in(site=site, by=front_desk, name="Came 9:00", now=at(9))
    check_in(site=site, by=front_desk, person=early, now=at(9, 15))
    check_in(site=site, by=front_desk, name="Came 9:20", now=at(9, 20))
    check_in(
        site=site,
        by=front_desk,
        name="Urgent 9:40",
        urgent=True,
        urgent_reason="Bleeding",
        now=at(9, 40),
    )
    expected = ["Urgent 9:40", "Came 9:00", "Early for two", "Came 9:20"]
    assert line(site, now=at(9, 45)) == expected
    # When the appointment time comes, nothing moves.
    assert line(site, now=at(14, 5)) == expected
    called = [
        queue.arrival_call_next(site=site, by=clinician, now=at(14, 10 + n)).person.name
        for n in range(4)
    ]
    assert called == expected


MISSED_DAYS = (1, 2, 3, 5, 8, 13, 20, 27, 34, 41, 48, 55)


def miss_many(site, person, by, today: date) -> list[Appointment]:
    """Twelve past appointments, none ever attended (booked back when they were upcoming)."""
    return [
        book(site, person, local(today - timedelta(days=d), 10, 0, site), by, note="Follow-up")
        for d in MISSED_DAYS
    ]


def _arrival_fields(arrival: Arrival) -> dict:
    arrival.refresh_from_db()
    return {
        field: getattr(arrival, field)
        for field in (
            "urgent",
            "urgent_reason",
            "day",
            "ticket_number",
            "ticket",
            "arrived_at",
            "appointment_at",
            "state",
            "state_changed_at",
            "staff_id",
            "room_id",
            "revision",
            "service_id",
        )
    }


def _run_morning(site, subject, front_desk, clinician, at) -> dict:
    """The same morning at a site, with `subject` arriving at 10:00 among walk-ins."""
    names = {}

    def arrive(label, hh, mm, person=None, **kwargs):
        arrival = check_in(
            site=site,
            by=front_desk,
            person=person,
            name="" if person else label,
            now=at(hh, mm),
            **kwargs,
        )
        names[arrival.person.name] = label
        return arrival

    arrive("walk-in 9:00", 9, 0)
    arrive("walk-in 9:30", 9, 30)
    arrive("walk-in 10:00", 10, 0)  # same minute, checked in just before the subject
    subject_arrival = arrive("subject", 10, 0, person=subject)
    arrive("urgent 10:15", 10, 15, urgent=True, urgent_reason="Chest pain")
    arrive("walk-in 10:30", 10, 30)
    snapshot_order = [
        names[a.person.name] for a in queue_snapshot(site=site, now=at(10, 45)).waiting
    ]
    # Before anyone is called, so the fields hold only what check-in decided.
    placed = _arrival_fields(subject_arrival)
    call_order = [
        names[queue.arrival_call_next(site=site, by=clinician, now=at(11, n)).person.name]
        for n in range(6)
    ]
    return {
        "snapshot": snapshot_order,
        "calls": call_order,
        "arrival": placed,
        "events": list(
            ArrivalEvent.objects.filter(arrival=subject_arrival)
            .order_by("pk")
            .values_list("kind", "at", "from_state", "to_state")
        ),
        "what_helps": Person.objects.get(pk=subject.pk).what_helps,
    }


def test_someone_who_missed_many_appointments_is_placed_exactly_as_a_first_time_walk_in(
    front_desk, at
):
    """The proof the issue asks for: twelve missed appointments change nothing in line."""
    with_history = SiteFactory(slug="with-history", timezone="America/Chicago")
    control = SiteFactory(slug="control", timezone="America/Chicago")
    fd_a = make_staff(site=with_history, roles=["front_desk"], username="fd-a")
    fd_b = make_staff(site=control, roles=["front_desk"], username="fd-b")
    nurse_a = make_staff(site=with_history, roles=["clinician"], username="nurse-a")
    nurse_b = make_staff(site=control, roles=["clinician"], username="nurse-b")

    missed_often = PersonFactory(site=with_history, name="Jordan")
    miss_many(with_history, missed_often, fd_a, DAY)
    first_timer = PersonFactory(site=control, name="Jordan")

    seen = _run_morning(with_history, missed_often, fd_a, nurse_a, at)
    fresh = _run_morning(control, first_timer, fd_b, nurse_b, at)

    assert (
        seen["snapshot"]
        == fresh["snapshot"]
        == [
            "urgent 10:15",
            "walk-in 9:00",
            "walk-in 9:30",
            "walk-in 10:00",
            "subject",
            "walk-in 10:30",
        ]
    )
    assert seen["calls"] == fresh["calls"] == seen["snapshot"]
    assert seen["arrival"] == fresh["arrival"]
    assert seen["arrival"]["appointment_at"] is None
    assert seen["events"] == fresh["events"]
    assert seen["what_helps"] == fresh["what_helps"] == ""
    # The missed appointments are still there, untouched and unlinked: nothing was counted.
    assert Appointment.objects.filter(person=missed_often, arrival=None).count() == 12


FORBIDDEN = re.compile(
    r"\b(miss|missed|misses|missing|no[- ]?shows?|late|lateness|absent|absences?|"
    r"did ?n[o']t (come|attend|show)|reach out|not seen since|follow-up)\b",
    re.IGNORECASE,
)


def _date_forms(day: date) -> list[re.Pattern]:
    """Ways a missed day could be written on a page."""
    month = day.strftime("%b")
    return [
        re.compile(rf"\b{day.day} {month}\b"),
        re.compile(rf"\b{month}\.? {day.day}\b"),
        re.compile(re.escape(day.isoformat())),
        re.compile(rf"\b{day.month:02d}/{day.day:02d}\b"),
        re.compile(rf"\b{day.day:02d}/{day.month:02d}\b"),
    ]


def _assert_no_trace(html: str, missed: list[Appointment], site, where: str) -> None:
    text = re.sub(r"<[^>]+>", " ", html)  # words as shown, not attribute names
    found = FORBIDDEN.search(text)
    assert found is None, f"{where}: {found.group(0)!r} shown to the front desk"
    for appointment in missed:
        day = timezone.localdate(appointment.at, site.tz)
        for pattern in _date_forms(day):
            assert not pattern.search(text), f"{where}: missed date {day} shown ({pattern})"
    count = re.search(r"\(12\)|\b12 (appointments?|times|visits?)\b|[x\u00d7] ?12\b", text)
    assert count is None, f"{where}: a count of 12 is shown"


def _neutral(html: str, person: Person) -> str:
    return html.replace(person.name, "NAME").replace(f'"{person.pk}"', '"PK"')


def test_nothing_about_missed_appointments_appears_to_the_front_desk(site, front_desk, clinician):
    today = timezone.localdate(timezone.now(), site.tz)
    subject = PersonFactory(site=site, name="Jordan Vega")
    control = PersonFactory(site=site, name="Casey Lund")
    missed = miss_many(site, subject, clinician, today)
    client = Client()
    client.force_login(front_desk)

    pages = {}
    # Finding the person at check-in, with and without JavaScript.
    for person in (subject, control):
        pages[f"matches {person.name}"] = client.post(
            reverse("queues:person_matches"), {"name": person.name}
        )
        pages[f"check-in search {person.name}"] = client.post(
            reverse("queues:check_in"),
            {"find": "1", "name": person.name, "nonce": str(uuid.uuid4())},
        )
    # The fragment for someone with twelve missed appointments is the same as for a newcomer.
    assert _neutral(pages[f"matches {subject.name}"].content.decode(), subject) == _neutral(
        pages[f"matches {control.name}"].content.decode(), control
    )

    # Checking both in, and the confirmation each gets.
    for person in (subject, control):
        response = client.post(
            reverse("queues:check_in"), {"nonce": str(uuid.uuid4()), "person": person.pk}
        )
        assert response.status_code == 302, response.content.decode()[:500]
        pages[f"checked in {person.name}"] = client.get(response.url)
    assert "Jordan Vega is checked in" in pages["checked in Jordan Vega"].content.decode()
    assert "Casey Lund is checked in" in pages["checked in Casey Lund"].content.decode()

    pages["board"] = client.get(reverse("queues:board"))
    pages["board live"] = client.get(reverse("queues:board_live"))
    pages["appointments"] = client.get(reverse("visits:appointments"))
    for appointment in missed:
        day = timezone.localdate(appointment.at, site.tz)
        pages[f"appointments {day}"] = client.get(
            reverse("visits:appointments"), {"day": day.isoformat()}
        )
    pages["booking search"] = client.post(
        reverse("visits:appointment_new"), {"find": "1", "q": "Jordan"}
    )
    pages["booking form"] = client.get(reverse("visits:appointment_new"), {"person": subject.pk})
    # The front desk's part of the person page (name, pronouns, what helps, last here).
    pages["person page"] = client.get(reverse("visits:person", args=[subject.pk]))

    for where, response in pages.items():
        assert response.status_code == 200, where
        body = response.content.decode()
        if where == "board live":
            body = response.json()["html"]
        _assert_no_trace(body, missed, site, where)
    # The front desk cannot open the reach-out list at all.
    assert client.get(reverse("visits:reach_out")).status_code == 403
    # And the arrival carries no appointment time from the past.
    assert Arrival.objects.get(person=subject).appointment_at is None


# --- the reach-out list -----------------------------------------------------------------------


def names(entries) -> list[str]:
    return [entry.person.name for entry in entries]


def test_reach_out_lists_recent_appointments_nobody_came_to_since(site, other_site, front_desk, at):
    now = at(12)
    recent = PersonFactory(site=site, name="Recent")
    book(site, recent, now - timedelta(days=3), front_desk)
    book(site, recent, now - timedelta(days=9), front_desk)

    came_since = PersonFactory(site=site, name="Came since")
    book(site, came_since, now - timedelta(days=4), front_desk)
    check_in(site=site, by=front_desk, person=came_since, now=now - timedelta(days=2))

    came_before = PersonFactory(site=site, name="Came before only")
    book(site, came_before, now - timedelta(days=2), front_desk)
    check_in(site=site, by=front_desk, person=came_before, now=now - timedelta(days=5))

    came_for_it = PersonFactory(site=site, name="Came for it")
    book(site, came_for_it, now - timedelta(days=1, hours=1), front_desk)
    check_in(site=site, by=front_desk, person=came_for_it, now=now - timedelta(days=1, hours=2))

    too_old = PersonFactory(site=site, name="Too old")
    book(site, too_old, now - timedelta(days=15), front_desk)

    upcoming = PersonFactory(site=site, name="Upcoming")
    book(site, upcoming, now + timedelta(hours=1), front_desk)

    elsewhere = PersonFactory(site=other_site, name="Elsewhere")
    book(other_site, elsewhere, now - timedelta(days=1), front_desk)

    entries = reach_out_list(site=site, now=now)
    assert names(entries) == ["Came before only", "Recent"]
    recent_entry = entries[1]
    assert recent_entry.last_appointment.at == now - timedelta(days=3)
    assert recent_entry.next_appointment is None


def test_dismissing_takes_a_person_off_the_list_and_records_nothing_on_them(
    site, front_desk, clinician, at
):
    now = at(12)
    person = PersonFactory(site=site, name="Rae", what_helps="Text first")
    before = Person.objects.filter(pk=person.pk).values().get()
    first = book(site, person, now - timedelta(days=6), front_desk)
    second = book(site, person, now - timedelta(days=2), front_desk)
    future = book(site, person, now + timedelta(days=2), front_desk)
    assert names(reach_out_list(site=site, now=now)) == ["Rae"]
    assert reach_out_list(site=site, now=now)[0].next_appointment == future

    assert (
        services.appointment_outreach_dismiss(site=site, person=person, by=clinician, now=now) == 2
    )
    assert reach_out_list(site=site, now=now) == []
    for appointment in (first, second):
        appointment.refresh_from_db()
        assert (appointment.outreach_dismissed_at, appointment.outreach_dismissed_by) == (
            now,
            clinician,
        )
    future.refresh_from_db()
    assert future.outreach_dismissed_at is None
    assert Person.objects.filter(pk=person.pk).values().get() == before

    # A later appointment nobody came to brings them back as a fresh, neutral prompt.
    assert names(reach_out_list(site=site, now=now + timedelta(days=3))) == ["Rae"]


def test_dismissing_refuses_another_sites_person(site, other_site, clinician, at):
    with pytest.raises(VisitError) as error:
        services.appointment_outreach_dismiss(
            site=site, person=PersonFactory(site=other_site), by=clinician, now=at(12)
        )
    assert error.value.code == "unknown_person"
