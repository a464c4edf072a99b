"""An oral revocation from any staff member: "they told me they take back their consent".

RELEASES.md: an oral revocation places an immediate hold until written. Front desk and
clinicians can place it from the person's page; the privacy officer from the consents list,
then records the written follow-up.
"""

import pytest
from django.test import Client
from django.urls import reverse

from clinic import roles
from releases import gate
from releases.errors import ReleaseError
from releases.models import DisclosureLog, Revocation, Scope
from releases.services import outgoing
from releases.services.consents import consent_hold_place, consent_revoke
from tests.factories import make_staff
from tests.helpers import PERSONAS, assert_login_redirect, messages_of
from tests.releases.factories import (
    HANDED,
    approve_twice,
    make_consent,
    make_person,
    make_recipient,
    make_request,
    revoke,
)
from tests.releases.outgoing_data import drug_court

pytestmark = pytest.mark.django_db


@pytest.fixture
def person(site):
    return make_person(site=site, name="Jordan")


@pytest.fixture
def court(site):
    return drug_court(site)


@pytest.fixture
def consents(person, court, site):
    provider = make_recipient(site=site, category="treatment_provider")
    return [
        make_consent(person=person, recipients=[court]),
        make_consent(person=person, recipients=[provider], purposes=["care"]),
    ]


def url(person):
    return reverse("releases:consent_hold", args=[person.pk])


def test_front_desk_hold_stops_the_next_release_at_once(
    client, person, court, consents, front_desk, clinician
):
    request = make_request(person=person, recipient=court, by=clinician)
    approve_twice(request, site=person.site)
    client.force_login(front_desk)
    response = client.post(url(person), {"note": "Said at the desk: take it all back"})
    assert response.status_code == 302
    assert response.url == reverse("visits:person", args=[person.pk])
    held = Revocation.objects.filter(consent__person=person)
    assert {(r.how, r.taken_by) for r in held} == {(Revocation.How.ORAL, front_desk)}
    assert held.count() == 2
    # The gate refuses the very next release: no packet.
    with pytest.raises(ReleaseError) as info:
        outgoing.packet_generate(request=request, by=clinician)
    assert info.value.code == "held_oral_revocation"
    row = DisclosureLog.objects.get(path="packet_generate")
    assert (row.decision, row.reason) == (gate.HELD, "held_oral_revocation")


def test_hold_voids_a_packet_prepared_before_it(person, court, consents, front_desk, clinician):
    request = make_request(person=person, recipient=court, by=clinician)
    approve_twice(request, site=person.site)
    packet = outgoing.packet_generate(request=request, by=clinician)
    consent_hold_place(person=person, site=person.site, by=front_desk)
    with pytest.raises(ReleaseError) as info:
        outgoing.packet_hand_over(packet=packet, by=clinician, **HANDED)
    assert info.value.code == "held_oral_revocation"
    packet.refresh_from_db()
    assert packet.voided_at is not None and packet.handed_over_at is None


def test_privacy_officer_then_records_the_written_revocation(
    person, consents, front_desk, privacy_officer
):
    consent_hold_place(person=person, site=person.site, by=front_desk)
    consent = consents[1]  # to a treatment provider, for "care"
    provider = consent.recipients.get()
    held = gate.release_decide(
        person=person, recipient=provider, purpose="care", scope=["attendance"]
    )
    assert (held.decision, held.reason) == (gate.HELD, "held_oral_revocation")
    written = consent_revoke(
        consent=consent, by=privacy_officer, how="written", received_on=consent.signed_on
    )
    assert written.how == Revocation.How.WRITTEN
    decision = gate.release_decide(
        person=person, recipient=provider, purpose="care", scope=["attendance"]
    )
    assert (decision.decision, decision.reason) == (gate.REFUSED, "revoked")


def test_consents_already_held_or_revoked_are_left_as_they_are(person, consents, clinician):
    revoke(consents[0], how=Revocation.How.WRITTEN)
    held = consent_hold_place(person=person, site=person.site, by=clinician, note="by phone")
    assert [r.consent for r in held] == [consents[1]]
    assert consent_hold_place(person=person, site=person.site, by=clinician) == []


def test_the_page_says_the_same_whether_or_not_there_is_a_consent(client, site, front_desk):
    nobody = make_person(site=site, name="Sky")
    client.force_login(front_desk)
    page = client.get(url(nobody)).content.decode()
    assert "consent 1" not in page.lower()
    response = client.post(url(nobody), {"note": ""}, follow=True)
    assert "Nothing more about Sky is released" in " ".join(messages_of(response))
    assert not Revocation.objects.exists()


def test_the_hold_needs_the_csrf_token(person, consents, front_desk):
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(front_desk)
    assert csrf_client.post(url(person), {"note": "x"}).status_code == 403
    assert not Revocation.objects.exists()


def test_the_hold_refuses_get_writes(client, person, consents, front_desk):
    client.force_login(front_desk)
    assert client.get(url(person)).status_code == 200
    assert not Revocation.objects.exists()
    assert client.put(url(person)).status_code == 405


EXPECTED = {
    "anonymous": "login",
    "front_desk": 302,
    "clinician": 302,
    "director": 403,
    "privacy_officer": 302,
    "other_site_clinician": 404,
}


@pytest.mark.parametrize("persona", PERSONAS)
def test_who_may_place_a_hold(client, login, person, consents, persona):
    login(persona)
    response = client.post(url(person), {"note": "take it back"})
    expected = EXPECTED[persona]
    if expected == "login":
        assert_login_redirect(response)
    else:
        assert response.status_code == expected, persona
    held = Revocation.objects.exists()
    assert held == (expected == 302), persona


def test_a_superuser_without_a_role_cannot_use_the_page(client, person, consents, site):
    from tests.factories import UserFactory

    boss = UserFactory(is_superuser=True, is_staff=True)
    client.force_login(boss)
    assert client.post(url(person), {"note": "x"}).status_code == 403


def test_the_person_page_offers_the_hold_to_front_desk(client, person, front_desk):
    client.force_login(front_desk)
    page = client.get(reverse("visits:person", args=[person.pk])).content.decode()
    assert url(person) in page


def test_the_consents_list_offers_the_hold_to_the_privacy_officer(
    client, person, consents, privacy_officer
):
    client.force_login(privacy_officer)
    page = client.get(reverse("releases:person_consents", args=[person.pk])).content.decode()
    assert url(person) in page
    response = client.post(url(person), {"note": "called in"})
    assert response.url == reverse("releases:person_consents", args=[person.pk])
    statuses = client.get(reverse("releases:person_consents", args=[person.pk])).content.decode()
    assert statuses.count("On hold (oral revocation)") == 2


def test_a_staff_member_of_another_site_cannot_hold_through_the_service(
    person, consents, other_site
):
    stranger = make_staff(site=other_site, roles=[roles.CLINICIAN])
    with pytest.raises(ReleaseError) as info:
        consent_hold_place(person=person, site=person.site, by=stranger)
    assert info.value.code == "not_allowed"
    assert not Revocation.objects.exists()


def test_the_hold_leaves_the_scope_check_unchanged_for_other_people(site, court, front_desk):
    # Holding one person's consents never touches anyone else's.
    one, two = make_person(site=site), make_person(site=site)
    make_consent(person=one, recipients=[court])
    theirs = make_consent(person=two, recipients=[court])
    consent_hold_place(person=one, site=site, by=front_desk)
    assert not theirs.revocations.exists()
    assert Scope.ATTENDANCE in theirs.scope
