"""Reading the history of changes: only the privacy officer, on the person page and on the
"Changes" page next to the access log; every reading is itself in the access log.

Personas (conftest): anonymous, front_desk, clinician, director, privacy_officer and
other_site_clinician; a privacy officer of another site is made here.
"""

import datetime as dt
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from clinic import roles
from clinic.history import history_actor
from clinic.models import AccessLog, Person
from tests.factories import PersonFactory, make_staff
from tests.helpers import assert_login_redirect
from visits.models import Goal, Substance, ToxResult, ToxScreen, Visit
from visits.selectors.history import CHANGES_PAGE_SIZE, PERSON_HISTORY_LIMIT

CHANGES = reverse("visits:changes")


@pytest.fixture
def person(site):
    return PersonFactory(site=site, name="Marcus", pronouns="he/him")


@pytest.fixture
def other_site_privacy_officer(other_site):
    return make_staff(site=other_site, roles=[roles.PRIVACY_OFFICER], username="pat")


def person_url(person):
    return reverse("visits:person", args=[person.pk])


def rename_as(client, user, person, name, **details):
    client.force_login(user)
    response = client.post(
        reverse("visits:person_edit", args=[person.pk]), {"name": name, **details}
    )
    assert response.status_code == 302


def history_log(user) -> list[tuple]:
    return list(
        AccessLog.objects.filter(user=user, what=AccessLog.What.HISTORY).values_list(
            "person__name", "site__slug"
        )
    )


# --- who may read it ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("persona", "status"),
    [
        ("anonymous", 302),
        ("front_desk", 403),
        ("clinician", 403),
        ("director", 403),
        ("privacy_officer", 200),
        ("other_site_clinician", 403),
    ],
)
def test_only_the_privacy_officer_opens_the_changes_page(client, login, persona, status):
    login(persona)
    response = client.get(CHANGES)
    if persona == "anonymous":
        assert_login_redirect(response)
    else:
        assert response.status_code == status


@pytest.mark.parametrize(
    ("persona", "status", "sees_history"),
    [
        ("front_desk", 200, False),
        ("clinician", 200, False),
        ("director", 403, False),
        ("privacy_officer", 200, True),
        ("other_site_clinician", 404, False),
    ],
)
def test_only_the_privacy_officer_sees_the_history_on_the_person_page(
    client, login, person, persona, status, sees_history
):
    user = login(persona)
    response = client.get(person_url(person))
    assert response.status_code == status
    html = response.content.decode()
    assert ("History of changes" in html) is sees_history
    assert ('data-testid="person-history"' in html) is sees_history
    assert bool(history_log(user)) is sees_history


def test_a_privacy_officer_of_another_site_finds_neither_the_person_nor_their_changes(
    client, person, front_desk, other_site_privacy_officer
):
    rename_as(client, front_desk, person, "Mark")
    client.force_login(other_site_privacy_officer)
    assert client.get(person_url(person)).status_code == 404
    response = client.get(CHANGES, {"person": person.pk})
    assert response.context["page"] is None
    html = response.content.decode()
    assert "not known at this site" in html
    assert "Mark" not in html and "Marcus" not in html
    # Their own site's page shows nothing of ours either.
    response = client.get(CHANGES)
    assert list(response.context["page"].object_list) == []
    assert history_log(other_site_privacy_officer) == []


def test_the_changes_page_only_answers_get(client, privacy_officer):
    client.force_login(privacy_officer)
    assert client.post(CHANGES).status_code == 405


# --- what the privacy officer sees --------------------------------------------------------------


def test_the_privacy_officer_sees_a_name_change_by_the_front_desk_with_who_before_and_after(
    client, site, person, front_desk, privacy_officer
):
    front_desk.first_name, front_desk.last_name = "Robin", "Park"
    front_desk.save()
    rename_as(client, front_desk, person, "Mark", pronouns="he/him", phone="555-0199")
    client.force_login(privacy_officer)
    response = client.get(person_url(person))
    assert response.status_code == 200
    [change, added] = response.context["history"].changes
    assert (change.operation_label, change.record, change.who) == (
        "Changed",
        "Person's details",
        "Robin Park",
    )
    assert [(f.label, f.before, f.after) for f in change.fields] == [
        ("Name", "Marcus", "Mark"),
        ("Phone", None, "555-0199"),
    ]
    assert added.operation_label == "Added"
    html = response.content.decode()
    section = html[html.index('data-testid="person-history"') :]
    assert "Robin Park" in section and "(robin)" in section
    assert "Marcus" in section and "Mark" in section and "555-0199" in section
    local = timezone.localtime(change.at, site.tz)
    assert f"{local:%H:%M:%S}" in section
    # The opening is itself a clinical read, in the access log.
    assert history_log(privacy_officer) == [("Mark", site.slug)]


def test_clinical_changes_show_in_plain_words(client, site, person, clinician, privacy_officer):
    with history_actor(clinician, via="web"):
        visit = Visit.objects.create(
            site=site, person=person, started_at=timezone.now(), opened_by=clinician
        )
        screen = ToxScreen.objects.create(
            visit=visit,
            specimen=ToxScreen.Specimen.URINE,
            collected_on=dt.date(2025, 3, 14),
            recorded_by=clinician,
            recorded_at=timezone.now(),
        )
        result = ToxResult.objects.create(
            screen=screen, substance=Substance.FENTANYL, result=ToxResult.Result.NEGATIVE
        )
        ToxResult.objects.filter(pk=result.pk).update(result=ToxResult.Result.EXPECTED)
        ToxScreen.objects.filter(pk=screen.pk).update(talked_naloxone_given=True)
        Goal.objects.create(
            person=person,
            words="Get my own place",
            set_on=dt.date(2025, 3, 14),
            status_changed_at=timezone.now(),
            created_by=clinician,
        )
        Goal.objects.filter(person=person).update(status=Goal.Status.SET_ASIDE)
    client.force_login(privacy_officer)
    changes = client.get(person_url(person)).context["history"].changes
    described = {
        (c.record, c.operation_label): [(f.label, f.before, f.after) for f in c.fields]
        for c in changes
    }
    assert described[("Tox-screen result", "Changed")] == [
        ("Result", "Negative", "Expected (medication present)")
    ]
    assert described[("Tox-screen conversation", "Changed")] == [("Naloxone given", "No", "Yes")]
    assert described[("Goal", "Changed")] == [("Status", "Active", "Set aside")]
    added_screen = described[("Tox-screen conversation", "Added")]
    assert ("Specimen", None, "Urine") in added_screen
    assert ("Date", None, "14 Mar 2025") in added_screen
    assert ("Recorded by", None, "Alex") in added_screen
    assert all(c.who == "Alex" for c in changes if c.record != "Person's details")


def test_changes_made_by_nobody_signed_in_say_how_they_were_made(
    client, site, person, privacy_officer
):
    Person.objects.filter(pk=person.pk).update(phone="555")
    with history_actor(None, via="import_visits"):
        Person.objects.filter(pk=person.pk).update(phone="556")
    client.force_login(privacy_officer)
    changes = client.get(person_url(person)).context["history"].changes
    assert [(c.who, c.who_detail) for c in changes[:2]] == [
        ("No staff member named", "command: import_visits"),
        ("Not recorded", "changed outside the application"),
    ]


def test_the_person_page_shows_the_newest_changes_and_links_to_the_rest(
    client, person, privacy_officer
):
    for i in range(PERSON_HISTORY_LIMIT + 5):
        Person.objects.filter(pk=person.pk).update(what_helps=f"Note {i}")
    client.force_login(privacy_officer)
    response = client.get(person_url(person))
    history = response.context["history"]
    assert len(history.changes) == PERSON_HISTORY_LIMIT
    assert history.more
    last = PERSON_HISTORY_LIMIT + 4
    assert history.changes[0].fields[0].after == f"Note {last}"  # newest first
    assert f'href="{CHANGES}?person={person.pk}"' in response.content.decode()


def test_the_changes_page_filters_by_person_staff_member_and_days(
    client, site, person, front_desk, clinician, privacy_officer
):
    lee = PersonFactory(site=site, name="Lee")
    rename_as(client, front_desk, person, "Mark")
    rename_as(client, clinician, lee, "Leigh")
    rename_as(client, clinician, person, "Marc")
    client.force_login(privacy_officer)

    def shown(**query):
        response = client.get(CHANGES, query)
        assert response.status_code == 200
        return [(c.person.name, c.who) for c in response.context["page"].object_list if c.fields]

    desk = front_desk.get_full_name()
    assert shown(person=person.pk) == [("Marc", "Alex"), ("Marc", desk), ("Marc", "Not recorded")]
    assert shown(staff=clinician.pk) == [("Marc", "Alex"), ("Leigh", "Alex")]
    assert shown(staff=clinician.pk, person=lee.pk) == [("Leigh", "Alex")]
    today = timezone.localdate(timezone.now(), site.tz)
    assert len(shown(since=today.isoformat(), until=today.isoformat())) == 5
    assert shown(until=(today - dt.timedelta(days=1)).isoformat()) == []
    tomorrow = client.get(CHANGES, {"since": (today + dt.timedelta(days=1)).isoformat()})
    assert tomorrow.context["page"] is None
    assert "The date cannot be in the future." in tomorrow.content.decode()
    html = client.get(CHANGES, {"person": lee.pk}).content.decode()
    assert "Showing only changes about <strong>Leigh</strong>" in html


def test_reading_the_changes_page_logs_every_person_it_shows(
    client, site, person, front_desk, privacy_officer
):
    lee = PersonFactory(site=site, name="Lee")
    rename_as(client, front_desk, person, "Mark")
    client.force_login(privacy_officer)
    client.get(CHANGES)
    assert sorted(history_log(privacy_officer)) == [("Lee", site.slug), ("Mark", site.slug)]
    client.get(CHANGES, {"person": lee.pk})
    assert sorted(history_log(privacy_officer)) == [
        ("Lee", site.slug),
        ("Lee", site.slug),
        ("Mark", site.slug),
    ]


@pytest.mark.parametrize(
    "query",
    [
        {"person": "abc"},
        {"person": "99999999999999999999999"},
        {"staff": "424242"},
        {"since": "yesterday"},
        {"until": "2025-02-30"},
        {"since": "2025-03-02", "until": "2025-03-01"},
    ],
)
def test_a_garbled_filter_shows_nothing_and_says_so(client, person, privacy_officer, query):
    client.force_login(privacy_officer)
    response = client.get(CHANGES, query)
    assert response.status_code == 200
    assert response.context["page"] is None
    assert "This filter could not be used" in response.content.decode()
    assert history_log(privacy_officer) == []


def test_the_changes_page_goes_back_page_by_page(client, site, person, privacy_officer):
    for i in range(CHANGES_PAGE_SIZE + 3):
        Person.objects.filter(pk=person.pk).update(phone=str(i))
    client.force_login(privacy_officer)
    first = client.get(CHANGES).context["page"]
    second = client.get(CHANGES, {"page": 2}).context["page"]
    assert len(first.object_list) == CHANGES_PAGE_SIZE
    assert len(second.object_list) == 4  # three more phone changes and the person added
    assert second.object_list[-1].operation == "insert"


def test_no_name_ever_goes_into_the_changes_pages_urls(client, site, person, privacy_officer):
    Person.objects.filter(pk=person.pk).update(name="Mark")
    client.force_login(privacy_officer)
    for url in (CHANGES, person_url(person)):
        html = client.get(url).content.decode()
        for href in re.findall(r'href="([^"]*)"', html):
            assert "Mark" not in href and "Marcus" not in href


def test_the_privacy_officer_gets_the_history_not_the_care_teams_record(
    client, site, person, clinician, privacy_officer
):
    Visit.objects.create(site=site, person=person, started_at=timezone.now(), opened_by=clinician)
    client.force_login(privacy_officer)
    response = client.get(person_url(person))
    assert response.context.get("goals") is None
    assert response.context.get("visits") is None
    assert 'id="visits-heading"' not in response.content.decode()
    assert list(AccessLog.objects.filter(user=privacy_officer).values_list("what", flat=True)) == [
        AccessLog.What.HISTORY
    ]
