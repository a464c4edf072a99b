"""Views: a role x site permission matrix, bad input, double taps, CSRF and the public display.

Personas (conftest): anonymous, front_desk, clinician, director, privacy_officer and
other_site_clinician (a clinician who works at another site).
"""

import uuid

import pytest
from django.test import Client
from django.urls import reverse

from clinic import roles
from clinic.models import Person
from clinic.sites import SESSION_SITE_KEY
from queues import services
from queues.models import Arrival, ArrivalEvent, StaffRoom, State
from queues.selectors import queue_version
from tests.factories import (
    PersonFactory,
    RoomFactory,
    ServiceFactory,
    SiteFactory,
    check_in,
    grant,
    make_staff,
)
from tests.helpers import PERSONAS, assert_login_redirect, messages_of


def state_of(arrival) -> str:
    arrival.refresh_from_db()
    return arrival.state


def action_url(arrival, action: str) -> str:
    return reverse("queues:arrival_action", args=[arrival.pk, action])


def post_action(client, arrival, action: str, *, revision=None, **kwargs):
    arrival.refresh_from_db()
    revision = arrival.revision if revision is None else revision
    return client.post(action_url(arrival, action), {"revision": revision}, **kwargs)


def check_in_data(**overrides) -> dict:
    return {"nonce": str(uuid.uuid4()), "name": "Marcus", **overrides}


# --- pages: role x site --------------------------------------------------------------------

# 200 for staff of the site; the other site's clinician sees their own (empty) site.
GET_PAGES = {
    "queues:check_in": {"front_desk": 200, "clinician": 200, "other_site_clinician": 200},
    "queues:board": {"front_desk": 200, "clinician": 200, "other_site_clinician": 200},
    "queues:board_live": {"front_desk": 200, "clinician": 200, "other_site_clinician": 200},
    "queues:close_day": {"front_desk": 200, "clinician": 200, "other_site_clinician": 200},
}


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("url_name", sorted(GET_PAGES))
def test_queue_pages_answer_each_role_and_never_show_another_sites_people(
    client, login, site, front_desk, persona, url_name
):
    check_in(site=site, by=front_desk, name="Marcus")
    login(persona)

    response = client.get(reverse(url_name))

    if persona == "anonymous":
        assert_login_redirect(response)
        return
    expected = GET_PAGES[url_name].get(persona, 403)
    assert response.status_code == expected
    if expected == 200 and url_name != "queues:check_in":
        shows_marcus = "Marcus" in response.content.decode()
        assert shows_marcus is (persona != "other_site_clinician")


# Check-in's two searches for people already known: as the name is typed (the script's), and
# "Find" (without the script, or Enter in a field). Both are POSTs: a name never goes in a URL.
SEARCHES = {
    "queues:person_matches": {"name": "marc"},
    "queues:check_in": {"find": "1", "name": "marc", "nonce": str(uuid.uuid4())},
}


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("url_name", sorted(SEARCHES))
def test_check_in_searches_answer_each_role_and_never_show_another_sites_people(
    client, login, site, front_desk, persona, url_name
):
    check_in(site=site, by=front_desk, name="Marcus")
    login(persona)

    response = client.post(reverse(url_name), SEARCHES[url_name])

    if persona == "anonymous":
        assert_login_redirect(response)
        return
    allowed = persona in ("front_desk", "clinician", "other_site_clinician")
    assert response.status_code == (200 if allowed else 403)
    if allowed:
        shows_marcus = "Marcus" in response.content.decode()
        assert shows_marcus is (persona != "other_site_clinician")
    assert Person.objects.count() == 1  # a search adds no one
    assert Arrival.objects.count() == 1


@pytest.mark.parametrize("persona", ["director", "privacy_officer"])
def test_director_and_privacy_officer_get_403_on_every_queue_page(client, login, persona):
    login(persona)
    for url_name in ("queues:check_in", "queues:board", "queues:board_live", "queues:close_day"):
        assert client.get(reverse(url_name)).status_code == 403, url_name
    for url_name in ("queues:check_in", "queues:set_room", "queues:call_next", "queues:close_day"):
        assert client.post(reverse(url_name)).status_code == 403, url_name


@pytest.mark.parametrize(
    ("persona", "expected"),
    [
        ("anonymous", "login"),
        ("front_desk", "queues:check_in"),
        ("clinician", "queues:board"),
        ("other_site_clinician", "queues:board"),
        ("director", "reports:dashboard"),
        ("privacy_officer", "visits:access_log"),
    ],
)
def test_home_sends_each_role_to_its_first_screen(client, login, persona, expected):
    login(persona)
    response = client.get(reverse("home"))
    if expected == "login":
        assert_login_redirect(response)
    else:
        assert response.status_code == 302
        assert response.url == reverse(expected)


def test_home_tells_staff_without_a_site_to_ask_a_director(client, db):
    client.force_login(make_staff(site=None, roles=[roles.CLINICIAN]))
    response = client.get(reverse("home"))
    assert response.status_code == 200
    assert "not linked to a site" in response.content.decode()
    assert client.get(reverse("queues:board")).status_code == 403


@pytest.mark.parametrize("persona", PERSONAS)
def test_healthz_needs_no_login_and_answers_get_only(client, login, persona):
    login(persona)
    response = client.get(reverse("healthz"))
    assert response.status_code == 200
    assert response.content == b"ok"
    assert "no-cache" in response["Cache-Control"]
    assert client.post(reverse("healthz")).status_code == 405


def test_login_page_opens_and_logout_is_post_only(client, clinician):
    assert client.get(reverse("login")).status_code == 200
    client.force_login(clinician)
    assert client.get(reverse("logout")).status_code == 405
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert client.get(reverse("queues:board")).status_code == 302


@pytest.mark.parametrize("persona", PERSONAS)
def test_admin_is_only_for_directors(client, login, persona):
    """Directors (of any site) reach the admin whatever `is_staff` says; other signed-in staff
    get 403; anonymous visitors go to the product's sign-in page."""
    login(persona)
    response = client.get(reverse("admin:index"))
    if persona == "anonymous":
        assert_login_redirect(response)
    elif persona == "director":
        assert response.status_code == 200
    else:
        assert response.status_code == 403


# --- site switching ----------------------------------------------------------------------------


def test_switch_site_moves_a_member_of_two_sites(client, site, other_site, clinician):
    grant(clinician, other_site, roles.CLINICIAN)
    client.force_login(clinician)

    response = client.post(reverse("switch_site"), {"site": other_site.slug})

    assert response.status_code == 302
    assert client.session[SESSION_SITE_KEY] == other_site.pk


def test_without_a_choice_a_member_of_two_sites_acts_for_the_first_one_they_joined(
    client, site, other_site, clinician
):
    # Hillside comes first by name; the clinician works at Riverside and was added later to
    # Hillside: pages are for Riverside until they switch.
    grant(clinician, other_site, roles.CLINICIAN)
    client.force_login(clinician)

    assert client.get(reverse("queues:board")).context["current_site"] == site

    client.post(reverse("switch_site"), {"site": other_site.slug})
    assert client.get(reverse("queues:board")).context["current_site"] == other_site


def test_switch_site_ignores_a_site_the_user_does_not_work_at(
    client, site, other_site, other_site_clinician, front_desk
):
    check_in(site=site, by=front_desk, name="Marcus")
    client.force_login(other_site_clinician)

    response = client.post(reverse("switch_site"), {"site": site.slug})

    assert response.status_code == 302
    assert SESSION_SITE_KEY not in client.session
    assert "Marcus" not in client.get(reverse("queues:board")).content.decode()


def test_switch_site_needs_login_and_post(client, site):
    assert_login_redirect(client.post(reverse("switch_site"), {"site": site.slug}))
    assert client.get(reverse("switch_site")).status_code == 405


# --- POST-only and GET-only endpoints -------------------------------------------------------


@pytest.mark.parametrize("persona", PERSONAS)
def test_get_on_post_only_actions_is_405(client, login, site, front_desk, persona):
    arrival = check_in(site=site, by=front_desk, name="Marcus")
    login(persona)
    for url in (
        reverse("queues:set_room"),
        reverse("queues:call_next"),
        action_url(arrival, "call"),
        action_url(arrival, "left"),
        reverse("switch_site"),
    ):
        assert client.get(url).status_code == 405, url
    assert state_of(arrival) == State.WAITING


def test_post_on_read_only_endpoints_is_405(client, site, clinician):
    client.force_login(clinician)
    for url in (
        reverse("queues:board_live"),
        reverse("queues:display", args=[site.display_token]),
        reverse("queues:display_live", args=[site.display_token]),
    ):
        assert client.post(url).status_code == 405, url


# --- check-in ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("persona", "status", "created_here"),
    [
        ("front_desk", 302, True),
        ("clinician", 302, True),
        ("director", 403, False),
        ("privacy_officer", 403, False),
        # Checks the person in at their own site, never at ours.
        ("other_site_clinician", 302, False),
    ],
)
def test_check_in_by_role(client, login, site, other_site, persona, status, created_here):
    login(persona)

    response = client.post(reverse("queues:check_in"), check_in_data())

    assert response.status_code == status
    assert Arrival.objects.filter(site=site).exists() is created_here
    if persona == "other_site_clinician":
        assert Arrival.objects.get().site == other_site


def test_check_in_needs_login(client, site):
    assert_login_redirect(client.post(reverse("queues:check_in"), check_in_data()))
    assert not Arrival.objects.exists()


def test_check_in_shows_the_ticket_code_after_checking_in(client, site, service, front_desk):
    client.force_login(front_desk)

    response = client.post(
        reverse("queues:check_in"), check_in_data(service=service.pk), follow=True
    )

    arrival = Arrival.objects.get()
    assert response.status_code == 200
    assert arrival.ticket == "K-1"
    assert arrival.service == service
    assert arrival.person.name == "Marcus"
    page = response.content.decode()
    assert "K-1" in page
    assert "Marcus is checked in" in page


def test_check_in_welcomes_a_returning_person_back(client, site, front_desk, clinician):
    marcus = PersonFactory(site=site, name="Marcus", what_helps="Has a dog, Biscuit")
    earlier = check_in(site=site, by=front_desk, person=marcus)
    services.arrival_mark_left(arrival=earlier, by=front_desk, revision=None)
    client.force_login(front_desk)

    response = client.post(
        reverse("queues:check_in"), check_in_data(name="", person=marcus.pk), follow=True
    )

    page = response.content.decode()
    assert "Welcome back, Marcus" in page
    assert "Has a dog, Biscuit" in page
    assert Person.objects.count() == 1


def test_a_known_name_is_asked_about_even_among_many_names_containing_it(
    client, site, other_site, front_desk
):
    """The desk types "Ana": the question "someone new?" lists the Ana known here, however
    many Anabels and Dianas there are, and no longer name, no one of another site."""
    for name in ["Anabel", "Diana", "Ana Lopez", "Juliana", "Anastasia", "Mariana", "Dana",
                 "Banana Joe", "Hanako"]:  # fmt: skip
        check_in(site=site, by=front_desk, person=PersonFactory(site=site, name=name))
    ana = PersonFactory(site=site, name="ana")  # never here yet: last among the matches
    PersonFactory(site=other_site, name="Ana")
    client.force_login(front_desk)

    asked = client.post(reverse("queues:check_in"), check_in_data(name="Ana "))

    assert asked.status_code == 200
    assert [p.pk for p in asked.context["matches"]] == [ana.pk]
    assert "Someone called Ana is already known here" in asked.content.decode()
    assert not Arrival.objects.filter(person=ana).exists()

    added = client.post(reverse("queues:check_in"), check_in_data(name="Ana", confirm_new="1"))

    assert added.status_code == 302
    assert Person.objects.filter(site=site, name="Ana").count() == 1


def test_double_tap_on_check_in_creates_one_arrival(client, site, front_desk):
    client.force_login(front_desk)
    data = check_in_data()

    first = client.post(reverse("queues:check_in"), data)
    second = client.post(reverse("queues:check_in"), data)

    assert first.status_code == second.status_code == 302
    assert first.url == second.url
    assert Arrival.objects.count() == 1
    assert Person.objects.count() == 1


def test_check_in_search_shows_a_known_person_with_last_here(client, site, front_desk):
    marcus = PersonFactory(site=site, name="Marcus", pronouns="he/him")
    services.arrival_mark_left(
        arrival=check_in(site=site, by=front_desk, person=marcus), by=front_desk, revision=None
    )
    PersonFactory(site=SiteFactory(), name="Marcus Elsewhere")
    client.force_login(front_desk)

    for url_name, data in SEARCHES.items():
        response = client.post(reverse(url_name), data)
        page = response.content.decode()
        assert response.status_code == 200
        assert f'value="{marcus.pk}"' in page
        assert "last here" in page
        assert "Elsewhere" not in page


def test_a_very_long_search_is_harmless(client, site, front_desk):
    PersonFactory(site=site, name="Marcus")
    client.force_login(front_desk)

    response = client.post(reverse("queues:person_matches"), {"name": "Marcus " * 2_000})

    assert response.status_code == 200
    assert "at most 200 characters" in response.content.decode()
    assert Person.objects.count() == 1


def test_check_in_search_says_when_nobody_is_known(client, site, front_desk):
    client.force_login(front_desk)
    response = client.post(reverse("queues:person_matches"), {"name": "Zed"})
    assert "No one known by that name yet" in response.content.decode()


BAD_CHECK_INS = [
    pytest.param({"name": ""}, "Please enter the name the person goes by.", id="empty-name"),
    pytest.param({"name": "   "}, "Please enter the name the person goes by.", id="blank-name"),
    pytest.param({"name": "M" * 10_000}, "at most 200 characters", id="10000-char-name"),
    pytest.param({"service": "999999"}, "Please pick a service this site offers.", id="no-service"),
    pytest.param(
        {"service": "wound"}, "Please pick a service this site offers.", id="text-service"
    ),
    pytest.param(
        {"urgent": "on", "urgent_reason": ""},
        "Please give a short reason it is urgent.",
        id="urgent-without-reason",
    ),
    pytest.param(
        {"urgent": "on", "urgent_reason": "x" * 201}, "at most 200 characters", id="long-reason"
    ),
    pytest.param({"person": "abc"}, "That person is not known at this site.", id="person-text"),
    pytest.param({"person_pick": "1e9x"}, "That person is not known at this site.", id="pick-text"),
    pytest.param({"person": "99999999"}, "That person is not known at this site.", id="no-person"),
    pytest.param({"person": "9" * 30}, "That person is not known at this site.", id="huge-person"),
    pytest.param({"person_pick": "-5"}, "That person is not known at this site.", id="neg-pick"),
    pytest.param({"nonce": "not-a-uuid"}, "This page was out of date", id="bad-nonce"),
    pytest.param({"nonce": ""}, "This page was out of date", id="missing-nonce"),
]


@pytest.mark.parametrize(("overrides", "message"), BAD_CHECK_INS)
def test_bad_check_in_input_gets_a_clear_message_and_changes_nothing(
    client, site, front_desk, overrides, message
):
    client.force_login(front_desk)
    version = queue_version(site.pk)

    response = client.post(reverse("queues:check_in"), check_in_data(**overrides))

    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Arrival.objects.exists()
    assert not Person.objects.exists()
    assert queue_version(site.pk) == version


def test_a_check_in_shown_again_after_a_broken_nonce_can_be_sent_again(client, site, front_desk):
    client.force_login(front_desk)

    refused = client.post(reverse("queues:check_in"), check_in_data(nonce="not-a-uuid"))
    fresh = uuid.UUID(str(refused.context["form"]["nonce"].value()))
    again = client.post(reverse("queues:check_in"), check_in_data(nonce=str(fresh)))

    assert f'value="{fresh}"' in refused.content.decode()
    assert again.status_code == 302
    assert Arrival.objects.get().nonce == fresh


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("appointment_at", "25:99", "Enter a valid time."),
        ("date_of_birth", "yesterday", "Enter a valid date."),
        ("phone", "5" * 41, "at most 40 characters"),
    ],
)
def test_a_bad_optional_detail_opens_the_details_to_show_why(
    client, site, front_desk, field, value, message
):
    client.force_login(front_desk)

    response = client.post(reverse("queues:check_in"), check_in_data(**{field: value}))

    page = response.content.decode()
    assert message in page
    assert '<details class="field optional" open>' in page
    assert not Arrival.objects.exists()


def test_check_in_refuses_a_service_of_another_site(client, site, other_site, front_desk):
    theirs = ServiceFactory(site=other_site, name="Their service")
    client.force_login(front_desk)

    response = client.post(reverse("queues:check_in"), check_in_data(service=theirs.pk))

    assert "Please pick a service this site offers." in response.content.decode()
    assert not Arrival.objects.exists()


def test_check_in_refuses_a_person_of_another_site(client, site, other_site, front_desk):
    theirs = PersonFactory(site=other_site, name="Olive")
    client.force_login(front_desk)

    response = client.post(reverse("queues:check_in"), check_in_data(name="", person=theirs.pk))

    assert response.status_code == 200
    assert "That person is not known at this site." in response.content.decode()
    assert not Arrival.objects.exists()


def test_checking_in_someone_already_here_says_so(client, site, front_desk):
    marcus = PersonFactory(site=site, name="Marcus")
    first = check_in(site=site, by=front_desk, person=marcus)
    client.force_login(front_desk)

    response = client.post(reverse("queues:check_in"), check_in_data(name="", person=marcus.pk))

    assert response.status_code == 200
    assert f"Marcus is already checked in ({first.ticket})." in response.content.decode()
    assert Arrival.objects.count() == 1


def test_a_post_without_csrf_token_is_refused_and_changes_nothing(site, front_desk, clinician):
    arrival = check_in(site=site, by=front_desk, name="Marcus")
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(clinician)

    assert (
        csrf_client.post(reverse("queues:check_in"), check_in_data(name="Jess")).status_code == 403
    )
    assert csrf_client.post(reverse("queues:call_next")).status_code == 403
    assert csrf_client.post(reverse("queues:close_day")).status_code == 403
    assert (
        csrf_client.post(action_url(arrival, "left"), {"revision": arrival.revision}).status_code
        == 403
    )

    assert list(Arrival.objects.values_list("person__name", "state")) == [("Marcus", "waiting")]


def test_a_post_with_the_csrf_token_from_the_page_works(site, front_desk):
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(front_desk)
    page = csrf_client.get(reverse("queues:check_in"))
    token = page.context["csrf_token"]

    response = csrf_client.post(
        reverse("queues:check_in"), {**check_in_data(), "csrfmiddlewaretoken": token}
    )

    assert response.status_code == 302
    assert Arrival.objects.count() == 1


# --- board actions -----------------------------------------------------------------------------


def arrival_in(state: str, *, site, front_desk, clinician, name="Marcus"):
    """An arrival brought to `state` through the services, as the screens would."""
    arrival = check_in(site=site, by=front_desk, name=name)
    if state == State.CALLED:
        services.arrival_call(arrival=arrival, by=clinician, revision=None)
    elif state == State.WITH_STAFF:
        services.arrival_start(arrival=arrival, by=clinician, revision=None)
    elif state == State.STEPPED_OUT:
        services.arrival_step_out(arrival=arrival, by=front_desk, revision=None)
    arrival.refresh_from_db()
    return arrival


# action: (state before, state after)
ACTIONS = {
    "call": (State.WAITING, State.CALLED),
    "start": (State.CALLED, State.WITH_STAFF),
    "step-out": (State.WAITING, State.STEPPED_OUT),
    "back": (State.STEPPED_OUT, State.WAITING),
    "left": (State.WAITING, State.LEFT),
    "done": (State.WITH_STAFF, State.DONE),
    "undo": (State.STEPPED_OUT, State.WAITING),  # undoing "stepped out" is not clinical
}
CLINICAL_ACTIONS = {"call", "start", "done"}


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_arrival_actions_by_role(client, login, site, front_desk, clinician, persona, action):
    before, after = ACTIONS[action]
    arrival = arrival_in(before, site=site, front_desk=front_desk, clinician=clinician)
    events = ArrivalEvent.objects.count()
    login(persona)

    response = post_action(client, arrival, action)

    if persona == "anonymous":
        assert_login_redirect(response)
        assert state_of(arrival) == before
    elif persona in ("director", "privacy_officer"):
        assert response.status_code == 403
        assert state_of(arrival) == before
    elif persona == "other_site_clinician":
        assert response.status_code == 404
        assert state_of(arrival) == before
    elif persona == "front_desk" and action in CLINICAL_ACTIONS:
        assert response.status_code == 302
        assert messages_of(response) == ["Your role cannot do that."]
        assert state_of(arrival) == before
        assert ArrivalEvent.objects.count() == events
    else:
        assert response.status_code == 302
        assert state_of(arrival) == after
        # "Start" opens the visit and takes the clinician to it.
        expected = (
            reverse("visits:visit", args=[arrival.visit.pk])
            if action == "start"
            else reverse("queues:board")
        )
        assert response.url == expected
        assert ArrivalEvent.objects.count() == events + 1


def test_front_desk_cannot_undo_a_clinical_step(client, site, front_desk, clinician):
    arrival = arrival_in(State.CALLED, site=site, front_desk=front_desk, clinician=clinician)
    client.force_login(front_desk)

    response = post_action(client, arrival, "undo")

    assert messages_of(response) == ["Your role cannot do that."]
    assert state_of(arrival) == State.CALLED
    assert arrival.staff == clinician


@pytest.mark.parametrize(
    ("before", "undone_to"),
    [(State.CALLED, State.WAITING), (State.WITH_STAFF, State.WAITING)],
)
def test_clinician_can_undo_a_clinical_step(client, site, front_desk, clinician, before, undone_to):
    arrival = arrival_in(before, site=site, front_desk=front_desk, clinician=clinician)
    client.force_login(clinician)

    response = post_action(client, arrival, "undo")

    assert messages_of(response) == [f"Undone for {arrival.ticket}."]
    assert state_of(arrival) == undone_to


def test_front_desk_cannot_undo_done(client, site, front_desk, clinician):
    arrival = arrival_in(State.WITH_STAFF, site=site, front_desk=front_desk, clinician=clinician)
    services.arrival_finish(arrival=arrival, by=clinician, revision=None)
    client.force_login(front_desk)

    response = post_action(client, arrival, "undo")

    assert messages_of(response) == ["Your role cannot do that."]
    assert state_of(arrival) == State.DONE


def test_call_sends_the_person_to_the_clinicians_room(client, site, room, front_desk, clinician):
    arrival = check_in(site=site, by=front_desk, name="Marcus")
    client.force_login(clinician)
    client.post(reverse("queues:set_room"), {"room": room.pk})

    response = post_action(client, arrival, "call")

    assert messages_of(response)[-1] == "Called K-1 (Marcus) to Room 2."
    arrival.refresh_from_db()
    assert (arrival.state, arrival.staff, arrival.room) == (State.CALLED, clinician, room)


def test_a_stale_revision_says_who_already_called_and_changes_nothing(
    client, site, front_desk, clinician, second_clinician
):
    arrival = check_in(site=site, by=front_desk, name="Marcus")
    stale = arrival.revision
    services.arrival_call(arrival=arrival, by=second_clinician, revision=stale)
    client.force_login(clinician)

    response = post_action(client, arrival, "call", revision=stale)

    assert response.status_code == 302
    assert messages_of(response) == ["Already called by Sam."]
    arrival.refresh_from_db()
    assert arrival.staff == second_clinician


@pytest.mark.parametrize("revision", ["", "abc", "-1", "1.5", "²", "\u0661"])
def test_a_non_numeric_revision_asks_to_look_again_and_changes_nothing(
    client, site, front_desk, clinician, revision
):
    arrival = check_in(site=site, by=front_desk, name="Marcus")
    client.force_login(clinician)

    response = client.post(action_url(arrival, "call"), {"revision": revision})

    assert response.status_code == 302
    assert messages_of(response) == ["This screen was out of date; here is the latest."]
    assert state_of(arrival) == State.WAITING


def test_an_out_of_range_revision_is_treated_as_stale(client, site, front_desk, clinician):
    arrival = check_in(site=site, by=front_desk, name="Marcus")
    client.force_login(clinician)

    response = client.post(action_url(arrival, "call"), {"revision": "1" * 40})

    assert response.status_code == 302
    assert messages_of(response) == ["This person's place in line changed on another screen."]
    assert state_of(arrival) == State.WAITING


def test_a_missing_revision_changes_nothing(client, site, front_desk, clinician):
    arrival = check_in(site=site, by=front_desk, name="Marcus")
    client.force_login(clinician)

    response = client.post(action_url(arrival, "call"))

    assert response.status_code == 302
    assert state_of(arrival) == State.WAITING


@pytest.mark.parametrize("slug", ["explode", "delete", "CALL", "call-next"])
def test_an_unknown_action_is_404_and_changes_nothing(client, site, front_desk, clinician, slug):
    arrival = check_in(site=site, by=front_desk, name="Marcus")
    client.force_login(clinician)

    assert post_action(client, arrival, slug).status_code == 404
    assert state_of(arrival) == State.WAITING


@pytest.mark.parametrize("pk", [10**12, 10**30])
def test_an_unknown_arrival_is_404(client, site, clinician, pk):
    client.force_login(clinician)
    assert client.post(action_url_for(pk, "call"), {"revision": 1}).status_code == 404
    assert client.get(reverse("queues:hand_off", args=[pk])).status_code == 404


def action_url_for(pk: int, action: str) -> str:
    return reverse("queues:arrival_action", args=[pk, action])


@pytest.mark.parametrize("arrival_id", ["abc", "²", "-1", "9" * 30, "0"])
def test_check_in_page_ignores_a_malformed_arrival_in_the_address(
    client, site, front_desk, arrival_id
):
    client.force_login(front_desk)
    response = client.get(reverse("queues:check_in"), {"arrival": arrival_id})
    assert response.status_code == 200
    assert 'data-testid="ticket-code"' not in response.content.decode()


def test_another_sites_arrival_is_404_even_for_its_own_role(
    client, site, other_site, front_desk, other_site_clinician
):
    arrival = check_in(site=site, by=front_desk, name="Marcus")
    client.force_login(other_site_clinician)

    assert post_action(client, arrival, "call").status_code == 404
    assert client.get(reverse("queues:hand_off", args=[arrival.pk])).status_code == 404
    assert state_of(arrival) == State.WAITING


def test_an_action_that_no_longer_fits_says_what_happened(client, site, front_desk, clinician):
    arrival = arrival_in(State.WAITING, site=site, front_desk=front_desk, clinician=clinician)
    services.arrival_mark_left(arrival=arrival, by=front_desk, revision=None)
    client.force_login(clinician)

    response = post_action(client, arrival, "start")

    assert messages_of(response) == ["Already marked as left before being seen."]
    assert state_of(arrival) == State.LEFT


def test_action_returns_to_a_safe_next_page_only(client, site, front_desk, clinician):
    first = check_in(site=site, by=front_desk, name="Marcus")
    second = check_in(site=site, by=front_desk, name="Jess")
    client.force_login(front_desk)

    here = client.post(
        action_url(first, "step-out"),
        {"revision": first.revision, "next": reverse("queues:check_in")},
    )
    away = client.post(
        action_url(second, "step-out"),
        {"revision": second.revision, "next": "https://evil.example/"},
    )

    assert here.url == reverse("queues:check_in")
    assert away.url == reverse("queues:board")


# --- call next ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("persona", "status", "called"),
    [
        ("front_desk", 403, False),
        ("clinician", 302, True),
        ("director", 403, False),
        ("privacy_officer", 403, False),
        ("other_site_clinician", 302, False),
    ],
)
def test_call_next_by_role(client, login, site, front_desk, persona, status, called):
    arrival = check_in(site=site, by=front_desk, name="Marcus")
    login(persona)

    response = client.post(reverse("queues:call_next"))

    assert response.status_code == status
    assert (state_of(arrival) == State.CALLED) is called
    if persona == "other_site_clinician":
        assert messages_of(response) == ["Nobody is waiting."]


def test_call_next_needs_login(client, site, front_desk):
    arrival = check_in(site=site, by=front_desk, name="Marcus")
    assert_login_redirect(client.post(reverse("queues:call_next")))
    assert state_of(arrival) == State.WAITING


def test_call_next_calls_urgent_first_then_by_arrival(client, site, front_desk, clinician):
    check_in(site=site, by=front_desk, name="Marcus")
    check_in(site=site, by=front_desk, name="Jess", urgent=True, urgent_reason="Wound bleeding")
    client.force_login(clinician)

    first = client.post(reverse("queues:call_next"))
    second = client.post(reverse("queues:call_next"))

    assert messages_of(first) == ["Called K-2 (Jess) to the front desk."]
    assert messages_of(second)[-1] == "Called K-1 (Marcus) to the front desk."


def test_call_next_with_nobody_waiting_says_so(client, site, clinician):
    client.force_login(clinician)
    version = queue_version(site.pk)

    response = client.post(reverse("queues:call_next"))

    assert response.status_code == 302
    assert messages_of(response) == ["Nobody is waiting."]
    assert queue_version(site.pk) == version


def test_call_next_for_one_service_with_nobody_waiting_names_it(
    client, site, service, front_desk, clinician
):
    arrival = check_in(site=site, by=front_desk, name="Marcus")
    client.force_login(clinician)

    response = client.post(reverse("queues:call_next"), {"service": service.pk})

    assert messages_of(response) == ["Nobody is waiting for Wound care."]
    assert state_of(arrival) == State.WAITING


@pytest.mark.parametrize("service_id", ["999999", "abc", "other-site"])
def test_call_next_for_an_unknown_service_changes_nothing(
    client, site, other_site, front_desk, clinician, service_id
):
    if service_id == "other-site":
        service_id = ServiceFactory(site=other_site).pk
    arrival = check_in(site=site, by=front_desk, name="Marcus")
    client.force_login(clinician)

    response = client.post(reverse("queues:call_next"), {"service": service_id})

    assert response.status_code == 302
    assert messages_of(response) == ["Please pick a service this site offers."]
    assert state_of(arrival) == State.WAITING


# --- rooms -------------------------------------------------------------------------------------


def test_set_room_remembers_the_room_and_refuses_another_sites_room(
    client, site, other_site, room, clinician
):
    theirs = RoomFactory(site=other_site, name="Their room")
    client.force_login(clinician)

    good = client.post(reverse("queues:set_room"), {"room": room.pk})
    bad = client.post(reverse("queues:set_room"), {"room": theirs.pk})

    assert messages_of(good) == ["People you call will be sent to Room 2."]
    assert messages_of(bad)[-1] == "Please pick a room at this site."
    assert StaffRoom.objects.get(user=clinician, site=site).room == room


@pytest.mark.parametrize(
    ("persona", "status"),
    [("anonymous", 302), ("front_desk", 403), ("director", 403), ("privacy_officer", 403)],
)
def test_set_room_is_for_people_who_call(client, login, room, persona, status):
    login(persona)
    response = client.post(reverse("queues:set_room"), {"room": room.pk})
    assert response.status_code == status
    assert not StaffRoom.objects.exists()


# --- hand off ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("persona", "status"),
    [
        ("front_desk", 403),
        ("clinician", 200),
        ("director", 403),
        ("privacy_officer", 403),
        ("other_site_clinician", 404),
    ],
)
def test_hand_off_page_by_role(client, login, site, front_desk, clinician, persona, status):
    arrival = arrival_in(State.WITH_STAFF, site=site, front_desk=front_desk, clinician=clinician)
    login(persona)
    assert client.get(reverse("queues:hand_off", args=[arrival.pk])).status_code == status


def test_hand_off_needs_login(client, site, front_desk, clinician):
    arrival = arrival_in(State.WITH_STAFF, site=site, front_desk=front_desk, clinician=clinician)
    assert_login_redirect(client.get(reverse("queues:hand_off", args=[arrival.pk])))


def test_hand_off_moves_the_person_to_another_team_member(
    client, site, front_desk, clinician, second_clinician
):
    arrival = arrival_in(State.WITH_STAFF, site=site, front_desk=front_desk, clinician=clinician)
    client.force_login(clinician)

    page = client.get(reverse("queues:hand_off", args=[arrival.pk])).content.decode()
    response = client.post(
        reverse("queues:hand_off", args=[arrival.pk]),
        {"revision": arrival.revision, "to_user": second_clinician.pk},
    )

    assert "Sam" in page
    assert response.status_code == 302
    assert messages_of(response) == ["K-1 is now with Sam."]
    arrival.refresh_from_db()
    assert arrival.staff == second_clinician


@pytest.mark.parametrize(
    ("to_user", "message"),
    [
        ("front_desk", "Please pick a team member at this site."),
        ("other_site_clinician", "Please pick a team member at this site."),
        ("abc", "Please pick a team member at this site."),
        ("", "This field is required."),
    ],
)
def test_hand_off_to_someone_who_cannot_take_over_is_refused(
    request, client, site, front_desk, clinician, second_clinician, to_user, message
):
    arrival = arrival_in(State.WITH_STAFF, site=site, front_desk=front_desk, clinician=clinician)
    if to_user in ("front_desk", "other_site_clinician"):
        to_user = request.getfixturevalue(to_user).pk
    client.force_login(clinician)

    response = client.post(
        reverse("queues:hand_off", args=[arrival.pk]),
        {"revision": arrival.revision, "to_user": to_user},
    )

    assert response.status_code == 200
    assert message in response.content.decode()
    arrival.refresh_from_db()
    assert arrival.staff == clinician


def test_hand_off_with_a_stale_or_malformed_revision_changes_nothing(
    client, site, front_desk, clinician, second_clinician
):
    arrival = arrival_in(State.WITH_STAFF, site=site, front_desk=front_desk, clinician=clinician)
    client.force_login(clinician)
    url = reverse("queues:hand_off", args=[arrival.pk])

    stale = client.post(url, {"revision": arrival.revision - 1, "to_user": second_clinician.pk})
    malformed = client.post(url, {"revision": "abc", "to_user": second_clinician.pk})

    assert stale.status_code == 302
    assert messages_of(stale) == ["Already with Alex."]
    assert malformed.status_code == 200
    page = malformed.content.decode()
    assert "This page was out of date" in page
    assert f'name="revision" value="{arrival.revision}"' in page
    arrival.refresh_from_db()
    assert arrival.staff == clinician


# --- close the day -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("persona", "status", "closed"),
    [
        ("front_desk", 302, True),
        ("clinician", 302, True),
        ("director", 403, False),
        ("privacy_officer", 403, False),
        ("other_site_clinician", 302, False),
    ],
)
def test_close_day_by_role(client, login, site, front_desk, persona, status, closed):
    arrival = check_in(site=site, by=front_desk, name="Marcus")
    login(persona)

    response = client.post(reverse("queues:close_day"))

    assert response.status_code == status
    assert (state_of(arrival) == State.LEFT) is closed


def test_close_day_needs_login(client, site, front_desk):
    arrival = check_in(site=site, by=front_desk, name="Marcus")
    assert_login_redirect(client.post(reverse("queues:close_day")))
    assert state_of(arrival) == State.WAITING


def test_close_day_lists_who_is_not_seen_and_leaves_people_with_staff_alone(
    client, site, front_desk, clinician
):
    waiting = arrival_in(State.WAITING, site=site, front_desk=front_desk, clinician=clinician)
    called = arrival_in(
        State.CALLED, site=site, front_desk=front_desk, clinician=clinician, name="Jess"
    )
    away = arrival_in(
        State.STEPPED_OUT, site=site, front_desk=front_desk, clinician=clinician, name="River"
    )
    seen = arrival_in(
        State.WITH_STAFF, site=site, front_desk=front_desk, clinician=clinician, name="Dee"
    )
    client.force_login(front_desk)

    page = client.get(reverse("queues:close_day")).content.decode()
    response = client.post(reverse("queues:close_day"))

    assert "Marcus" in page
    assert "Jess" in page
    assert "Dee" not in page
    assert messages_of(response) == [
        "Day closed. 3 not seen yet recorded as left before being seen."
    ]
    assert [state_of(a) for a in (waiting, called, away, seen)] == [
        State.LEFT,
        State.LEFT,
        State.LEFT,
        State.WITH_STAFF,
    ]


# --- board -------------------------------------------------------------------------------------


def test_board_shows_buttons_for_what_the_role_may_do(client, site, front_desk, clinician):
    check_in(site=site, by=front_desk, name="Marcus")

    client.force_login(front_desk)
    desk = client.get(reverse("queues:board")).content.decode()
    client.force_login(clinician)
    team = client.get(reverse("queues:board")).content.decode()

    assert "Call next" not in desk
    assert "Stepped out" in desk
    assert "Call next" in team
    assert reverse("queues:close_day") in desk


def test_board_live_returns_the_version_and_html(client, site, front_desk, clinician):
    check_in(site=site, by=front_desk, name="Marcus", urgent=True, urgent_reason="Chest pain")
    client.force_login(clinician)

    response = client.get(reverse("queues:board_live"))

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert "no-cache" in response["Cache-Control"]
    payload = response.json()
    assert payload["type"] == "snapshot"
    assert payload["version"] == queue_version(site.pk) > 0
    assert "Marcus" in payload["html"]
    assert "Chest pain" in payload["html"]


def test_board_live_version_moves_with_each_change(client, site, front_desk, clinician):
    client.force_login(clinician)
    before = client.get(reverse("queues:board_live")).json()["version"]
    check_in(site=site, by=front_desk, name="Marcus")
    after = client.get(reverse("queues:board_live")).json()["version"]
    assert after == before + 1


# --- waiting-room display ----------------------------------------------------------------------


@pytest.fixture
def busy_site(site, room, front_desk, clinician):
    """Two people waiting (one urgent) and one called to Room 2."""
    check_in(site=site, by=front_desk, name="Marcus Quill", urgent=True, urgent_reason="Chest pain")
    check_in(site=site, by=front_desk, name="Jess Arbour", what_helps="Likes coffee")
    called = check_in(site=site, by=front_desk, name="River Stone")
    services.arrival_call(arrival=called, by=clinician, revision=None, room=room)
    return site


PRIVATE = ["Marcus", "Quill", "Jess", "Arbour", "River", "Stone", "Chest pain", "coffee", "Alex"]


@pytest.mark.parametrize("url_name", ["queues:display", "queues:display_live"])
def test_display_needs_no_login_and_shows_codes_but_never_names_or_reasons(
    client, busy_site, url_name
):
    response = client.get(reverse(url_name, args=[busy_site.display_token]))

    assert response.status_code == 200
    assert "no-cache" in response["Cache-Control"]
    if url_name == "queues:display_live":
        payload = response.json()
        assert payload["type"] == "snapshot"
        assert payload["version"] == queue_version(busy_site.pk)
        page = payload["html"]
    else:
        page = response.content.decode()
    for code in ("K-1", "K-2", "K-3", "Room 2"):
        assert code in page
    for secret in PRIVATE:
        assert secret not in page


def test_display_lists_waiting_codes_in_ticket_order_so_urgency_is_not_revealed(
    client, site, front_desk
):
    check_in(site=site, by=front_desk, name="Marcus")
    check_in(site=site, by=front_desk, name="Jess", urgent=True, urgent_reason="Bleeding")

    page = client.get(reverse("queues:display", args=[site.display_token])).content.decode()

    assert page.index("K-1") < page.index("K-2")
    assert "urgent" not in page.lower()


@pytest.mark.parametrize("url_name", ["queues:display", "queues:display_live"])
def test_display_with_a_wrong_token_is_404(client, site, url_name):
    for token in ("wrong", site.display_token[:-1], site.display_token.upper() + "X"):
        assert client.get(reverse(url_name, args=[token])).status_code == 404


def test_display_of_an_inactive_site_is_404(client, site):
    site.is_active = False
    site.save()
    assert client.get(reverse("queues:display", args=[site.display_token])).status_code == 404


def test_a_rotated_display_link_stops_working(client, site):
    old = site.display_token
    services.site_rotate_display_token(site=site)
    assert client.get(reverse("queues:display", args=[old])).status_code == 404
    assert client.get(reverse("queues:display", args=[site.display_token])).status_code == 200


def test_one_sites_display_never_shows_another_sites_codes(client, site, other_site, front_desk):
    check_in(site=site, by=front_desk, name="Marcus")
    check_in(site=other_site, by=make_staff(site=other_site, roles=[roles.FRONT_DESK]), name="Oz")

    page = client.get(reverse("queues:display", args=[other_site.display_token])).content.decode()

    assert "H-1" in page
    assert "K-1" not in page
