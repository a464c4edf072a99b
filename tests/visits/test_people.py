"""The person page and editing a person's details: who sees what, the access log, bad input.

Personas (conftest): anonymous, front_desk, clinician, director, privacy_officer and
other_site_clinician (a clinician who works at another site).
"""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from clinic import roles
from clinic.models import AccessLog, Discipline, Person
from queues.models import Arrival
from queues.selectors import queue_version
from tests.factories import PersonFactory, ServiceFactory, check_in, make_staff
from tests.helpers import assert_login_redirect
from visits.models import (
    Goal,
    GoalProgress,
    MedicationEvent,
    Substance,
    ToxResult,
    ToxScreen,
    Visit,
    VisitParticipant,
)
from visits.services.people import person_update

# Words that only ever appear in the person's clinical record, never on the front desk's view.
CLINICAL_WORDS = {
    "goal": "Get my own place by spring",
    "progress": "Visited two apartments this week",
    "priorities": "Sort out the sore on my leg first",
    "note": "Talked through the wound dressing plan",
    "own_account": "Used a bit of fentanyl on Saturday",
    "decision": "Will carry naloxone and test strips",
    "tox_note": "Wants to try a lower dose next month",
    "dose": "16 mg daily under the tongue",
    "service": "MOUD follow-up",
}


@pytest.fixture
def person(site):
    return PersonFactory(
        site=site,
        name="Marcus",
        pronouns="he/him",
        phone="555-0142",
        what_helps="Has a dog called Biscuit; likes coffee",
        date_of_birth=dt.date(1984, 3, 21),
    )


@pytest.fixture
def clinical_record(site, person, clinician):
    """A full clinical record for `person`: a visit with a note, priorities, a service, a
    participant, a tox screen with results, a medication event, and a goal with a step."""
    now = timezone.now()
    visit = Visit.objects.create(
        site=site,
        person=person,
        started_at=now - dt.timedelta(days=3),
        ended_at=now - dt.timedelta(days=3) + dt.timedelta(minutes=40),
        opened_by=clinician,
        priorities=CLINICAL_WORDS["priorities"],
        note=CLINICAL_WORDS["note"],
    )
    visit.services.add(ServiceFactory(site=site, name=CLINICAL_WORDS["service"]))
    VisitParticipant.objects.create(
        visit=visit, user=clinician, discipline=Discipline.NURSE_PRACTITIONER, joined_at=now
    )
    screen = ToxScreen.objects.create(
        visit=visit,
        specimen=ToxScreen.Specimen.URINE,
        collected_on=now.date(),
        own_account=CLINICAL_WORDS["own_account"],
        decision=CLINICAL_WORDS["decision"],
        note=CLINICAL_WORDS["tox_note"],
        recorded_by=clinician,
        recorded_at=now,
    )
    ToxResult.objects.create(
        screen=screen, substance=Substance.XYLAZINE, result=ToxResult.Result.POSITIVE
    )
    MedicationEvent.objects.create(
        visit=visit,
        medication="methadone",
        dose=CLINICAL_WORDS["dose"],
        days_supply=7,
        action=MedicationEvent.Action.PRESCRIBED,
        recorded_by=clinician,
        recorded_at=now,
    )
    goal = Goal.objects.create(
        person=person,
        words=CLINICAL_WORDS["goal"],
        set_on=now.date(),
        status_changed_at=now,
        visit=visit,
        created_by=clinician,
    )
    GoalProgress.objects.create(
        goal=goal,
        on=now.date(),
        note=CLINICAL_WORDS["progress"],
        author=clinician,
        written_at=now,
    )
    return visit


def person_url(person) -> str:
    return reverse("visits:person", args=[person.pk])


def edit_url(person) -> str:
    return reverse("visits:person_edit", args=[person.pk])


# --- who may open the page --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("persona", "status"),
    [
        ("anonymous", 302),
        ("front_desk", 200),
        ("clinician", 200),
        ("director", 403),
        # The non-clinical part and the history of changes (tests/visits/test_history_views.py).
        ("privacy_officer", 200),
        ("other_site_clinician", 404),
    ],
)
def test_person_page_role_and_site_matrix(client, login, person, persona, status):
    login(persona)
    response = client.get(person_url(person))
    if persona == "anonymous":
        assert_login_redirect(response)
    else:
        assert response.status_code == status


@pytest.mark.parametrize(
    ("persona", "status"),
    [
        ("anonymous", 302),
        ("front_desk", 200),
        ("clinician", 200),
        ("director", 403),
        ("privacy_officer", 403),
        ("other_site_clinician", 404),
    ],
)
def test_edit_page_role_and_site_matrix(client, login, person, persona, status):
    login(persona)
    response = client.get(edit_url(person))
    if persona == "anonymous":
        assert_login_redirect(response)
    else:
        assert response.status_code == status


@pytest.mark.parametrize(
    "persona", ["anonymous", "director", "privacy_officer", "other_site_clinician"]
)
def test_who_may_not_edit_cannot_change_anything_by_posting(client, login, person, persona):
    login(persona)
    response = client.post(edit_url(person), {"name": "Someone else"})
    assert response.status_code in (302, 403, 404)
    person.refresh_from_db()
    assert person.name == "Marcus"


def test_another_sites_person_is_not_found_even_with_a_role_here(client, other_site, front_desk):
    stranger = PersonFactory(site=other_site, name="Quinn")
    client.force_login(front_desk)
    assert client.get(person_url(stranger)).status_code == 404
    assert client.get(edit_url(stranger)).status_code == 404
    assert client.post(edit_url(stranger), {"name": "Changed"}).status_code == 404
    stranger.refresh_from_db()
    assert stranger.name == "Quinn"


def test_a_person_id_that_is_not_a_number_or_is_huge_is_not_found(client, clinician, person):
    client.force_login(clinician)
    assert client.get("/people/abc/").status_code == 404
    assert client.get("/people/-1/").status_code == 404
    assert client.get("/people/99999999999999999999999/").status_code == 404
    assert client.get("/people/99999999999999999999999/edit/").status_code == 404


def test_the_person_page_only_answers_get(client, clinician, person):
    client.force_login(clinician)
    assert client.post(person_url(person)).status_code == 405
    assert client.put(edit_url(person)).status_code == 405


# --- front desk sees only the non-clinical part -----------------------------------------------


def test_front_desk_sees_name_pronouns_what_helps_and_last_here(client, site, front_desk, person):
    check_in(site=site, by=front_desk, person=person)
    client.force_login(front_desk)
    html = client.get(person_url(person)).content.decode()
    assert "Marcus" in html
    assert "he/him" in html
    assert "Biscuit" in html
    assert "555-0142" in html
    assert "Last here" in html
    assert "Not yet" not in html
    assert "Here now" in html


@pytest.mark.usefixtures("clinical_record")
def test_front_desk_sees_nothing_clinical(client, front_desk, person):
    client.force_login(front_desk)
    response = client.get(person_url(person))
    html = response.content.decode()
    assert response.status_code == 200
    assert "Marcus" in html
    for label, words in CLINICAL_WORDS.items():
        assert words not in html, f"front desk can read the {label}"
    for word in ("Xylazine", "Positive", "Methadone", "Urine", "Nurse practitioner"):
        assert word not in html
    assert 'id="visits-heading"' not in html
    assert 'id="person-goals-heading"' not in html
    assert "goals" not in response.context or response.context.get("goals") is None
    assert "visits" not in response.context or response.context.get("visits") is None


@pytest.mark.usefixtures("clinical_record")
def test_front_desk_opening_the_page_writes_no_access_log_row(client, front_desk, person):
    client.force_login(front_desk)
    client.get(person_url(person))
    client.get(edit_url(person))
    assert not AccessLog.objects.exists()


# --- the care team sees the clinical part, and every opening is logged ------------------------


def test_clinician_sees_goals_and_the_visit_timeline(client, clinician, person, clinical_record):
    client.force_login(clinician)
    response = client.get(person_url(person))
    html = response.content.decode()
    assert [g.words for g in response.context["goals"]] == [CLINICAL_WORDS["goal"]]
    assert CLINICAL_WORDS["goal"] in html
    assert CLINICAL_WORDS["priorities"] in html
    assert CLINICAL_WORDS["service"] in html
    assert "Alex (Nurse practitioner)" in html
    assert "Biscuit" in html
    assert [v.pk for v in response.context["visits"]] == [clinical_record.pk]


def test_the_timeline_is_newest_first_and_only_this_persons_visits(client, site, clinician, person):
    now = timezone.now()
    older = Visit.objects.create(
        site=site, person=person, started_at=now - dt.timedelta(days=30), opened_by=clinician
    )
    newer = Visit.objects.create(
        site=site, person=person, started_at=now - dt.timedelta(days=1), opened_by=clinician
    )
    Visit.objects.create(
        site=site, person=PersonFactory(site=site), started_at=now, opened_by=clinician
    )
    Visit.objects.create(site=site, person=None, started_at=now, opened_by=clinician)
    client.force_login(clinician)
    response = client.get(person_url(person))
    assert [v.pk for v in response.context["visits"]] == [newer.pk, older.pk]


def test_every_clinical_opening_writes_one_access_log_row(client, site, clinician, person):
    client.force_login(clinician)
    client.get(person_url(person))
    client.get(person_url(person))
    rows = list(AccessLog.objects.order_by("pk"))
    assert len(rows) == 2
    for row in rows:
        assert row.user == clinician
        assert row.person == person
        assert row.site == site
        assert row.what == AccessLog.What.PERSON
        assert row.object_id == str(person.pk)


def test_a_refused_or_missing_page_writes_no_access_log_row(
    client, other_site, director, other_site_clinician, person
):
    client.force_login(director)
    client.get(person_url(person))
    client.force_login(other_site_clinician)
    client.get(person_url(person))
    assert not AccessLog.objects.exists()


def test_someone_with_both_roles_gets_the_care_team_view(client, site, person, clinical_record):
    both = make_staff(site=site, roles=[roles.FRONT_DESK, roles.CLINICIAN], username="kim")
    client.force_login(both)
    html = client.get(person_url(person)).content.decode()
    assert CLINICAL_WORDS["priorities"] in html
    assert AccessLog.objects.filter(user=both, person=person).count() == 1


def test_a_clinician_without_a_membership_here_cannot_open_the_record(client, person):
    drifter = make_staff(site=None, roles=[roles.CLINICIAN], username="nomad")
    client.force_login(drifter)
    assert client.get(person_url(person)).status_code == 403
    assert not AccessLog.objects.exists()


def test_board_and_check_in_link_the_name_to_the_person_page(client, site, front_desk, person):
    arrival = check_in(site=site, by=front_desk, person=person)
    client.force_login(front_desk)
    board = client.get(reverse("queues:board")).content.decode()
    assert f'href="{person_url(person)}"' in board
    ticket = client.get(f"{reverse('queues:check_in')}?arrival={arrival.pk}").content.decode()
    assert f'href="{person_url(person)}"' in ticket


def test_last_here_says_not_yet_for_someone_never_seen(client, front_desk, person):
    client.force_login(front_desk)
    assert "Not yet" in client.get(person_url(person)).content.decode()


# --- editing details --------------------------------------------------------------------------


def details(**overrides) -> dict:
    return {
        "name": "Marcus J",
        "pronouns": "he/they",
        "date_of_birth": "1985-04-02",
        "phone": "555-0199",
        "what_helps": "Quiet room",
        **overrides,
    }


@pytest.mark.parametrize("persona", ["front_desk", "clinician"])
def test_front_desk_and_care_team_can_edit_details(client, login, person, persona):
    login(persona)
    response = client.post(edit_url(person), details())
    assert response.status_code == 302
    assert response.url == person_url(person)
    person.refresh_from_db()
    assert (person.name, person.pronouns, person.phone, person.what_helps) == (
        "Marcus J",
        "he/they",
        "555-0199",
        "Quiet room",
    )
    assert person.date_of_birth == dt.date(1985, 4, 2)


def test_blank_optional_details_are_allowed_and_clear_what_was_there(client, front_desk, person):
    client.force_login(front_desk)
    response = client.post(
        edit_url(person),
        details(name="  Marcus  ", pronouns="", date_of_birth="", phone="", what_helps=""),
    )
    assert response.status_code == 302
    person.refresh_from_db()
    assert person.name == "Marcus"
    assert (person.pronouns, person.phone, person.what_helps, person.date_of_birth) == (
        "",
        "",
        "",
        None,
    )


def test_the_edit_form_shows_what_is_on_file(client, front_desk, person):
    client.force_login(front_desk)
    html = client.get(edit_url(person)).content.decode()
    assert 'value="Marcus"' in html
    assert 'value="1984-03-21"' in html
    assert "Biscuit" in html


def _unchanged(person) -> bool:
    before = (person.name, person.pronouns, person.date_of_birth, person.phone, person.what_helps)
    person.refresh_from_db()
    return before == (
        person.name,
        person.pronouns,
        person.date_of_birth,
        person.phone,
        person.what_helps,
    )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"name": ""}, "Please enter the name the person goes by."),
        ({"name": "   "}, "Please enter the name the person goes by."),
        ({"name": "x" * 10_000}, "at most 200 characters"),
        ({"pronouns": "x" * 41}, "at most 40 characters"),
        ({"phone": "5" * 41}, "at most 40 characters"),
        ({"what_helps": "x" * 1001}, "at most 1000 characters"),
        ({"date_of_birth": "2999-01-01"}, "cannot be in the future"),
        ({"date_of_birth": "1850-01-01"}, "before 1900"),
        ({"date_of_birth": "not a date"}, "Please enter a date"),
        ({"date_of_birth": "2024-02-30"}, "Please enter a date"),
    ],
)
def test_bad_details_change_nothing_and_say_why(client, front_desk, person, overrides, message):
    client.force_login(front_desk)
    response = client.post(edit_url(person), details(**overrides))
    assert response.status_code == 200
    html = response.content.decode()
    assert message in html
    assert "Nothing was saved" in html
    assert 'aria-invalid="true"' in html
    assert _unchanged(person)


def test_tomorrow_at_the_site_is_in_the_future(front_desk, person):
    from visits.errors import VisitError

    today = dt.date(2026, 5, 1)
    with pytest.raises(VisitError) as error:
        person_update(
            person=person,
            by=front_desk,
            name="Marcus",
            date_of_birth=today + dt.timedelta(days=1),
            today=today,
        )
    assert error.value.code == "birth_in_future"
    person_update(person=person, by=front_desk, name="Marcus", date_of_birth=today, today=today)
    person.refresh_from_db()
    assert person.date_of_birth == today


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"name": ""}, "name_required"),
        ({"name": "x" * 201}, "name_too_long"),
        ({"name": "M", "pronouns": "x" * 41}, "pronouns_too_long"),
        ({"name": "M", "phone": "x" * 41}, "phone_too_long"),
        ({"name": "M", "what_helps": "x" * 1001}, "what_helps_too_long"),
        ({"name": "M", "date_of_birth": dt.date(1899, 12, 31)}, "birth_too_early"),
    ],
)
def test_the_service_refuses_bad_details_with_a_code(front_desk, person, kwargs, code):
    from visits.errors import VisitError

    with pytest.raises(VisitError) as error:
        person_update(person=person, by=front_desk, **kwargs)
    assert error.value.code == code
    assert _unchanged(person)


def test_renaming_someone_on_the_board_tells_the_board(
    site, front_desk, person, django_capture_on_commit_callbacks
):
    check_in(site=site, by=front_desk, person=person)
    before = queue_version(site.pk)
    with django_capture_on_commit_callbacks() as callbacks:
        person_update(person=person, by=front_desk, name="Marc")
    assert queue_version(site.pk) == before + 1
    assert len(callbacks) == 1


def test_editing_someone_not_on_the_board_or_only_their_phone_sends_nothing(
    site, front_desk, person, django_capture_on_commit_callbacks
):
    other = PersonFactory(site=site, name="Lee")
    check_in(site=site, by=front_desk, person=person)
    with django_capture_on_commit_callbacks() as callbacks:
        person_update(person=other, by=front_desk, name="Leigh")
        person_update(person=person, by=front_desk, name="Marcus", pronouns="he/him", phone="1")
    assert callbacks == []


def test_the_board_shows_the_new_name_after_an_edit(client, site, front_desk, person):
    check_in(site=site, by=front_desk, person=person)
    client.force_login(front_desk)
    client.post(edit_url(person), details(name="Marc"))
    board = client.get(reverse("queues:board")).content.decode()
    assert ">Marc</a>" in board
    assert Arrival.objects.get(person=person).person.name == "Marc"
    assert Person.objects.filter(name="Marcus").count() == 0


def test_every_problem_is_shown_at_once(client, front_desk, person):
    client.force_login(front_desk)
    response = client.post(
        edit_url(person), details(name="", date_of_birth="2999-01-01", phone="5" * 41)
    )
    html = response.content.decode()
    assert "Please enter the name the person goes by." in html
    assert "cannot be in the future" in html
    assert "at most 40 characters" in html
    assert _unchanged(person)


def test_a_long_history_costs_a_fixed_number_of_queries(
    client, site, clinician, second_clinician, person, django_assert_max_num_queries
):
    now = timezone.now()
    services = [ServiceFactory(site=site) for _ in range(3)]
    for day in range(80):
        visit = Visit.objects.create(
            site=site,
            person=person,
            started_at=now - dt.timedelta(days=day + 1),
            opened_by=clinician,
            priorities=f"Priority {day}",
        )
        visit.services.set(services)
        for user in (clinician, second_clinician):
            VisitParticipant.objects.create(
                visit=visit, user=user, discipline=Discipline.NURSE, joined_at=now
            )
    client.force_login(clinician)
    with django_assert_max_num_queries(25):
        response = client.get(person_url(person))
    assert len(response.context["visits"]) == 80
    assert "Priority 79" in response.content.decode()
