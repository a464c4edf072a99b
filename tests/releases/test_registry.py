"""The privacy officer's registry: who may open it, adding, deactivating, recategorising."""

import pytest
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from clinic import roles
from releases.errors import ReleaseError
from releases.models import Category, Recipient, RecipientCategoryChange, RecipientStatusChange
from releases.services.registry import (
    recipient_add,
    recipient_deactivate,
    recipient_recategorise,
)
from tests.factories import PersonFactory, make_staff
from tests.helpers import assert_login_redirect


@pytest.fixture
def other_site_officer(other_site):
    return make_staff(site=other_site, roles=[roles.PRIVACY_OFFICER], username="oscar")


@pytest.fixture
def superuser_no_site(db):
    return make_staff(site=None, roles=[], username="root", is_superuser=True, is_staff=True)


@pytest.fixture
def superuser_member(site):
    return make_staff(site=site, roles=[], username="rootsite", is_superuser=True, is_staff=True)


@pytest.fixture
def court(site, privacy_officer):
    return recipient_add(
        site=site,
        by=privacy_officer,
        organisation="County Court",
        office="Drug court unit",
        category=Category.DRUG_COURT,
    )


def test_privacy_officer_adds_recipient_through_the_page(client, privacy_officer, site):
    client.force_login(privacy_officer)
    response = client.post(
        reverse("releases:recipient_new"),
        {"organisation": "Eastside Clinic", "category": Category.TREATMENT_PROVIDER},
    )
    recipient = Recipient.objects.get(organisation="Eastside Clinic")
    assert response.status_code == 302
    assert recipient.site == site
    assert recipient.created_by == privacy_officer


@pytest.mark.parametrize(
    ("persona", "expected"),
    [
        ("front_desk", 403),
        ("clinician", 403),
        ("director", 403),
        ("superuser_no_site", 403),
        ("superuser_member", 403),
        ("other_site_officer", 200),  # their own site's (empty) registry
        ("privacy_officer", 200),
    ],
)
def test_registry_list_permission_matrix(request, client, court, persona, expected):
    client.force_login(request.getfixturevalue(persona))
    response = client.get(reverse("releases:recipients"))
    assert response.status_code == expected
    if persona == "other_site_officer":
        assert "County Court" not in response.content.decode()


@pytest.mark.parametrize(
    "name",
    ["home", "recipients", "recipient_new", "incoming_list", "incoming_new"],
)
def test_anonymous_is_sent_to_login(client, db, name):
    assert_login_redirect(client.get(reverse(f"releases:{name}")))


@pytest.mark.parametrize(
    ("name", "method"),
    [
        ("recipient", "get"),
        ("recipient_deactivate", "post"),
        ("recipient_recategorise", "post"),
    ],
)
def test_other_site_officer_gets_404_for_our_recipient(
    client, court, other_site_officer, name, method
):
    client.force_login(other_site_officer)
    response = getattr(client, method)(reverse(f"releases:{name}", args=[court.pk]))
    assert response.status_code == 404
    court.refresh_from_db()
    assert court.is_active


@pytest.mark.parametrize("persona", ["clinician", "front_desk", "director", "superuser_member"])
def test_only_privacy_officer_may_post_to_registry(request, client, court, persona):
    client.force_login(request.getfixturevalue(persona))
    response = client.post(
        reverse("releases:recipient_recategorise", args=[court.pk]),
        {"to_category": Category.TREATMENT_PROVIDER, "reason": "x"},
    )
    assert response.status_code == 403
    assert not RecipientCategoryChange.objects.exists()


def test_criminal_legal_recipient_must_name_office_or_person(site, privacy_officer):
    with pytest.raises(ReleaseError) as caught:
        recipient_add(
            site=site, by=privacy_officer, organisation="Any Court", category=Category.COURT
        )
    assert caught.value.code == "criminal_legal_unspecific"
    assert not Recipient.objects.exists()


def test_unknown_category_is_refused(site, privacy_officer):
    with pytest.raises(ReleaseError) as caught:
        recipient_add(site=site, by=privacy_officer, organisation="X", category="friendly_court")
    assert caught.value.code == "unknown_category"


def test_superuser_member_cannot_recategorise_court_as_treatment_provider(court, superuser_member):
    with pytest.raises(ReleaseError) as caught:
        recipient_recategorise(
            recipient=court,
            to_category=Category.TREATMENT_PROVIDER,
            by=superuser_member,
            reason="x",
        )
    assert caught.value.code == "not_privacy_officer"
    assert court.current_category == Category.DRUG_COURT


def test_category_column_cannot_be_changed_directly(court):
    with pytest.raises(IntegrityError), transaction.atomic():
        Recipient.objects.filter(pk=court.pk).update(category=Category.TREATMENT_PROVIDER)


def test_recategorise_records_change_and_recipient_stays_criminal_legal(
    client, court, privacy_officer
):
    client.force_login(privacy_officer)
    response = client.post(
        reverse("releases:recipient_recategorise", args=[court.pk]),
        {"to_category": Category.TREATMENT_PROVIDER, "reason": "Wrongly entered"},
    )
    assert response.status_code == 302
    change = RecipientCategoryChange.objects.get()
    assert (change.from_category, change.to_category, change.by) == (
        Category.DRUG_COURT,
        Category.TREATMENT_PROVIDER,
        privacy_officer,
    )
    court.refresh_from_db()
    assert court.current_category == Category.TREATMENT_PROVIDER
    assert court.is_criminal_legal


def test_recategorise_needs_a_reason(court, privacy_officer):
    with pytest.raises(ReleaseError) as caught:
        recipient_recategorise(
            recipient=court, to_category=Category.OTHER, by=privacy_officer, reason="  "
        )
    assert caught.value.code == "reason_required"
    assert not RecipientCategoryChange.objects.exists()


def test_deactivate_recipient(client, court, privacy_officer, site):
    client.force_login(privacy_officer)
    response = client.post(
        reverse("releases:recipient_deactivate", args=[court.pk]), {"reason": "Court closed"}
    )
    assert response.status_code == 302
    court.refresh_from_db()
    assert not court.is_active
    with pytest.raises(ReleaseError):
        recipient_deactivate(recipient=court, by=privacy_officer, reason="again")


def test_deactivation_is_stored_with_who_when_why_and_shown(client, court, privacy_officer):
    before = timezone.now()
    change = recipient_deactivate(recipient=court, by=privacy_officer, reason="Court merged")
    stored = RecipientStatusChange.objects.get(recipient=court)
    assert stored == change
    assert (stored.is_active, stored.by, stored.reason) == (False, privacy_officer, "Court merged")
    assert before <= stored.at <= timezone.now()
    client.force_login(privacy_officer)
    page = client.get(reverse("releases:recipient", args=[court.pk])).content.decode()
    assert "Taken out of use" in page and "Court merged" in page
    assert privacy_officer.get_username() in page


def test_deactivation_needs_a_reason_and_changes_nothing_without_one(
    client, court, privacy_officer
):
    with pytest.raises(ReleaseError) as info:
        recipient_deactivate(recipient=court, by=privacy_officer, reason="  ")
    assert info.value.code == "reason_required"
    client.force_login(privacy_officer)
    response = client.post(reverse("releases:recipient_deactivate", args=[court.pk]), {})
    assert response.status_code == 400
    assert "Please say why it goes out of use." in response.content.decode()
    court.refresh_from_db()
    assert court.is_active
    assert not RecipientStatusChange.objects.exists()


def test_home_shows_escalated_requests_first(client, site, privacy_officer):
    from releases.services.incoming import incoming_log

    incoming_log(
        site=site, by=privacy_officer, kind="letter", from_text="Probation", about_text="A"
    )
    incoming_log(
        site=site, by=privacy_officer, kind="court_order", from_text="Circuit Court", about_text="B"
    )
    PersonFactory(site=site, name="Jo")
    client.force_login(privacy_officer)
    body = client.get(reverse("releases:home")).content.decode()
    assert "Escalated" in body
    assert body.index("Circuit Court") < body.index("Probation")


def test_nav_link_only_for_privacy_officer(client, privacy_officer, clinician):
    client.force_login(privacy_officer)
    assert reverse("releases:home") in client.get(reverse("releases:home")).content.decode()
    client.force_login(clinician)
    assert reverse("releases:home") not in client.get(reverse("home"), follow=True).content.decode()


@pytest.fixture
def every_page(site, privacy_officer, court):
    """Every privacy-officer URL of this area, with objects of `site` behind them."""
    from releases.services.incoming import incoming_log
    from tests.releases.test_consents import make_consent

    person = PersonFactory(site=site, name="Maria Lopez")
    consent = make_consent(person, site, privacy_officer, [court])
    incoming = incoming_log(
        site=site, by=privacy_officer, kind="call", from_text="Officer B", about_text="M"
    )
    return {
        "home": [],
        "recipients": [],
        "recipient_new": [],
        "recipient": [court.pk],
        "person_consents": [person.pk],
        "consent_new": [person.pk],
        "consent": [consent.pk],
        "consent_print": [consent.pk],
        "incoming_list": [],
        "incoming_new": [],
        "incoming": [incoming.pk],
        "incoming_reply": [incoming.pk],
    }


OBJECT_PAGES = {
    "recipient",
    "person_consents",
    "consent_new",
    "consent",
    "consent_print",
    "incoming",
    "incoming_reply",
}


@pytest.mark.parametrize(
    "persona",
    [
        "anonymous",
        "front_desk",
        "clinician",
        "director",
        "privacy_officer",
        "other_site_officer",
        "superuser_no_site",
        "superuser_member",
    ],
)
def test_permission_matrix_for_every_page(request, client, every_page, persona):
    user = None if persona == "anonymous" else request.getfixturevalue(persona)
    if user is not None:
        client.force_login(user)
    for name, args in every_page.items():
        response = client.get(reverse(f"releases:{name}", args=args))
        if persona == "anonymous":
            assert_login_redirect(response)
        elif persona == "privacy_officer":
            assert response.status_code == 200, name
        elif persona == "other_site_officer":
            assert response.status_code == (404 if name in OBJECT_PAGES else 200), name
        else:
            assert response.status_code == 403, (persona, name)


@pytest.mark.parametrize("name", ["recipient_deactivate", "recipient_recategorise"])
def test_post_only_pages_refuse_get(client, court, privacy_officer, name):
    client.force_login(privacy_officer)
    assert client.get(reverse(f"releases:{name}", args=[court.pk])).status_code == 405
