"""Appointment pages: who may open what, booking by the front desk, bad input (never a 500),
another site's people and appointments (404), and the care team's reach-out list.
"""

from datetime import datetime, time, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from clinic.models import Person
from tests.factories import PersonFactory, ServiceFactory, check_in
from tests.helpers import PERSONAS, messages_of
from visits.models import Appointment


@pytest.fixture
def today(site):
    return timezone.localdate(timezone.now(), site.tz)


@pytest.fixture
def tomorrow_at(site, today):
    def make(hh: int, mm: int = 0, days: int = 1) -> datetime:
        return datetime.combine(today + timedelta(days=days), time(hh, mm), tzinfo=site.tz)

    return make


def book(site, person, when, by=None, **fields) -> Appointment:
    by = by or person.created_by or _anyone(site)
    return Appointment.objects.create(site=site, person=person, at=when, created_by=by, **fields)


def _anyone(site):
    return site.memberships.first().user


def booking_data(person, day, **overrides) -> dict:
    return {"person": person.pk, "day": day.isoformat(), "time": "10:30", **overrides}


# --- who may open what ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("persona", "status"),
    [
        ("anonymous", 302),
        ("front_desk", 200),
        ("clinician", 200),
        ("director", 403),
        ("privacy_officer", 403),
        ("other_site_clinician", 200),
    ],
)
def test_who_may_see_the_appointments_page(
    client, login, site, front_desk, tomorrow_at, persona, status
):
    book(site, PersonFactory(site=site, name="Marisol"), tomorrow_at(10), front_desk)
    login(persona)
    response = client.get(reverse("visits:appointments"))
    assert response.status_code == status
    if status == 302:
        assert response.url.startswith(reverse("login"))
    if persona == "other_site_clinician":
        assert "Marisol" not in response.content.decode()


@pytest.mark.parametrize(
    ("persona", "status"),
    [
        ("anonymous", 302),
        ("front_desk", 403),
        ("clinician", 200),
        ("director", 403),
        ("privacy_officer", 403),
        ("other_site_clinician", 200),
    ],
)
def test_only_the_care_team_sees_the_reach_out_list(
    client, login, site, front_desk, today, persona, status
):
    person = PersonFactory(site=site, name="Marisol")
    book(site, person, timezone.now() - timedelta(days=2), front_desk)
    login(persona)
    response = client.get(reverse("visits:reach_out"))
    assert response.status_code == status
    if persona == "clinician":
        assert "Marisol" in response.content.decode()
    if persona == "other_site_clinician":
        assert "Marisol" not in response.content.decode()


@pytest.mark.parametrize("persona", PERSONAS)
def test_only_the_care_team_may_dismiss_from_the_reach_out_list(
    client, login, site, front_desk, persona
):
    person = PersonFactory(site=site)
    appointment = book(site, person, timezone.now() - timedelta(days=2), front_desk)
    login(persona)
    response = client.post(reverse("visits:reach_out_dismiss", args=[person.pk]))
    appointment.refresh_from_db()
    expected = {
        "anonymous": 302,
        "clinician": 302,
        "front_desk": 403,
        "director": 403,
        "privacy_officer": 403,
        "other_site_clinician": 404,
    }[persona]
    assert response.status_code == expected
    assert (appointment.outreach_dismissed_at is not None) == (persona == "clinician")


@pytest.mark.parametrize(
    "name", ["visits:appointment_new", "visits:appointments", "visits:reach_out"]
)
def test_director_and_privacy_officer_cannot_book_or_list(client, login, name):
    for persona in ("director", "privacy_officer"):
        login(persona)
        assert client.get(reverse(name)).status_code == 403


def test_the_nav_links_to_appointments_for_front_desk_not_for_director(client, login):
    login("front_desk")
    assert reverse("visits:appointments") in client.get(reverse("queues:board")).content.decode()
    login("director")
    assert reverse("visits:appointments") not in client.get(reverse("home")).content.decode()


# --- booking ----------------------------------------------------------------------------------


def test_the_front_desk_books_an_appointment(
    client, login, site, front_desk, clinician, service, today
):
    person = PersonFactory(site=site, name="Marisol")
    login("front_desk")
    search = client.post(reverse("visits:appointment_new"), {"find": "1", "q": "mari"})
    assert f"?person={person.pk}" in search.content.decode()
    assert not Appointment.objects.exists()  # finding books nothing
    form = client.get(reverse("visits:appointment_new"), {"person": person.pk})
    assert form.status_code == 200
    assert "Marisol" in form.content.decode()
    day = today + timedelta(days=3)
    response = client.post(
        reverse("visits:appointment_new"),
        booking_data(
            person, day, with_staff=clinician.pk, service=service.pk, note="Bring ID if handy"
        ),
    )
    assert response.status_code == 302
    assert response.url == f"{reverse('visits:appointments')}?day={day.isoformat()}"
    appointment = Appointment.objects.get()
    assert appointment.at == datetime.combine(day, time(10, 30), tzinfo=site.tz)
    assert (appointment.person, appointment.with_staff, appointment.service) == (
        person,
        clinician,
        service,
    )
    assert appointment.created_by == front_desk
    page = client.get(response.url).content.decode()
    assert "Marisol" in page and "10:30" in page and "Bring ID if handy" in page


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"time": ""}, "Please give the time."),
        ({"day": ""}, "Please give the date."),
        ({"time": "25:99"}, "Please give a time such as 14:30."),
        ({"day": "2026-13-45"}, "Please give a date such as 2026-11-03."),
        ({"day": "99999-01-01"}, "Please give a date such as 2026-11-03."),
        ({"day": "past"}, "Please pick a time from now on."),
        ({"day": "far"}, "Please pick a date within the next three years."),
        ({"person": ""}, "Please choose who the appointment is for."),
        ({"person": "abc"}, "That person is not known at this site."),
        ({"person": "99999999999999999999999"}, "That person is not known at this site."),
        ({"person": "other_site"}, "That person is not known at this site."),
        ({"with_staff": "other_site"}, "Please pick a team member at this site."),
        ({"service": "other_site"}, "Please pick a service this site offers."),
        ({"note": "x" * 201}, "at most 200 characters"),
    ],
)
def test_bad_booking_input_gets_a_clear_message_and_saves_nothing(
    client, login, site, other_site, other_site_clinician, today, overrides, message
):
    person = PersonFactory(site=site)
    login("front_desk")
    other_site_values = {
        "person": lambda: PersonFactory(site=other_site).pk,
        "with_staff": lambda: other_site_clinician.pk,
        "service": lambda: ServiceFactory(site=other_site).pk,
    }
    days = {"past": -1, "far": 2000}
    data = booking_data(person, today + timedelta(days=1))
    for key, value in overrides.items():
        if value == "other_site":
            value = other_site_values[key]()
        elif value in days:
            value = (today + timedelta(days=days[value])).isoformat()
        data[key] = value
    response = client.post(reverse("visits:appointment_new"), data)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Appointment.objects.exists()


@pytest.mark.parametrize("value", ["abc", "0", "99999999999999999999999", "²", "-1", "other"])
def test_booking_for_an_unknown_or_other_sites_person_is_404(client, login, other_site, value):
    login("front_desk")
    if value == "other":
        value = PersonFactory(site=other_site).pk
    assert client.get(reverse("visits:appointment_new"), {"person": value}).status_code == 404


# --- the day view -----------------------------------------------------------------------------


def test_the_day_view_shows_today_and_upcoming_but_never_past_days(
    client, login, site, front_desk, today, tomorrow_at
):
    book(site, PersonFactory(site=site, name="Yesterday Person"), tomorrow_at(10, days=-1))
    book(site, PersonFactory(site=site, name="Today Person"), tomorrow_at(23, 59, days=0))
    book(site, PersonFactory(site=site, name="Tomorrow Person"), tomorrow_at(9))
    book(site, PersonFactory(site=site, name="Next Week Person"), tomorrow_at(9, days=7))
    login("front_desk")
    page = client.get(reverse("visits:appointments")).content.decode()
    assert "Today Person" in page
    assert "Tomorrow Person" in page and "Next Week Person" in page  # under "Coming up"
    assert "Yesterday Person" not in page

    response = client.get(
        reverse("visits:appointments"), {"day": (today - timedelta(days=1)).isoformat()}
    )
    assert response.status_code == 200
    assert "Yesterday Person" not in response.content.decode()
    assert "Today Person" in response.content.decode()

    next_week = client.get(
        reverse("visits:appointments"), {"day": (today + timedelta(days=7)).isoformat()}
    ).content.decode()
    assert "Next Week Person" in next_week and "Today Person" not in next_week


@pytest.mark.parametrize("value", ["garbage", "2026-02-30", "99999-01-01", "9999-12-31", "²"])
def test_an_unreadable_or_absurd_day_shows_today_with_a_message(client, login, value):
    login("front_desk")
    response = client.get(reverse("visits:appointments"), {"day": value})
    assert response.status_code == 200
    assert messages_of(response)


def test_todays_rows_offer_check_in_and_show_who_has_checked_in(
    client, login, site, front_desk, tomorrow_at
):
    waiting_for = PersonFactory(site=site, name="Not Yet")
    here = PersonFactory(site=site, name="Already Here")
    book(site, waiting_for, tomorrow_at(23, 58, days=0), front_desk)
    book(site, here, tomorrow_at(23, 59, days=0), front_desk)
    book(site, PersonFactory(site=site, name="Tomorrow"), tomorrow_at(9), front_desk)
    arrival = check_in(site=site, by=front_desk, person=here)
    login("front_desk")
    page = client.get(reverse("visits:appointments")).content.decode()
    # By record id: a name never goes in a URL.
    assert f"{reverse('queues:check_in')}?person={waiting_for.pk}" in page
    assert arrival.ticket in page
    assert page.count(f"{reverse('queues:check_in')}?") == 1  # not for tomorrow's
    assert "?name=" not in page


# --- reschedule and cancel --------------------------------------------------------------------


def test_rescheduling_from_the_edit_page(client, login, site, front_desk, today, tomorrow_at):
    appointment = book(site, PersonFactory(site=site), tomorrow_at(10), front_desk)
    login("front_desk")
    url = reverse("visits:appointment_edit", args=[appointment.pk])
    form = client.get(url)
    assert form.status_code == 200
    assert 'value="10:00"' in form.content.decode()
    day = today + timedelta(days=2)
    response = client.post(url, {"day": day.isoformat(), "time": "15:15", "note": "Later suits"})
    assert response.status_code == 302
    appointment.refresh_from_db()
    assert appointment.at == datetime.combine(day, time(15, 15), tzinfo=site.tz)
    assert appointment.note == "Later suits"


def test_an_appointment_the_person_came_for_cannot_be_changed(
    client, login, site, front_desk, tomorrow_at
):
    person = PersonFactory(site=site)
    appointment = book(site, person, tomorrow_at(23, 59, days=0), front_desk)
    check_in(site=site, by=front_desk, person=person)
    login("front_desk")
    day = (timezone.localdate(timezone.now(), site.tz) + timedelta(days=1)).isoformat()
    response = client.post(
        reverse("visits:appointment_edit", args=[appointment.pk]), {"day": day, "time": "09:00"}
    )
    assert response.status_code == 200
    assert "already come" in response.content.decode()
    assert Appointment.objects.get(pk=appointment.pk).at == appointment.at


def test_cancelling_deletes_the_appointment(client, login, site, front_desk, tomorrow_at):
    person = PersonFactory(site=site)
    before = Person.objects.filter(pk=person.pk).values().get()
    appointment = book(site, person, tomorrow_at(10), front_desk)
    login("front_desk")
    url = reverse("visits:appointment_cancel", args=[appointment.pk])
    assert client.get(url).status_code == 405
    response = client.post(url)
    assert response.status_code == 302
    assert not Appointment.objects.exists()
    assert Person.objects.filter(pk=person.pk).values().get() == before


def test_a_past_appointment_is_not_cancelled(client, login, site, front_desk, tomorrow_at):
    appointment = book(site, PersonFactory(site=site), tomorrow_at(10, days=-2), front_desk)
    login("front_desk")
    response = client.post(reverse("visits:appointment_cancel", args=[appointment.pk]))
    assert response.status_code == 302
    assert Appointment.objects.filter(pk=appointment.pk).exists()
    assert messages_of(response)


@pytest.mark.parametrize("name", ["visits:appointment_edit", "visits:appointment_cancel"])
@pytest.mark.parametrize("pk", ["other_site", 99999999999999999999])
def test_another_sites_or_an_unknown_appointment_is_404(
    client, login, other_site, other_site_clinician, tomorrow_at, name, pk
):
    if pk == "other_site":
        appointment = book(
            other_site, PersonFactory(site=other_site), tomorrow_at(10), other_site_clinician
        )
        pk = appointment.pk
    login("front_desk")
    if name == "visits:appointment_edit":
        assert client.get(reverse(name, args=[pk])).status_code == 404
    assert client.post(reverse(name, args=[pk])).status_code == 404
    assert Appointment.objects.count() == (1 if isinstance(pk, int) and pk < 2**63 else 0)


# --- reach-out page ---------------------------------------------------------------------------


def test_reach_out_page_is_neutral_and_dismiss_removes_the_entry(
    client, login, site, front_desk, clinician
):
    person = PersonFactory(site=site, name="Rae", what_helps="Text before noon")
    appointment = book(site, person, timezone.now() - timedelta(days=3), front_desk)
    login("clinician")
    page = client.get(reverse("visits:reach_out")).content.decode()
    shown = timezone.localtime(appointment.at, site.tz).strftime("%a %-d %b")
    assert f"Maybe reach out? Last appointment {shown}, not seen since." in page
    assert "Text before noon" in page
    for word in ("missed", "no-show", "no show", "late ", "failed"):
        assert word not in page.lower()
    response = client.post(reverse("visits:reach_out_dismiss", args=[person.pk]))
    assert response.status_code == 302
    assert (
        f'data-person="{person.pk}"' not in client.get(reverse("visits:reach_out")).content.decode()
    )
    appointment.refresh_from_db()
    assert appointment.outreach_dismissed_by == clinician
    assert client.get(reverse("visits:reach_out_dismiss", args=[person.pk])).status_code == 405


def test_checking_in_at_the_desk_links_todays_appointment_and_the_board_shows_it(
    client, login, site, front_desk, tomorrow_at
):
    person = PersonFactory(site=site, name="Marisol")
    appointment = book(site, person, tomorrow_at(23, 59, days=0), front_desk)
    book(site, person, tomorrow_at(9), front_desk)  # tomorrow's stays for tomorrow
    login("front_desk")
    response = client.post(
        reverse("queues:check_in"),
        {"nonce": "7c9e6679-7425-40de-944b-e07fc1f90ae7", "person": person.pk},
    )
    assert response.status_code == 302
    appointment.refresh_from_db()
    assert appointment.arrival is not None
    assert appointment.arrival.appointment_at == appointment.at
    assert Appointment.objects.filter(arrival__isnull=True).count() == 1
    board = client.get(reverse("queues:board")).content.decode()
    assert ">23:59<" in board
