"""Accounting of disclosures: what left about a person in the past three years, printable; the
privacy officer also sees attempts that released nothing."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from clinic.models import AccessLog
from releases.accounting import accounting_since, person_accounting
from releases.models import Category, DisclosureLog, Scope
from tests.helpers import PERSONAS, assert_login_redirect
from tests.releases.factories import make_person, make_recipient

pytestmark = pytest.mark.django_db


@pytest.fixture
def person(site):
    return make_person(site=site, name="Jordan")


@pytest.fixture
def court(site):
    return make_recipient(site=site, category=Category.DRUG_COURT, organisation="County Drug Court")


def row(
    person,
    recipient,
    *,
    at,
    path="packet_hand_over",
    decision="granted",
    reason="consent_valid",
    purpose="attendance",
):
    return DisclosureLog.objects.create(
        at=at,
        site=person.site,
        person=person,
        recipient=recipient,
        recipient_category=recipient.category,
        path=path,
        purpose=purpose,
        scope=[Scope.ATTENDANCE],
        decision=decision,
        reason=reason,
    )


def test_accounting_lists_three_years_only(person, court):
    now = timezone.now()
    recent = row(person, court, at=now - dt.timedelta(days=30))
    edge = row(person, court, at=now - dt.timedelta(days=3 * 365 - 2))
    row(person, court, at=now - dt.timedelta(days=3 * 365 + 2), purpose="too old")
    row(person, court, at=now - dt.timedelta(days=5 * 365), purpose="far too old")
    result = person_accounting(person=person, now=now)
    assert [line.row for line in result["disclosures"]] == [recent, edge]
    line = result["disclosures"][0]
    assert line.recipient == "County Drug Court"
    assert line.description == "Release packet handed over: Attendance and visit dates"
    assert line.purpose == "attendance"


def test_three_years_is_calendar_years_from_the_local_day(site):
    now = dt.datetime(2028, 2, 29, 12, tzinfo=dt.UTC)
    since = accounting_since(now, site.tz)
    assert since.date() == dt.date(2025, 2, 28)


def test_only_releases_that_left_count_as_disclosures(person, court):
    now = timezone.now()
    left = row(person, court, at=now - dt.timedelta(days=1))
    emergency = row(
        person,
        court,
        at=now - dt.timedelta(days=2),
        path="emergency_release",
        reason="medical_emergency",
    )
    export = row(person, court, at=now - dt.timedelta(days=3), path="export_attendance")
    prepared = row(person, court, at=now - dt.timedelta(days=4), path="packet_generate")
    refused = row(
        person, court, at=now - dt.timedelta(days=5), decision="refused", reason="no_consent"
    )
    held = row(
        person, court, at=now - dt.timedelta(days=6), decision="held", reason="awaiting_approvals"
    )
    result = person_accounting(person=person, now=now)
    assert [line.row for line in result["disclosures"]] == [left, emergency, export]
    assert [line.row for line in result["attempts"]] == [prepared, refused, held]


def test_the_persons_printable_copy_has_no_refused_attempts(client, person, court, privacy_officer):
    now = timezone.now()
    row(person, court, at=now - dt.timedelta(days=1), purpose="weekly attendance letter")
    row(
        person,
        court,
        at=now - dt.timedelta(days=2),
        decision="refused",
        reason="no_consent",
        purpose="a subpoena",
    )
    client.force_login(privacy_officer)
    full = client.get(reverse("releases:accounting", args=[person.pk])).content.decode()
    assert "weekly attendance letter" in full and "a subpoena" in full
    printed = client.get(reverse("releases:accounting_print", args=[person.pk])).content.decode()
    assert "weekly attendance letter" in printed
    assert "a subpoena" not in printed
    assert "no consent" not in printed
    assert (
        AccessLog.objects.filter(
            what=AccessLog.What.ACCOUNTING, person=person, user=privacy_officer
        ).count()
        == 2
    )


EXPECTED = {
    "anonymous": "login",
    "front_desk": 403,
    "clinician": 403,
    "director": 403,
    "privacy_officer": 200,
    "other_site_clinician": 403,
}


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("name", ["releases:accounting", "releases:accounting_print"])
def test_accounting_pages_permission_matrix(client, login, person, name, persona):
    login(persona)
    response = client.get(reverse(name, args=[person.pk]))
    if EXPECTED[persona] == "login":
        assert_login_redirect(response)
    else:
        assert response.status_code == EXPECTED[persona]


def test_accounting_of_a_person_at_another_site_is_not_found(client, other_site, privacy_officer):
    stranger = make_person(site=other_site)
    client.force_login(privacy_officer)
    assert client.get(reverse("releases:accounting", args=[stranger.pk])).status_code == 404
