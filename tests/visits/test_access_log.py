"""The privacy officer's access log: who may read it, order, filters, pages, bad input."""

import datetime as dt
from unittest import mock

import pytest
from django.urls import reverse
from django.utils import timezone

from clinic import roles
from clinic.access import access_log_record
from clinic.models import AccessLog
from tests.factories import PersonFactory, make_staff
from visits.selectors.people import ACCESS_LOG_PAGE_SIZE

URL = reverse("visits:access_log")


def entries(response) -> list[AccessLog]:
    return list(response.context["page"].object_list)


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
def test_only_the_privacy_officer_reads_the_access_log(client, login, persona, status):
    login(persona)
    response = client.get(URL)
    assert response.status_code == status
    if persona == "anonymous":
        assert response.url.startswith(reverse("login") + "?next=")


def test_the_access_log_answers_get_and_its_name_search_post_only(client, privacy_officer):
    client.force_login(privacy_officer)
    assert client.put(URL).status_code == 405
    assert client.delete(URL).status_code == 405


def test_a_clinical_opening_shows_up_with_who_whom_what_and_when(
    client, site, clinician, privacy_officer
):
    person = PersonFactory(site=site, name="Marcus")
    client.force_login(clinician)
    client.get(reverse("visits:person", args=[person.pk]))
    client.force_login(privacy_officer)
    response = client.get(URL)
    html = response.content.decode()
    [entry] = entries(response)
    assert (entry.user, entry.person, entry.what) == (clinician, person, AccessLog.What.PERSON)
    assert "Alex" in html
    assert "Marcus" in html
    assert "Person&#x27;s clinical record" in html
    local = timezone.localtime(entry.at, site.tz)
    assert f"{local:%H:%M}" in html


def test_reading_the_log_is_not_itself_logged(client, privacy_officer):
    client.force_login(privacy_officer)
    client.get(URL)
    client.get(URL)
    assert not AccessLog.objects.exists()


def test_newest_first(client, site, clinician, privacy_officer):
    people = [PersonFactory(site=site, name=f"P{i}") for i in range(3)]
    for person in people:
        access_log_record(user=clinician, site=site, person=person, what=AccessLog.What.PERSON)
    client.force_login(privacy_officer)
    assert [e.person.name for e in entries(client.get(URL))] == ["P2", "P1", "P0"]


def test_another_sites_entries_are_not_shown(
    client, site, other_site, other_site_clinician, privacy_officer
):
    theirs = PersonFactory(site=other_site, name="Quinn")
    access_log_record(
        user=other_site_clinician, site=other_site, person=theirs, what=AccessLog.What.PERSON
    )
    client.force_login(privacy_officer)
    response = client.get(URL)
    assert entries(response) == []
    assert "Quinn" not in response.content.decode()
    # Nor can they be asked for by id.
    response = client.get(URL, {"person": theirs.pk})
    assert response.context["page"] is None
    assert "not known at this site" in response.content.decode()
    assert "Quinn" not in response.content.decode()


def test_filter_by_person_and_by_staff_member(
    client, site, clinician, second_clinician, privacy_officer
):
    marcus = PersonFactory(site=site, name="Marcus")
    lee = PersonFactory(site=site, name="Lee")
    for user, person in [
        (clinician, marcus),
        (clinician, lee),
        (second_clinician, marcus),
        (second_clinician, lee),
        (second_clinician, lee),
    ]:
        access_log_record(user=user, site=site, person=person, what=AccessLog.What.PERSON)
    client.force_login(privacy_officer)

    about_lee = entries(client.get(URL, {"person": lee.pk}))
    assert len(about_lee) == 3
    assert {e.person for e in about_lee} == {lee}

    by_sam = entries(client.get(URL, {"staff": second_clinician.pk}))
    assert len(by_sam) == 3
    assert {e.user for e in by_sam} == {second_clinician}

    both = client.get(URL, {"staff": second_clinician.pk, "person": lee.pk})
    assert len(entries(both)) == 2
    html = both.content.decode()
    assert "Showing only entries about" in html
    assert f'<option value="{second_clinician.pk}" selected>' in html


def test_staff_who_left_the_site_stay_in_the_filter(client, site, privacy_officer):
    leaver = make_staff(site=site, roles=[roles.CLINICIAN], username="gone", first_name="Gale")
    access_log_record(
        user=leaver, site=site, person=PersonFactory(site=site), what=AccessLog.What.PERSON
    )
    leaver.memberships.all().delete()
    client.force_login(privacy_officer)
    response = client.get(URL, {"staff": leaver.pk})
    assert len(entries(response)) == 1


@pytest.mark.parametrize(
    "query",
    [
        {"person": "abc"},
        {"person": "99999999999999999999999"},
        {"person": "-3"},
        {"staff": "abc"},
        {"staff": "424242"},
    ],
)
def test_a_garbled_filter_shows_nothing_and_says_so(
    client, site, clinician, privacy_officer, query
):
    access_log_record(
        user=clinician, site=site, person=PersonFactory(site=site), what=AccessLog.What.PERSON
    )
    client.force_login(privacy_officer)
    response = client.get(URL, query)
    assert response.status_code == 200
    assert response.context["page"] is None
    assert "This filter could not be used" in response.content.decode()


def test_pages_of_fifty_keep_the_filter_and_survive_bad_page_numbers(
    client, site, clinician, privacy_officer
):
    person = PersonFactory(site=site, name="Marcus")
    other = PersonFactory(site=site, name="Lee")
    now = timezone.now()
    # Written five minutes ago (the access log accepts no later change of time).
    with mock.patch("django.utils.timezone.now", return_value=now - dt.timedelta(minutes=5)):
        AccessLog.objects.bulk_create(
            AccessLog(user=clinician, site=site, person=person, what=AccessLog.What.PERSON)
            for _ in range(ACCESS_LOG_PAGE_SIZE * 2 + 7)
        )
        access_log_record(user=clinician, site=site, person=other, what=AccessLog.What.VISIT)
    client.force_login(privacy_officer)

    first = client.get(URL, {"person": person.pk})
    assert len(entries(first)) == ACCESS_LOG_PAGE_SIZE
    assert first.context["page"].paginator.num_pages == 3
    html = first.content.decode()
    assert "Page 1 of 3" in html
    assert f"?person={person.pk}&amp;page=2" in html

    last = client.get(URL, {"person": person.pk, "page": "3"})
    assert len(entries(last)) == 7
    # Garbled and out-of-range page numbers give a real page, never an error.
    assert client.get(URL, {"person": person.pk, "page": "abc"}).context["page"].number == 1
    assert client.get(URL, {"person": person.pk, "page": "999"}).context["page"].number == 3
    assert client.get(URL, {"page": "-1"}).status_code == 200


def test_the_nav_links_to_the_log_only_for_the_privacy_officer(
    client, front_desk, clinician, privacy_officer
):
    for user, shown in [(front_desk, False), (clinician, False), (privacy_officer, True)]:
        client.force_login(user)
        html = client.get(reverse("queues:check_in") if shown is False else URL).content.decode()
        assert (f'href="{URL}"' in html) is shown
