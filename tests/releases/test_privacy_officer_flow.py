"""The privacy officer's releases as really used: a request asking for more than the consent
covers is flagged item by item when it is made (and can be corrected); the person who asked
is never one of the two approvers; a packet leaves only after a confirmation that records how
and to whom (append-only); and no label says "(optional)" twice."""

import pytest
from django.db import DatabaseError, transaction
from django.urls import reverse

from clinic import roles
from releases.errors import ReleaseError
from releases.models import DisclosureLog, HandOver, ReleasePacket, ReleaseRequest, Scope
from releases.services import outgoing as services
from tests.factories import make_staff
from tests.helpers import messages_of
from tests.releases.factories import HANDED, approve, make_consent, make_request, revoke
from tests.releases.outgoing_data import drug_court, make_record

pytestmark = pytest.mark.django_db

ATT = [Scope.ATTENDANCE]


@pytest.fixture
def person(site):
    return make_record(site=site).person


@pytest.fixture
def court(site):
    return drug_court(site)


@pytest.fixture
def consent(person, court):
    return make_consent(person=person, recipients=[court], purposes=["attendance"], scope=ATT)


def asking(person, court, scope, purpose="attendance"):
    return reverse("releases:outgoing_new", args=[person.pk]), {
        "recipient": court.pk,
        "purpose": purpose,
        "scope": scope,
        "note": "Letter for Friday's hearing",
    }


# --- a request for more than the consent covers -----------------------------------------------


def test_items_the_consent_does_not_cover_are_named_when_asking_and_nothing_is_saved(
    client, person, court, consent, clinician
):
    client.force_login(clinician)
    url, data = asking(person, court, ["attendance", "tox", "medications"])
    response = client.post(url, data)
    assert response.status_code == 200
    body = response.content.decode()
    assert "does not cover: Medications, Tox-screen results" in body
    assert not ReleaseRequest.objects.exists()
    assert "Letter for Friday&#x27;s hearing" in body  # nothing typed is lost
    # Corrected (what the consent covers): saved.
    response = client.post(url, {**data, "scope": ["attendance"]})
    assert response.status_code == 302
    assert ReleaseRequest.objects.get().scope == ["attendance"]


def test_no_consent_for_the_recipient_or_purpose_is_said_when_asking(
    client, person, court, consent, clinician
):
    client.force_login(clinician)
    url, data = asking(person, court, ["attendance"], purpose="sentencing report")
    body = client.post(url, data).content.decode()
    assert "The consent does not cover this purpose." in body
    assert not ReleaseRequest.objects.exists()


def test_coverage_is_judged_by_one_consent_never_two_combined(person, court, clinician):
    make_consent(person=person, recipients=[court], purposes=["attendance"], scope=ATT)
    make_consent(person=person, recipients=[court], purposes=["attendance"], scope=[Scope.TOX])
    reason, uncovered = services.request_coverage(
        person=person, recipient=court, purpose="attendance", scope=["attendance", "tox"]
    )
    assert reason == ""
    assert len(uncovered) == 1  # either one alone leaves the other out, as the gate would


# --- who approves -------------------------------------------------------------------------------


def test_the_person_who_asked_cannot_approve_their_own_request(
    client, person, court, consent, privacy_officer
):
    request = services.release_request_create(
        site=person.site, person=person, recipient=court, purpose="attendance", scope=ATT,
        by=privacy_officer,
    )  # fmt: skip
    with pytest.raises(ReleaseError) as info:
        services.release_approve(request=request, by=privacy_officer)
    assert info.value.code == "own_request"
    assert "two other staff members" in info.value.message
    assert not request.approvals.exists()
    client.force_login(privacy_officer)
    page = client.get(reverse("releases:outgoing_detail", args=[request.pk])).content.decode()
    assert "Approve this request" not in page
    response = client.post(reverse("releases:outgoing_approve", args=[request.pk]), follow=True)
    assert "you cannot approve it" in " ".join(messages_of(response))
    assert not request.approvals.exists()


def test_two_people_other_than_the_one_who_asked_are_enough(
    person, court, consent, clinician, second_clinician, privacy_officer
):
    request = services.release_request_create(
        site=person.site, person=person, recipient=court, purpose="attendance", scope=ATT,
        by=clinician,
    )  # fmt: skip
    services.release_approve(request=request, by=privacy_officer)
    services.release_approve(request=request, by=second_clinician)
    assert services.packet_generate(request=request, by=clinician).pk


# --- handing over -------------------------------------------------------------------------------


@pytest.fixture
def packet(person, court, consent, clinician, second_clinician, privacy_officer):
    request = services.release_request_create(
        site=person.site, person=person, recipient=court, purpose="attendance", scope=ATT,
        by=make_staff(site=person.site, roles=[roles.CLINICIAN]),
    )  # fmt: skip
    services.release_approve(request=request, by=privacy_officer)
    services.release_approve(request=request, by=second_clinician)
    return services.packet_generate(request=request, by=clinician)


def test_hand_over_asks_for_confirmation_first_and_hands_nothing_over(client, packet, clinician):
    client.force_login(clinician)
    detail = reverse("releases:outgoing_detail", args=[packet.request_id])
    url = reverse("releases:packet_hand_over", args=[packet.pk])
    assert f'href="{url}"' in client.get(detail).content.decode()  # a link, not a one-click post
    page = client.get(url)
    assert page.status_code == 200
    body = page.content.decode()
    assert "Confirm: hand it over" in body and "County Drug Court" in body
    packet.refresh_from_db()
    assert packet.handed_over_at is None
    assert not DisclosureLog.objects.filter(path="packet_hand_over").exists()


def test_hand_over_without_how_or_to_whom_is_refused_with_a_message(client, packet, clinician):
    client.force_login(clinician)
    url = reverse("releases:packet_hand_over", args=[packet.pk])
    response = client.post(url, {"handed_to": "  ", "note": "At the window"})
    body = response.content.decode()
    assert response.status_code == 200
    assert "Please choose how it is delivered." in body
    assert "Please say to whom it is handed, or where it is sent." in body
    assert "At the window" in body
    packet.refresh_from_db()
    assert packet.handed_over_at is None
    assert not HandOver.objects.exists()


def test_confirmed_hand_over_records_how_to_whom_who_and_when(client, packet, clinician):
    client.force_login(clinician)
    url = reverse("releases:packet_hand_over", args=[packet.pk])
    response = client.post(url, {"how": "fax", "handed_to": "Drug court clerk, 555-0100"})
    assert response.status_code == 302
    packet.refresh_from_db()
    record = HandOver.objects.get()
    assert (record.packet, record.by, record.how, record.handed_to) == (
        packet, clinician, "fax", "Drug court clerk, 555-0100"
    )  # fmt: skip
    assert record.at == packet.handed_over_at
    detail = client.get(response.url).content.decode()
    assert "By fax — Drug court clerk, 555-0100" in detail
    # Once handed over, the confirmation is not offered again.
    assert client.get(url).status_code == 302


def test_the_hand_over_record_is_append_only(packet, clinician):
    services.packet_hand_over(packet=packet, by=clinician, **HANDED)
    record = HandOver.objects.get()
    for change in (
        lambda: HandOver.objects.filter(pk=record.pk).update(handed_to="someone else"),
        lambda: HandOver.objects.filter(pk=record.pk).delete(),
    ):
        with pytest.raises(DatabaseError), transaction.atomic():
            change()
    assert HandOver.objects.get().handed_to == HANDED["handed_to"]


def test_a_void_packet_records_no_hand_over(packet, clinician, consent):
    revoke(consent)
    with pytest.raises(ReleaseError):
        services.packet_hand_over(packet=packet, by=clinician, **HANDED)
    assert not HandOver.objects.exists()
    assert ReleasePacket.objects.get().voided_at is not None


# --- labels -------------------------------------------------------------------------------------


def test_no_label_says_optional_twice(client, person, front_desk):
    client.force_login(front_desk)
    body = client.get(reverse("releases:consent_hold", args=[person.pk])).content.decode()
    assert "What they said" in body
    assert body.count("(optional)") == 1


def test_the_gate_does_not_count_an_approval_by_the_person_who_asked(
    person, court, consent, clinician, privacy_officer
):
    """However the approval got there (an import, the database), the gate refuses it."""
    request = make_request(person=person, recipient=court, by=privacy_officer)
    approve(request, by=privacy_officer, as_privacy_officer=True)
    approve(request, by=clinician, as_privacy_officer=False)
    with pytest.raises(ReleaseError) as info:
        services.packet_generate(request=request, by=clinician)
    assert info.value.code == "approver_is_requester"
    assert "does not count" in info.value.message
    assert not ReleasePacket.objects.exists()
    assert DisclosureLog.objects.get().reason == "approver_is_requester"
