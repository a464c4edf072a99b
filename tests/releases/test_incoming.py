"""Requests from outside never release anything; the neutral reply says nothing about anyone."""

import re
from datetime import date, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from clinic import roles
from clinic.models import AccessLog
from releases.errors import ReleaseError
from releases.gate import release_decide
from releases.models import Category, DisclosureLog, IncomingRequest, ReleasePacket, Scope
from releases.services.incoming import incoming_log
from releases.services.registry import recipient_add
from tests.factories import PersonFactory, make_staff
from tests.releases.test_consents import make_consent
from visits.services.visits import visit_open_direct

RECEIVED = timezone.now() - timedelta(hours=2)


@pytest.fixture
def prosecutor(site, privacy_officer):
    return recipient_add(
        site=site,
        by=privacy_officer,
        organisation="County Prosecutor",
        office="Narcotics unit",
        category=Category.PROSECUTOR,
    )


@pytest.fixture
def known_person(site, clinician, privacy_officer):
    """A patient with a name, a date of birth, visits and a treatment-provider consent only."""
    person = PersonFactory(site=site, name="Maria Lopez", date_of_birth=date(1980, 5, 17))
    visit_open_direct(
        site=site,
        by=clinician,
        origin="quick",
        person=person,
        priorities="Wound on left forearm healing",
        note="Talked about naloxone",
    )
    provider = recipient_add(
        site=site, by=privacy_officer, organisation="Eastside Clinic", category="treatment_provider"
    )
    make_consent(person, site, privacy_officer, [provider])
    return person


def _text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


def test_adversarial_1_subpoena_with_treatment_consent_only_releases_nothing(
    client, site, privacy_officer, prosecutor, known_person
):
    client.force_login(privacy_officer)
    response = client.post(
        reverse("releases:incoming_new"),
        {
            "kind": "subpoena",
            "from_recipient": prosecutor.pk,
            "from_text": "County Prosecutor, Narcotics unit",
            "about_text": "Maria Lopez, born 17 May 1980",
            "asks_for": "All records, tox results and visit notes",
        },
    )
    assert response.status_code == 302
    incoming = IncomingRequest.objects.get()
    # Logged with a reason code; nothing granted, no packet anywhere.
    log = DisclosureLog.objects.get()
    assert (log.decision, log.reason, log.path) == (
        "refused",
        "no_release_on_request",
        "incoming_request",
    )
    assert log.recipient == prosecutor
    assert log.recipient_category == Category.PROSECUTOR
    assert log.legal_basis.startswith(f"incoming {incoming.pk}")
    assert not DisclosureLog.objects.filter(decision="granted").exists()
    assert not ReleasePacket.objects.exists()
    # The gate agrees: the treatment-provider consent does not reach the prosecutor.
    decision = release_decide(
        person=known_person, recipient=prosecutor, purpose="subpoena", scope=[Scope.ATTENDANCE]
    )
    assert not decision.granted
    # The neutral reply.
    reply = _text(client.get(reverse("releases:incoming_reply", args=[incoming.pk])))
    assert "neither confirm nor deny" in reply
    assert "42 CFR Part 2" in reply
    assert "written consent" in reply
    for leak in (
        "Maria",
        "Lopez",
        "1980",
        "17 May",
        "05/17",
        "1980-05-17",
        "forearm",
        "naloxone",
        "Eastside",
        "tox",
        "visit",
    ):
        assert leak.lower() not in reply.lower(), leak


def test_neutral_reply_is_identical_for_known_and_unknown_person(
    client, site, privacy_officer, known_person
):
    common = {
        "site": site,
        "by": privacy_officer,
        "kind": "subpoena",
        "from_text": "County Prosecutor",
        "received_at": RECEIVED,
    }
    known = incoming_log(**common, about_text="Maria Lopez, DOB 1980-05-17", person=known_person)
    unknown = incoming_log(**common, about_text="Nobody Atall, DOB 1971-01-01")
    client.force_login(privacy_officer)
    first = client.get(reverse("releases:incoming_reply", args=[known.pk]))
    second = client.get(reverse("releases:incoming_reply", args=[unknown.pk]))
    assert first.status_code == second.status_code == 200
    assert first.content == second.content
    assert b"Maria" not in first.content
    assert b"Nobody" not in second.content


def test_court_order_is_escalated_and_still_releases_nothing(site, privacy_officer, known_person):
    incoming = incoming_log(
        site=site,
        by=privacy_officer,
        kind="court_order",
        from_text="Circuit Court",
        about_text="Maria Lopez",
        person=known_person,
    )
    assert incoming.escalated
    log = DisclosureLog.objects.get()
    assert (log.decision, log.reason, log.person) == (
        "refused",
        "no_release_on_request",
        known_person,
    )
    assert not incoming_log(
        site=site, by=privacy_officer, kind="letter", from_text="Probation", about_text="M"
    ).escalated


@pytest.mark.parametrize(
    ("override", "code"),
    [
        ({"kind": "telepathy"}, "kind_required"),
        ({"from_text": ""}, "from_required"),
        ({"about_text": ""}, "about_required"),
        ({"received_at": timezone.now() + timedelta(days=1)}, "received_future"),
    ],
)
def test_incoming_needs_kind_from_and_about(site, privacy_officer, override, code):
    data = {
        "site": site,
        "by": privacy_officer,
        "kind": "call",
        "from_text": "Officer B",
        "about_text": "M",
    }
    with pytest.raises(ReleaseError) as caught:
        incoming_log(**{**data, **override})
    assert caught.value.code == code
    assert not IncomingRequest.objects.exists()
    assert not DisclosureLog.objects.exists()


def test_reading_an_incoming_request_is_access_logged(client, site, privacy_officer):
    incoming = incoming_log(
        site=site, by=privacy_officer, kind="call", from_text="Officer B", about_text="M"
    )
    client.force_login(privacy_officer)
    assert client.get(reverse("releases:incoming", args=[incoming.pk])).status_code == 200
    assert AccessLog.objects.filter(
        what=AccessLog.What.INCOMING, object_id=str(incoming.pk)
    ).exists()


@pytest.mark.parametrize("persona", ["front_desk", "clinician", "director", "other_site_clinician"])
def test_incoming_pages_refuse_other_roles(request, client, site, privacy_officer, persona):
    incoming = incoming_log(
        site=site, by=privacy_officer, kind="call", from_text="Officer B", about_text="M"
    )
    client.force_login(request.getfixturevalue(persona))
    for url in (
        reverse("releases:incoming_list"),
        reverse("releases:incoming_new"),
        reverse("releases:incoming", args=[incoming.pk]),
        reverse("releases:incoming_reply", args=[incoming.pk]),
    ):
        assert client.get(url).status_code == 403, url
    response = client.post(
        reverse("releases:incoming_new"), {"kind": "call", "from_text": "x", "about_text": "y"}
    )
    assert response.status_code == 403
    assert IncomingRequest.objects.count() == 1


def test_other_site_officer_cannot_read_our_requests(client, site, other_site, privacy_officer):
    incoming = incoming_log(
        site=site, by=privacy_officer, kind="call", from_text="Officer B", about_text="M"
    )
    client.force_login(make_staff(site=other_site, roles=[roles.PRIVACY_OFFICER], username="oz"))
    assert client.get(reverse("releases:incoming", args=[incoming.pk])).status_code == 404
    assert client.get(reverse("releases:incoming_reply", args=[incoming.pk])).status_code == 404
    assert "Officer B" not in client.get(reverse("releases:incoming_list")).content.decode()


def test_time_received_is_read_in_the_sites_time_zone(client, site, privacy_officer):
    client.force_login(privacy_officer)
    response = client.post(
        reverse("releases:incoming_new"),
        {
            "kind": "letter",
            "from_text": "Parole office",
            "about_text": "J",
            "received_at": "2025-03-10T09:30",
        },
    )
    assert response.status_code == 302
    received = IncomingRequest.objects.get().received_at
    assert timezone.localtime(received, site.tz).strftime("%Y-%m-%d %H:%M") == "2025-03-10 09:30"
