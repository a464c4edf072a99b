"""The room a clinician calls people to: remembered per person and site in the database, asked
again at the day's first call, and never one taken out of use or of another site."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from clinic.dates import site_today
from queues.models import Arrival, StaffRoom, State
from queues.selectors import staff_room
from tests.factories import RoomFactory, check_in
from tests.helpers import messages_of

pytestmark = pytest.mark.django_db


def call_next(client, **data):
    return client.post(reverse("queues:call_next"), data)


def call(client, arrival, **data):
    arrival.refresh_from_db()
    return client.post(
        reverse("queues:arrival_action", args=[arrival.pk, "call"]),
        {"revision": arrival.revision, **data},
    )


def state_of(arrival) -> str:
    arrival.refresh_from_db()
    return arrival.state


def remembered(user, site, room, *, on):
    return StaffRoom.objects.create(user=user, site=site, room=room, confirmed_on=on)


def test_the_room_outlives_the_sign_in(site, room, front_desk, clinician):
    first = Client()
    first.force_login(clinician)
    first.post(reverse("queues:set_room"), {"room": room.pk})
    first.logout()
    arrival = check_in(site=site, by=front_desk, name="Marcus")

    again = Client()
    again.force_login(clinician)
    board = again.get(reverse("queues:board"))
    response = call_next(again)

    assert board.context["room_form"]["room"].value() == room.pk
    assert messages_of(response)[-1] == "Called K-1 (Marcus) to Room 2."
    arrival.refresh_from_db()
    assert arrival.room == room


def test_the_days_first_call_asks_for_the_room_with_yesterdays_preselected(
    client, site, room, front_desk, clinician
):
    RoomFactory(site=site, name="Room 3")
    remembered(clinician, site, room, on=site_today(site) - timedelta(days=1))
    arrival = check_in(site=site, by=front_desk, name="Marcus")
    client.force_login(clinician)

    asked = call_next(client)

    assert asked.status_code == 200
    assert asked.templates[0].name == "queues/confirm_room.html"
    assert asked.context["form"]["room"].value() == room.pk
    page = asked.content.decode()
    assert f'name="room" value="{room.pk}" id="id_room_1" checked' in page
    assert "Front desk" in page and "Room 3" in page
    assert state_of(arrival) == State.WAITING  # nobody called yet

    answered = client.post(reverse("queues:call_next"), {"room_confirm": "1", "room": room.pk})

    assert messages_of(answered)[-1] == "Called K-1 (Marcus) to Room 2."
    assert StaffRoom.objects.get(user=clinician, site=site).confirmed_on == site_today(site)
    check_in(site=site, by=front_desk, name="Jess")
    assert messages_of(call_next(client))[-1] == "Called K-2 (Jess) to Room 2."  # not asked again


def test_the_confirmation_carries_the_call_as_it_came(
    client, site, room, service, front_desk, clinician
):
    other = RoomFactory(site=site, name="Room 3")
    check_in(site=site, by=front_desk, name="Jess")  # first in line, but not for wound care
    wound = check_in(site=site, by=front_desk, name="Marcus", service=service)
    client.force_login(clinician)

    asked = call_next(client, service=service.pk)
    assert ("service", str(service.pk)) in asked.context["carried"]

    client.post(
        reverse("queues:call_next"),
        {"room_confirm": "1", "room": other.pk, "service": service.pk},
    )

    wound.refresh_from_db()
    assert (wound.state, wound.room) == (State.CALLED, other)
    assert StaffRoom.objects.get(user=clinician, site=site).room == other


def test_a_row_call_asks_too_and_returns_where_it_was(client, site, room, front_desk, clinician):
    arrival = check_in(site=site, by=front_desk, name="Marcus")
    client.force_login(clinician)

    asked = call(client, arrival, next="/queue/board/?focus=1")
    carried = dict(asked.context["carried"])
    assert carried == {"revision": str(arrival.revision), "next": "/queue/board/?focus=1"}
    assert state_of(arrival) == State.WAITING

    done = client.post(
        reverse("queues:arrival_action", args=[arrival.pk, "call"]),
        {**carried, "room_confirm": "1", "room": room.pk},
    )

    assert done.status_code == 302 and done.url == "/queue/board/?focus=1"
    arrival.refresh_from_db()
    assert (arrival.state, arrival.room) == (State.CALLED, room)


def test_the_front_desk_is_a_choice_too(client, site, room, front_desk, clinician):
    arrival = check_in(site=site, by=front_desk, name="Marcus")
    client.force_login(clinician)

    response = client.post(reverse("queues:call_next"), {"room_confirm": "1", "room": ""})

    assert messages_of(response)[-1] == "Called K-1 (Marcus) to the front desk."
    arrival.refresh_from_db()
    assert arrival.room is None
    assert StaffRoom.objects.get(user=clinician, site=site).confirmed_on == site_today(site)


@pytest.mark.parametrize("bad", ["other_site", "inactive", "nonsense"])
def test_a_bad_answer_asks_again_and_changes_nothing(
    client, site, other_site, room, front_desk, clinician, bad
):
    rooms = {
        "other_site": lambda: RoomFactory(site=other_site, name="Their room").pk,
        "inactive": lambda: RoomFactory(site=site, name="Closed", is_active=False).pk,
        "nonsense": lambda: "x' or 1=1",
    }
    arrival = check_in(site=site, by=front_desk, name="Marcus")
    client.force_login(clinician)

    response = client.post(reverse("queues:call_next"), {"room_confirm": "1", "room": rooms[bad]()})

    assert response.status_code == 400
    assert "Please pick a room at this site." in response.content.decode()
    assert state_of(arrival) == State.WAITING
    assert not StaffRoom.objects.exists()


def test_a_room_taken_out_of_use_is_never_used(client, site, room, front_desk, clinician):
    remembered(clinician, site, room, on=site_today(site))
    room.is_active = False
    room.save()
    arrival = check_in(site=site, by=front_desk, name="Marcus")
    RoomFactory(site=site, name="Room 3")
    client.force_login(clinician)

    assert staff_room(site=site, user=clinician).room is None
    board = client.get(reverse("queues:board"))
    asked = call_next(client)

    assert board.context["room_unset"] is True
    assert asked.templates[0].name == "queues/confirm_room.html"
    assert state_of(arrival) == State.WAITING


def test_another_sites_room_is_never_used(site, other_site, clinician):
    theirs = RoomFactory(site=other_site, name="Their room")
    remembered(clinician, site, theirs, on=site_today(site))

    assert staff_room(site=site, user=clinician).room is None


def test_the_room_is_per_site(site, other_site, room, clinician):
    remembered(clinician, other_site, RoomFactory(site=other_site), on=site_today(other_site))

    assert staff_room(site=site, user=clinician).room is None


def test_the_day_is_the_sites_own(site, room, clinician):
    site.timezone = "Pacific/Kiritimati"  # UTC+14: its day starts long before UTC's
    site.save()
    now = timezone.now()
    remembered(clinician, site, room, on=timezone.localdate(now, site.tz))

    assert staff_room(site=site, user=clinician, now=now).confirmed_today
    assert not staff_room(site=site, user=clinician, now=now + timedelta(days=1)).confirmed_today


def test_the_board_says_plainly_when_no_room_is_chosen(client, site, room, clinician):
    client.force_login(clinician)

    unset = client.get(reverse("queues:board")).content.decode()
    client.post(reverse("queues:set_room"), {"room": room.pk})
    chosen = client.get(reverse("queues:board")).content.decode()

    assert "No room chosen: the people you call will be asked to come to the front desk." in unset
    assert 'aria-describedby="room-unset"' in unset
    assert "No room chosen" not in chosen


def test_no_room_notice_or_question_where_the_site_has_no_rooms(
    client, site, front_desk, clinician
):
    arrival = check_in(site=site, by=front_desk, name="Marcus")
    client.force_login(clinician)

    board = client.get(reverse("queues:board"))
    response = call_next(client)

    assert board.context["room_unset"] is False
    assert messages_of(response)[-1] == "Called K-1 (Marcus) to the front desk."
    assert Arrival.objects.get(pk=arrival.pk).state == State.CALLED


def test_people_who_do_not_call_see_no_room_notice(client, site, room, front_desk):
    client.force_login(front_desk)

    page = client.get(reverse("queues:board"))

    assert "room_unset" not in page.context
    assert "No room chosen" not in page.content.decode()
