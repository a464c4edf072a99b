"""The access log's filters as the privacy officer uses them: about a person found by name
(a POST: no name in any URL), from one day to another at the site, and by staff member,
together; bad dates get a clear message and show nothing."""

import datetime as dt
from unittest import mock

import pytest
from django.urls import reverse
from django.utils import timezone

from clinic.models import AccessLog
from tests.factories import PersonFactory

URL = reverse("visits:access_log")


def opened(user, site, person, day: dt.date) -> None:
    at = dt.datetime.combine(day, dt.time(10), tzinfo=site.tz)
    with mock.patch("django.utils.timezone.now", return_value=at):
        AccessLog.objects.create(user=user, site=site, person=person, what=AccessLog.What.PERSON)


@pytest.fixture
def today(site):
    return timezone.localdate(timezone.now(), site.tz)


@pytest.fixture
def marcus(site):
    return PersonFactory(site=site, name="Marcus Bell")


@pytest.fixture
def history(site, clinician, second_clinician, marcus, today):
    lee = PersonFactory(site=site, name="Lee")
    for user, person, days_ago in [
        (clinician, marcus, 30),
        (clinician, marcus, 10),
        (second_clinician, marcus, 9),
        (clinician, lee, 10),
        (clinician, marcus, 1),
    ]:
        opened(user, site, person, today - dt.timedelta(days=days_ago))
    return lee


def shown(response) -> list[AccessLog]:
    return list(response.context["page"].object_list)


def test_a_person_is_found_by_name_by_post_and_chosen_by_id(
    client, privacy_officer, history, marcus
):
    client.force_login(privacy_officer)
    response = client.post(URL, {"q": "marc"})
    body = response.content.decode()
    assert response.status_code == 200
    assert f"?person={marcus.pk}" in body
    assert "Entries about Marcus Bell" in body
    assert "Entries about Lee" not in body
    # The link filters by id: the name never travels in a URL.
    assert "marc" not in response.request["QUERY_STRING"].lower()
    about = client.get(URL, {"person": marcus.pk})
    assert {e.person for e in shown(about)} == {marcus}
    assert len(shown(about)) == 4


def test_nobody_by_that_name_says_so(client, privacy_officer, history):
    client.force_login(privacy_officer)
    body = client.post(URL, {"q": "Zed"}).content.decode()
    assert "Nobody by that name at this site." in body


def test_a_search_keeps_the_filters_already_chosen(
    client, privacy_officer, history, marcus, clinician
):
    client.force_login(privacy_officer)
    body = client.post(f"{URL}?staff={clinician.pk}&since=2026-01-01", {"q": "Marcus"})
    html = body.content.decode()
    assert f"staff={clinician.pk}" in html and f"person={marcus.pk}" in html
    assert "since=2026-01-01" in html


def test_a_date_range_includes_both_days_at_the_site(
    client, privacy_officer, history, marcus, clinician, today
):
    client.force_login(privacy_officer)
    query = {
        "since": (today - dt.timedelta(days=10)).isoformat(),
        "until": (today - dt.timedelta(days=9)).isoformat(),
    }
    assert len(shown(client.get(URL, query))) == 3
    together = client.get(URL, {**query, "person": marcus.pk, "staff": clinician.pk})
    [entry] = shown(together)
    assert (entry.person, entry.user) == (marcus, clinician)
    only_since = client.get(URL, {"since": (today - dt.timedelta(days=1)).isoformat()})
    assert len(shown(only_since)) == 1


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"since": "14/03/2025"}, "Please enter a date, e.g. 2025-03-14."),
        ({"since": "0001-01-01"}, "The date cannot be before this site&#x27;s first day"),
        ({"until": "9999-12-31"}, "The date cannot be in the future."),
        (
            {"since": "2026-03-02", "until": "2026-03-01"},
            "The last day cannot be before the first.",
        ),
    ],
)
def test_bad_dates_get_a_clear_message_and_show_nothing(
    client, privacy_officer, history, query, message
):
    client.force_login(privacy_officer)
    response = client.get(URL, query)
    assert response.status_code == 200
    assert response.context["page"] is None
    body = response.content.decode()
    assert "This filter could not be used, so nothing is shown." in body
    assert message in body
