"""Every medical emergency release (§2.51) is reviewed by the site's privacy officer within a
set time (settings.EMERGENCY_REVIEW_HOURS, 72 by default), the review recorded, append-only
(issue 12, item 7). Overdue reviews show on the privacy officer's home and the director's list;
they never block a release."""

import datetime as dt

import pytest
from django.db import DatabaseError, transaction
from django.urls import reverse
from django.utils import timezone

from clinic import roles
from releases.accounting import emergencies_awaiting_review, review_hours
from releases.errors import ReleaseError
from releases.models import Category, DisclosureLog, EmergencyRelease, EmergencyReview, Scope
from releases.services import outgoing as services
from tests.factories import make_staff
from tests.helpers import messages_of
from tests.releases.clock import clock_at
from tests.releases.factories import make_recipient
from tests.releases.outgoing_data import make_record

pytestmark = pytest.mark.django_db

APPROPRIATE = EmergencyReview.Finding.APPROPRIATE
CONCERNS = EmergencyReview.Finding.CONCERNS


@pytest.fixture
def person(site):
    return make_record(site=site, name="Robin Quill").person


@pytest.fixture
def provider(site):
    return make_recipient(
        site=site, category=Category.TREATMENT_PROVIDER, organisation="County General ED"
    )


@pytest.fixture
def released(person, provider, clinician):
    return services.emergency_release(
        site=person.site,
        person=person,
        recipient=provider,
        personnel_name="Dr. Ana Ruiz",
        reason="Unresponsive, brought to the ED",
        scope=[Scope.MEDICATIONS],
        by=clinician,
    )


@pytest.fixture
def late(person, provider, clinician):
    """A release made 73 hours ago (past the default 72) and not reviewed since."""
    with clock_at(timezone.now() - dt.timedelta(hours=73)):
        return services.emergency_release(
            site=person.site,
            person=person,
            recipient=provider,
            personnel_name="Dr. Ana Ruiz",
            reason="Unresponsive, brought to the ED",
            scope=[Scope.MEDICATIONS],
            by=clinician,
        )


@pytest.fixture
def other_site_officer(other_site):
    return make_staff(site=other_site, roles=[roles.PRIVACY_OFFICER], username="oscar")


def review(released, by, finding=APPROPRIATE, note=""):
    return services.emergency_review_record(emergency=released, by=by, finding=finding, note=note)


# --- the review ---------------------------------------------------------------------------------


def test_the_privacy_officer_records_who_when_the_finding_and_a_note(released, privacy_officer):
    assert [s.emergency for s in emergencies_awaiting_review(site=released.site)] == [released]
    recorded = review(released, privacy_officer, CONCERNS, "  Asked the ED to confirm receipt.  ")
    stored = EmergencyReview.objects.get()
    assert stored == recorded
    assert (stored.emergency, stored.site, stored.by) == (
        released,
        released.site,
        privacy_officer,
    )
    assert (stored.finding, stored.note) == (CONCERNS, "Asked the ED to confirm receipt.")
    assert stored.at >= released.released_at
    assert emergencies_awaiting_review(site=released.site) == []


@pytest.mark.parametrize("who", ["clinician", "front_desk", "director", "other_site_officer"])
def test_only_the_privacy_officer_of_that_site_may_review(request, released, who):
    with pytest.raises(ReleaseError) as info:
        review(released, request.getfixturevalue(who))
    assert info.value.code == "not_privacy_officer"
    assert not EmergencyReview.objects.exists()


def test_a_superuser_without_the_role_may_not_review(released, site):
    root = make_staff(site=site, roles=[], username="root", is_superuser=True, is_staff=True)
    with pytest.raises(ReleaseError) as info:
        review(released, root)
    assert info.value.code == "not_privacy_officer"


def test_the_one_who_released_it_never_reviews_it(person, provider, privacy_officer, site):
    by_officer = services.emergency_release(
        site=site,
        person=person,
        recipient=provider,
        personnel_name="Dr. Lee",
        reason="Overdose in the waiting room, taken by ambulance",
        scope=[Scope.MEDICATIONS],
        by=privacy_officer,
    )
    with pytest.raises(ReleaseError) as info:
        review(by_officer, privacy_officer)
    assert info.value.code == "own_release"
    second_officer = make_staff(site=site, roles=[roles.PRIVACY_OFFICER], username="po2")
    assert review(by_officer, second_officer).by == second_officer


@pytest.mark.parametrize(
    ("finding", "note", "code"),
    [
        (CONCERNS, "", "note_required"),
        (EmergencyReview.Finding.NOT_APPROPRIATE, "   ", "note_required"),
        ("fine", "", "unknown_finding"),
        (APPROPRIATE, "x" * 2001, "note_too_long"),
    ],
)
def test_a_review_needs_a_known_finding_and_a_note_for_concerns(
    released, privacy_officer, finding, note, code
):
    with pytest.raises(ReleaseError) as info:
        review(released, privacy_officer, finding, note)
    assert info.value.code == code
    assert not EmergencyReview.objects.exists()


def test_a_release_is_reviewed_once(released, privacy_officer, site):
    review(released, privacy_officer)
    other = make_staff(site=site, roles=[roles.PRIVACY_OFFICER], username="po2")
    with pytest.raises(ReleaseError) as info:
        review(released, other, CONCERNS, "Second thoughts.")
    assert info.value.code == "already_reviewed"
    assert EmergencyReview.objects.count() == 1


def test_a_recorded_review_is_never_changed_or_deleted(released, privacy_officer):
    recorded = review(released, privacy_officer)
    with pytest.raises(DatabaseError), transaction.atomic():
        EmergencyReview.objects.filter(pk=recorded.pk).update(finding=CONCERNS, note="edited")
    with pytest.raises(DatabaseError), transaction.atomic():
        EmergencyReview.objects.filter(pk=recorded.pk).delete()
    stored = EmergencyReview.objects.get()
    assert (stored.finding, stored.note) == (APPROPRIATE, "")


# --- due, overdue, and nothing blocked ----------------------------------------------------------


def test_a_review_is_due_within_the_set_hours_then_overdue(released, settings):
    assert review_hours() == 72
    (status,) = emergencies_awaiting_review(site=released.site)
    assert status.due == released.released_at + dt.timedelta(hours=72)
    assert not status.overdue
    later = released.released_at + dt.timedelta(hours=72, minutes=1)
    (status,) = emergencies_awaiting_review(site=released.site, now=later)
    assert status.overdue
    settings.EMERGENCY_REVIEW_HOURS = 4
    soon = released.released_at + dt.timedelta(hours=4, minutes=1)
    (status,) = emergencies_awaiting_review(site=released.site, now=soon)
    assert status.overdue and status.due == released.released_at + dt.timedelta(hours=4)


def test_an_overdue_review_blocks_no_emergency_release(released, person, provider, clinician):
    with clock_at(released.released_at + dt.timedelta(days=10)):
        again = services.emergency_release(
            site=person.site,
            person=person,
            recipient=provider,
            personnel_name="Dr. Ana Ruiz",
            reason="Seizure at the clinic",
            scope=[Scope.MEDICATIONS],
            by=clinician,
        )
    assert again.pk != released.pk
    assert EmergencyRelease.objects.count() == 2


def test_the_privacy_officers_home_shows_awaiting_and_highlights_overdue(
    client, released, privacy_officer
):
    client.force_login(privacy_officer)
    page = client.get(reverse("releases:home")).content.decode()
    assert 'data-testid="emergencies-awaiting-review"' in page
    assert f"Emergency release {released.pk} · Robin Quill" in page
    assert "Awaiting review" in page and 'data-testid="review-overdue"' not in page
    assert 'class="card escalated" aria-labelledby="emergency-heading"' not in page
    review(released, privacy_officer)
    done = client.get(reverse("releases:home")).content.decode()
    assert 'data-testid="emergencies-awaiting-review"' not in done


def test_an_overdue_review_is_highlighted_on_the_privacy_officers_home(
    client, late, privacy_officer
):
    client.force_login(privacy_officer)
    page = client.get(reverse("releases:home")).content.decode()
    assert 'data-testid="review-overdue"' in page
    assert 'class="card escalated" aria-labelledby="emergency-heading"' in page
    assert f"Emergency release {late.pk} · Robin Quill" in page


def test_the_director_sees_overdue_reviews_without_names(client, late, director):
    released = late
    client.force_login(director)
    response = client.get(reverse("releases:emergency_reviews"))
    page = response.content.decode()
    assert response.status_code == 200
    assert "1 overdue" in page and 'data-testid="review-overdue"' in page
    assert f"Emergency release {released.pk}" in page
    for private in ("Robin Quill", "Unresponsive", "Dr. Ana Ruiz"):
        assert private not in page
    assert reverse("releases:emergency_detail", args=[released.pk]) not in page


# --- the pages ----------------------------------------------------------------------------------


def test_the_privacy_officer_reviews_through_the_page(client, released, privacy_officer):
    client.force_login(privacy_officer)
    detail = reverse("releases:emergency_detail", args=[released.pk])
    page = client.get(detail).content.decode()
    assert "Record the review" in page
    url = reverse("releases:emergency_review", args=[released.pk])
    bad = client.post(url, {"finding": CONCERNS, "note": ""})
    assert bad.status_code == 400
    assert "Please say in the note what the concerns are" in bad.content.decode()
    assert not EmergencyReview.objects.exists()
    response = client.post(url, {"finding": CONCERNS, "note": "Confirmed with the ED."})
    assert response.status_code == 302 and response.url == detail
    assert messages_of(response) == ["The review is recorded."]
    shown = client.get(detail).content.decode()
    assert "Confirmed with the ED." in shown and "Record the review" not in shown
    again = client.post(url, {"finding": APPROPRIATE, "note": ""})
    assert again.status_code == 302
    assert "already been reviewed" in " ".join(messages_of(again))
    assert EmergencyReview.objects.count() == 1


@pytest.mark.parametrize(
    ("persona", "status"),
    [
        ("anonymous", 302),
        ("front_desk", 403),
        ("clinician", 403),
        ("director", 403),
        ("other_site_clinician", 403),
    ],
)
def test_review_page_permissions(client, login, released, persona, status):
    login(persona)
    response = client.post(
        reverse("releases:emergency_review", args=[released.pk]), {"finding": APPROPRIATE}
    )
    assert response.status_code == status
    assert not EmergencyReview.objects.exists()


def test_another_sites_privacy_officer_gets_404(client, released, other_site_officer):
    client.force_login(other_site_officer)
    response = client.post(
        reverse("releases:emergency_review", args=[released.pk]), {"finding": APPROPRIATE}
    )
    assert response.status_code == 404
    assert not EmergencyReview.objects.exists()


def test_the_releaser_sees_no_review_form(client, person, provider, privacy_officer, site):
    by_officer = services.emergency_release(
        site=site,
        person=person,
        recipient=provider,
        personnel_name="Dr. Lee",
        reason="Collapsed",
        scope=[Scope.MEDICATIONS],
        by=privacy_officer,
    )
    client.force_login(privacy_officer)
    page = client.get(reverse("releases:emergency_detail", args=[by_officer.pk])).content.decode()
    assert "Record the review" not in page
    assert "another privacy officer of the site reviews it" in page
    response = client.post(
        reverse("releases:emergency_review", args=[by_officer.pk]), {"finding": APPROPRIATE}
    )
    assert response.status_code == 302
    assert not EmergencyReview.objects.exists()


@pytest.mark.parametrize(
    ("persona", "status"),
    [("front_desk", 403), ("clinician", 403), ("director", 200), ("privacy_officer", 200)],
)
def test_the_review_list_is_the_privacy_officers_and_the_directors(
    client, login, released, persona, status
):
    login(persona)
    assert client.get(reverse("releases:emergency_reviews")).status_code == status


def test_review_post_only(client, released, privacy_officer):
    client.force_login(privacy_officer)
    assert client.get(reverse("releases:emergency_review", args=[released.pk])).status_code == 405


# --- a medical recipient, as before -------------------------------------------------------------


@pytest.mark.parametrize("category", [Category.HEALTH_PLAN, Category.FAMILY_FRIEND, Category.OTHER])
def test_an_emergency_release_names_a_registered_medical_recipient(
    person, clinician, site, category
):
    other = make_recipient(site=site, category=category, organisation=f"Not medical {category}")
    with pytest.raises(ReleaseError) as info:
        services.emergency_release(
            site=site,
            person=person,
            recipient=other,
            personnel_name="Someone",
            reason="Collapsed",
            scope=[Scope.MEDICATIONS],
            by=clinician,
        )
    assert info.value.code == "emergency_not_medical"
    assert DisclosureLog.objects.get().reason == "emergency_not_medical"
    with pytest.raises(ReleaseError) as info:
        services.emergency_release(
            site=site,
            person=person,
            recipient=None,
            personnel_name="A free-text person",
            reason="Collapsed",
            scope=[Scope.MEDICATIONS],
            by=clinician,
        )
    assert info.value.code == "unknown_recipient"
    assert not EmergencyRelease.objects.exists()
