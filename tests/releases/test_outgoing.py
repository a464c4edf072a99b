"""Outgoing releases: asking, approving, preparing, handing over, emergencies, and the pages.

ADVERSARIAL CASE 3 (revocation after a packet was prepared, before hand-over) is
test_revocation_after_packet_generated_voids_it_and_nothing_leaves.
"""

import datetime as dt
import hashlib

import pytest
from django.db import DatabaseError, IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from clinic import roles
from clinic.models import AccessLog, Membership
from releases.accounting import emergencies_to_review
from releases.errors import ReleaseError
from releases.models import (
    Approval,
    Category,
    DisclosureLog,
    EmergencyRelease,
    ReleasePacket,
    ReleaseRequest,
    Revocation,
    Scope,
)
from releases.services import outgoing as services
from tests.factories import UserFactory, grant, make_staff
from tests.helpers import PERSONAS, assert_login_redirect, messages_of
from tests.releases.clock import clock_at
from tests.releases.factories import (
    HANDED,
    make_consent,
    make_recipient,
    recategorise,
    record_expiry_event,
    revoke,
)
from tests.releases.outgoing_data import TOX_WORDS, drug_court, make_record

pytestmark = pytest.mark.django_db

ATT = [Scope.ATTENDANCE]


@pytest.fixture
def record(site):
    return make_record(site=site)


@pytest.fixture
def person(record):
    return record.person


@pytest.fixture
def court(site):
    return drug_court(site)


@pytest.fixture
def provider(site):
    return make_recipient(site=site, category=Category.TREATMENT_PROVIDER, organisation="Eastside")


@pytest.fixture
def consent(person, court):
    return make_consent(person=person, recipients=[court], purposes=["attendance"], scope=ATT)


def ask(person, recipient, by, *, purpose="attendance", scope=ATT, **kw):
    return services.release_request_create(
        site=person.site,
        person=person,
        recipient=recipient,
        purpose=purpose,
        scope=scope,
        by=by,
        **kw,
    )


@pytest.fixture
def approved(person, court, consent, clinician, second_clinician, privacy_officer):
    request = ask(person, court, clinician)
    services.release_approve(request=request, by=privacy_officer)
    services.release_approve(request=request, by=second_clinician)
    return request


def logs(**filters):
    return list(DisclosureLog.objects.filter(**filters).order_by("pk"))


# --- asking -------------------------------------------------------------------------------------


def test_clinician_asks_for_a_release_to_a_registry_recipient(person, court, clinician):
    request = ask(person, court, clinician, scope=[Scope.TOX, Scope.ATTENDANCE, Scope.TOX])
    assert request.scope == ["attendance", "tox"]
    assert request.requested_by == clinician
    # Asking releases nothing and writes no disclosure row.
    assert not DisclosureLog.objects.exists()


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"purpose": "  "}, "missing_purpose"),
        ({"scope": []}, "missing_scope"),
        ({"scope": ["everything"]}, "unknown_scope"),
        ({"recipient": None}, "unknown_recipient"),
        (
            {"period_start": dt.date(2026, 5, 2), "period_end": dt.date(2026, 5, 1)},
            "period_backwards",
        ),
    ],
)
def test_request_needs_recipient_purpose_and_scope(person, court, clinician, change, code):
    kwargs = {"recipient": court, "purpose": "attendance", "scope": ATT, **change}
    with pytest.raises(ReleaseError) as info:
        services.release_request_create(site=person.site, person=person, by=clinician, **kwargs)
    assert info.value.code == code
    assert not ReleaseRequest.objects.exists()


def test_request_refuses_a_recipient_of_another_site(person, other_site, clinician):
    elsewhere = drug_court(other_site)
    with pytest.raises(ReleaseError) as info:
        ask(person, elsewhere, clinician)
    assert info.value.code == "unknown_recipient"


def test_front_desk_cannot_ask(person, court, front_desk):
    with pytest.raises(ReleaseError) as info:
        ask(person, court, front_desk)
    assert info.value.code == "not_allowed"


# --- approvals ----------------------------------------------------------------------------------


def test_two_approvals_are_required_for_a_criminal_legal_recipient(
    person, court, consent, clinician, second_clinician, privacy_officer
):
    request = ask(person, court, clinician)
    with pytest.raises(ReleaseError) as info:
        services.packet_generate(request=request, by=clinician)
    assert info.value.code == "awaiting_approvals"

    services.release_approve(request=request, by=privacy_officer)
    with pytest.raises(ReleaseError) as info:
        services.packet_generate(request=request, by=clinician)
    assert info.value.code == "awaiting_approvals"
    assert not ReleasePacket.objects.exists()

    services.release_approve(request=request, by=second_clinician)
    packet = services.packet_generate(request=request, by=clinician)
    assert packet.consent == consent
    decisions = [(r.path, r.decision, r.reason) for r in logs(request=request)]
    assert decisions == [
        ("packet_generate", "held", "awaiting_approvals"),
        ("packet_generate", "held", "awaiting_approvals"),
        ("packet_generate", "granted", "consent_valid"),
    ]


def test_two_clinicians_without_the_privacy_officer_are_not_enough(
    person, court, consent, clinician, second_clinician
):
    request = ask(person, court, make_staff(site=person.site, roles=[roles.CLINICIAN]))
    services.release_approve(request=request, by=clinician)
    services.release_approve(request=request, by=second_clinician)
    assert not request.approvals.filter(as_privacy_officer=True).exists()
    with pytest.raises(ReleaseError) as info:
        services.packet_generate(request=request, by=clinician)
    assert info.value.code == "awaiting_approvals"


def test_the_same_person_cannot_approve_twice(person, court, consent, clinician, privacy_officer):
    request = ask(person, court, clinician)
    services.release_approve(request=request, by=privacy_officer)
    with pytest.raises(ReleaseError) as info:
        services.release_approve(request=request, by=privacy_officer)
    assert info.value.code == "already_approved"
    assert "already approved" in info.value.message
    # The database refuses it too.
    with pytest.raises(IntegrityError), transaction.atomic():
        Approval.objects.create(
            request=request, by=privacy_officer, as_privacy_officer=True, at=timezone.now()
        )
    with pytest.raises(ReleaseError) as info:
        services.packet_generate(request=request, by=privacy_officer)
    assert info.value.code == "awaiting_approvals"


def test_a_privacy_officer_of_another_site_cannot_approve(person, court, consent, other_site):
    officer_elsewhere = make_staff(site=other_site, roles=[roles.PRIVACY_OFFICER])
    request = ask(person, court, make_staff(site=person.site, roles=[roles.CLINICIAN]))
    with pytest.raises(ReleaseError) as info:
        services.release_approve(request=request, by=officer_elsewhere)
    assert info.value.code == "not_allowed"
    assert not Approval.objects.exists()


def test_superuser_with_no_approvals_gets_nothing(person, court, consent, clinician):
    root = UserFactory(username="root", is_superuser=True, is_staff=True)
    Membership.objects.create(user=root, site=person.site)
    assert root.has_perm("releases.manage_releases")  # Django says yes; the gate must not care
    request = ask(person, court, make_staff(site=person.site, roles=[roles.CLINICIAN]))
    with pytest.raises(ReleaseError) as info:
        services.release_approve(request=request, by=root)
    assert info.value.code == "not_allowed"
    with pytest.raises(ReleaseError) as info:
        services.packet_generate(request=request, by=root)
    assert info.value.code == "not_allowed"
    # With a clinician's role the superuser approves as a colleague, never as privacy officer.
    grant(root, person.site, roles.CLINICIAN)
    approval = services.release_approve(request=request, by=root)
    assert approval.as_privacy_officer is False
    services.release_approve(request=request, by=clinician)
    with pytest.raises(ReleaseError) as info:
        services.packet_generate(request=request, by=root)
    assert info.value.code == "awaiting_approvals"
    assert not ReleasePacket.objects.exists()


def test_superuser_pages_are_forbidden_without_a_role(client, person):
    root = UserFactory(username="root", is_superuser=True, is_staff=True)
    Membership.objects.create(user=root, site=person.site)
    client.force_login(root)
    assert client.get(reverse("releases:outgoing_new", args=[person.pk])).status_code == 403
    assert client.get(reverse("releases:outgoing_list")).status_code == 403


# --- preparing ----------------------------------------------------------------------------------


def test_refused_attempt_makes_no_packet_and_says_why(person, provider, clinician):
    request = ask(person, provider, clinician)
    with pytest.raises(ReleaseError) as info:
        services.packet_generate(request=request, by=clinician)
    assert info.value.code == "no_consent"
    assert info.value.message == "There is no consent from this person for this recipient."
    assert not ReleasePacket.objects.exists()
    (row,) = logs(request=request)
    assert (row.path, row.decision, row.reason) == ("packet_generate", "refused", "no_consent")


def test_treatment_provider_needs_no_approvals(person, provider, clinician):
    make_consent(person=person, recipients=[provider], purposes=["care"], scope=ATT)
    request = ask(person, provider, clinician, purpose="care")
    packet = services.packet_generate(request=request, by=clinician)
    assert packet.request == request


# --- ADVERSARIAL CASE 3 -------------------------------------------------------------------------


def test_revocation_after_packet_generated_voids_it_and_nothing_leaves(
    approved, consent, clinician, privacy_officer, client
):
    packet = services.packet_generate(request=approved, by=clinician)
    revoke(consent, how=Revocation.How.WRITTEN)

    with pytest.raises(ReleaseError) as info:
        services.packet_hand_over(packet=packet, by=clinician, **HANDED)
    assert info.value.code == "revoked"
    packet.refresh_from_db()
    assert packet.voided_at is not None
    assert packet.void_reason == "revoked"
    assert packet.handed_over_at is None and packet.handed_over_by is None

    # Never shown again, in any form, to anyone; never handed over later.
    for path in ("packet_view", "packet_pdf"):
        with pytest.raises(ReleaseError) as info:
            services.packet_open(packet=packet, by=privacy_officer, path=path)
        assert info.value.code == "packet_void"
    with pytest.raises(ReleaseError) as info:
        services.packet_hand_over(packet=packet, by=privacy_officer, **HANDED)
    assert info.value.code == "packet_void"
    client.force_login(clinician)
    for name in ("releases:packet_view", "releases:packet_pdf"):
        response = client.get(reverse(name, args=[packet.pk]))
        assert response.status_code == 302
        assert "Jordan" not in response.content.decode()
    response = client.post(reverse("releases:packet_hand_over", args=[packet.pk]), follow=True)
    assert "This record which has been disclosed" not in response.content.decode()

    hand_over = logs(packet=packet, path="packet_hand_over")
    assert [(r.decision, r.reason) for r in hand_over] == [("refused", "revoked")]
    assert not DisclosureLog.objects.filter(packet=packet, decision="granted").exists()


def test_oral_revocation_holds_and_voids_an_unsent_packet(approved, consent, clinician):
    packet = services.packet_generate(request=approved, by=clinician)
    revoke(consent, how=Revocation.How.ORAL)
    with pytest.raises(ReleaseError) as info:
        services.packet_hand_over(packet=packet, by=clinician, **HANDED)
    assert info.value.code == "held_oral_revocation"
    packet.refresh_from_db()
    assert packet.void_reason == "held_oral_revocation"
    (row,) = logs(packet=packet)
    assert row.decision == "held"


def test_expiry_event_after_preparation_voids_on_viewing(person, provider, clinician):
    consent = make_consent(
        person=person, recipients=[provider], purposes=["care"], expiry_event="the referral ends"
    )
    packet = services.packet_generate(
        request=ask(person, provider, clinician, purpose="care"), by=clinician
    )
    record_expiry_event(consent)
    with pytest.raises(ReleaseError) as info:
        services.packet_open(packet=packet, by=clinician, path="packet_view")
    assert info.value.code == "expired"
    packet.refresh_from_db()
    assert packet.void_reason == "expired"


def test_dated_consent_expiring_before_hand_over_voids_the_packet(approved, consent, clinician):
    packet = services.packet_generate(request=approved, by=clinician)
    later = timezone.now() + dt.timedelta(days=400)
    with pytest.raises(ReleaseError) as info, clock_at(later):
        services.packet_hand_over(packet=packet, by=clinician, **HANDED)
    assert info.value.code == "expired"


def test_recategorised_recipient_is_decided_again_at_hand_over(person, clinician):
    # A treatment provider consent, packet prepared, then the recipient turns out to be a court:
    # the consent, given to a treatment provider, no longer holds for it.
    clinic_b = make_recipient(site=person.site, category=Category.TREATMENT_PROVIDER)
    make_consent(person=person, recipients=[clinic_b], purposes=["care"], scope=ATT)
    packet = services.packet_generate(
        request=ask(person, clinic_b, clinician, purpose="care"), by=clinician
    )
    recategorise(clinic_b, Category.COURT)
    with pytest.raises(ReleaseError) as info:
        services.packet_hand_over(packet=packet, by=clinician, **HANDED)
    assert info.value.code == "recipient_recategorised"
    packet.refresh_from_db()
    assert packet.voided_at is not None


def test_a_packet_is_handed_over_once(approved, clinician):
    packet = services.packet_generate(request=approved, by=clinician)
    services.packet_hand_over(packet=packet, by=clinician, **HANDED)
    packet.refresh_from_db()
    assert packet.handed_over_by == clinician
    with pytest.raises(ReleaseError) as info:
        services.packet_hand_over(packet=packet, by=clinician, **HANDED)
    assert info.value.code == "already_handed_over"
    assert [r.decision for r in logs(packet=packet)] == ["granted"]


def test_a_packet_prepared_under_a_consent_that_no_longer_applies_is_void(
    person, provider, clinician
):
    first = make_consent(person=person, recipients=[provider], purposes=["care"], scope=ATT)
    packet = services.packet_generate(
        request=ask(person, provider, clinician, purpose="care"), by=clinician
    )
    assert packet.consent == first
    make_consent(person=person, recipients=[provider], purposes=["care"], scope=ATT)
    revoke(first)
    with pytest.raises(ReleaseError) as info:
        services.packet_hand_over(packet=packet, by=clinician, **HANDED)
    assert info.value.code == "consent_changed"
    assert [(r.decision, r.reason) for r in logs(packet=packet)] == [
        ("granted", "consent_valid"),
        ("refused", "consent_changed"),
    ]


def test_an_altered_packet_is_never_shown(approved, clinician):
    packet = services.packet_generate(request=approved, by=clinician)
    ReleasePacket.objects.filter(pk=packet.pk).update(html=packet.html + "<p>Fentanyl</p>")
    with pytest.raises(ReleaseError) as info:
        services.packet_open(packet=packet, by=clinician, path="packet_view")
    assert info.value.code == "packet_altered"
    with pytest.raises(ReleaseError):
        services.packet_hand_over(packet=packet, by=clinician, **HANDED)


# --- medical emergency (§2.51) ------------------------------------------------------------------


def emergency(
    person,
    recipient,
    by,
    reason="Unresponsive, brought to the ED",
    scope=None,
    personnel_name="Dr. Ana Ruiz",
):
    return services.emergency_release(
        site=person.site,
        person=person,
        recipient=recipient,
        personnel_name=personnel_name,
        reason=reason,
        scope=scope or [Scope.MEDICATIONS],
        by=by,
    )


def test_emergency_release_to_medical_personnel_is_logged_and_listed_for_review(
    person, provider, clinician
):
    result = emergency(person, provider, clinician)
    assert "Buprenorphine/naloxone" in result.html
    assert "42 CFR 2.51" in result.html
    assert "This record which has been disclosed to you" in result.html
    row = result.log
    assert (row.path, row.decision, row.reason, row.legal_basis) == (
        "emergency_release",
        "granted",
        "medical_emergency",
        "42 CFR 2.51",
    )
    assert "Unresponsive" in row.purpose
    assert list(emergencies_to_review(site=person.site)) == [result]


def test_emergency_release_stores_what_was_sent_with_manifest_and_hash(person, provider, clinician):
    """§2.51(c): who released it, when, to which medical personnel, the nature of the
    emergency, and exactly what was sent (document, manifest, SHA-256), stored for good."""
    result = emergency(person, provider, clinician, scope=[Scope.MEDICATIONS, Scope.ATTENDANCE])
    stored = EmergencyRelease.objects.get()
    assert stored == result
    assert stored.log.decision == "granted"
    assert (stored.person, stored.recipient, stored.released_by) == (person, provider, clinician)
    assert stored.personnel_name == "Dr. Ana Ruiz"
    assert stored.nature == "Unresponsive, brought to the ED"
    assert stored.released_at == stored.log.at
    assert stored.scope == sorted([Scope.MEDICATIONS, Scope.ATTENDANCE])
    assert stored.sha256 == hashlib.sha256(stored.html.encode()).hexdigest()
    types = {item["type"] for item in stored.manifest["items"]}
    assert types == {"medication", "attendance"}
    assert "Dr. Ana Ruiz" in stored.html and "Unresponsive, brought to the ED" in stored.html
    for word in TOX_WORDS:
        assert word not in stored.html
    # Never changed afterwards: the database refuses it (its trigger, or the grants first).
    with pytest.raises(DatabaseError), transaction.atomic():
        EmergencyRelease.objects.filter(pk=stored.pk).update(html="<p>nothing</p>")


def test_emergency_release_needs_the_receiving_medical_personnel_named(person, provider, clinician):
    with pytest.raises(ReleaseError) as info:
        emergency(person, provider, clinician, personnel_name="  ")
    assert info.value.code == "emergency_personnel_missing"
    (row,) = logs(path="emergency_release")
    assert row.decision == "refused"
    assert not EmergencyRelease.objects.exists()


def test_refused_emergency_release_stores_nothing(person, court, clinician):
    with pytest.raises(ReleaseError):
        emergency(person, court, clinician)
    assert not EmergencyRelease.objects.exists()


def test_emergency_release_shows_in_accounting_and_review_pages(
    client, person, provider, clinician, privacy_officer
):
    result = emergency(person, provider, clinician)
    client.force_login(privacy_officer)
    accounting = client.get(reverse("releases:accounting", args=[person.pk])).content.decode()
    detail_url = reverse("releases:emergency_detail", args=[result.pk])
    assert detail_url in accounting
    assert "Dr. Ana Ruiz" in accounting
    listing = client.get(reverse("releases:outgoing_list")).content.decode()
    assert detail_url in listing
    page = client.get(detail_url)
    assert page.status_code == 200
    body = page.content.decode()
    assert result.sha256 in body and "Dr. Ana Ruiz" in body and "Unresponsive" in body
    assert "matches the stored document" in body
    assert AccessLog.objects.filter(
        what=AccessLog.What.EMERGENCY, object_id=str(result.pk), user=privacy_officer
    ).exists()


@pytest.mark.parametrize(
    ("persona", "expected"),
    [
        ("anonymous", "login"),
        ("front_desk", 403),
        ("clinician", 403),
        ("director", 403),
        ("privacy_officer", 200),
        ("other_site_clinician", 403),
    ],
)
def test_emergency_record_page_is_the_privacy_officers(
    client, login, person, provider, clinician, persona, expected
):
    result = emergency(person, provider, clinician)
    client.logout()
    login(persona)
    response = client.get(reverse("releases:emergency_detail", args=[result.pk]))
    if expected == "login":
        assert_login_redirect(response)
    else:
        assert response.status_code == expected


def test_emergency_release_to_a_court_is_refused_and_logged(person, court, clinician):
    with pytest.raises(ReleaseError) as info:
        emergency(person, court, clinician)
    assert info.value.code == "emergency_not_medical"
    (row,) = logs(path="emergency_release")
    assert (row.decision, row.reason, row.legal_basis) == (
        "refused",
        "emergency_not_medical",
        "42 CFR 2.51",
    )
    assert not list(emergencies_to_review(site=person.site))


def test_emergency_release_to_a_court_relabelled_as_a_provider_is_refused(person, court, clinician):
    recategorise(court, Category.TREATMENT_PROVIDER)
    with pytest.raises(ReleaseError) as info:
        emergency(person, court, clinician)
    assert info.value.code == "emergency_not_medical"


@pytest.mark.parametrize("category", [Category.OTHER, Category.FAMILY_FRIEND, Category.POLICE])
def test_emergency_release_only_to_medical_personnel(person, clinician, category):
    other = make_recipient(site=person.site, category=category)
    with pytest.raises(ReleaseError) as info:
        emergency(person, other, clinician)
    assert info.value.code == "emergency_not_medical"


def test_emergency_release_needs_the_reason_typed(person, provider, clinician):
    with pytest.raises(ReleaseError) as info:
        emergency(person, provider, clinician, reason="   ")
    assert info.value.code == "emergency_reason_missing"
    (row,) = logs(path="emergency_release")
    assert row.decision == "refused"


def test_emergency_page_posting_a_court_is_refused_and_logged(client, person, court, clinician):
    client.force_login(clinician)
    url = reverse("releases:outgoing_emergency", args=[person.pk])
    page = client.get(url).content.decode()
    assert "County Drug Court" not in page  # never offered
    response = client.post(
        url,
        {"recipient": court.pk, "personnel_name": "Judge", "reason": "overdose", "scope": ["tox"]},
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert "never to a criminal-legal recipient" in body
    for word in TOX_WORDS:
        assert word not in body
    assert DisclosureLog.objects.get(path="emergency_release").decision == "refused"


# --- pages --------------------------------------------------------------------------------------

PAGES = {
    "outgoing_new": {
        "anonymous": "login",
        "front_desk": 403,
        "clinician": 200,
        "director": 403,
        "privacy_officer": 200,
        "other_site_clinician": 404,
    },
    "outgoing_emergency": {
        "anonymous": "login",
        "front_desk": 403,
        "clinician": 200,
        "director": 403,
        "privacy_officer": 200,
        "other_site_clinician": 404,
    },
    "outgoing_list": {
        "anonymous": "login",
        "front_desk": 403,
        "clinician": 403,
        "director": 403,
        "privacy_officer": 200,
        "other_site_clinician": 403,
    },
    "outgoing_detail": {
        "anonymous": "login",
        "front_desk": 403,
        "clinician": 200,
        "director": 403,
        "privacy_officer": 200,
        "other_site_clinician": 404,
    },
}


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("page", sorted(PAGES))
def test_release_pages_permission_matrix(client, login, person, court, page, persona):
    request = ReleaseRequest.objects.create(
        site=person.site,
        person=person,
        recipient=court,
        purpose="attendance",
        scope=ATT,
        requested_by=UserFactory(),
        requested_at=timezone.now(),
    )
    login(persona)
    args = {
        "outgoing_new": [person.pk],
        "outgoing_emergency": [person.pk],
        "outgoing_list": [],
        "outgoing_detail": [request.pk],
    }[page]
    response = client.get(reverse(f"releases:{page}", args=args))
    expected = PAGES[page][persona]
    if expected == "login":
        assert_login_redirect(response)
    else:
        assert response.status_code == expected


@pytest.mark.parametrize("persona", PERSONAS)
def test_packet_pages_permission_matrix(client, login, approved, persona):
    packet = services.packet_generate(request=approved, by=approved.requested_by)
    before = DisclosureLog.objects.count()
    login(persona)
    expected = {
        "anonymous": "login",
        "front_desk": 403,
        "clinician": 200,
        "director": 403,
        "privacy_officer": 200,
        "other_site_clinician": 404,
    }[persona]
    for name in ("releases:packet_view", "releases:packet_pdf"):
        response = client.get(reverse(name, args=[packet.pk]))
        if expected == "login":
            assert_login_redirect(response)
        else:
            assert response.status_code == expected
    # Only the allowed views reached the gate, and each wrote a row.
    assert DisclosureLog.objects.count() - before == (2 if expected == 200 else 0)
    response = client.post(reverse("releases:packet_hand_over", args=[packet.pk]), HANDED)
    if expected == "login":
        assert_login_redirect(response)
    elif expected == 200:
        assert response.status_code == 302
    else:
        assert response.status_code == expected


@pytest.mark.parametrize("name", ["outgoing_approve", "outgoing_generate"])
def test_actions_take_post_only(client, clinician, approved, name):
    client.force_login(clinician)
    assert client.get(reverse(f"releases:{name}", args=[approved.pk])).status_code == 405


def test_the_whole_flow_through_the_pages(
    client, person, court, consent, clinician, second_clinician, privacy_officer
):
    client.force_login(clinician)
    page = client.get(reverse("visits:person", args=[person.pk])).content.decode()
    assert reverse("releases:outgoing_new", args=[person.pk]) in page
    response = client.post(
        reverse("releases:outgoing_new", args=[person.pk]),
        {"recipient": court.pk, "purpose": "attendance", "scope": ["attendance"]},
    )
    request = ReleaseRequest.objects.get()
    assert response.url == reverse("releases:outgoing_detail", args=[request.pk])

    response = client.post(reverse("releases:outgoing_generate", args=[request.pk]), follow=True)
    assert "have not both approved yet" in " ".join(messages_of(response))

    for user in (privacy_officer, second_clinician):
        client.force_login(user)
        client.post(reverse("releases:outgoing_approve", args=[request.pk]))
    response = client.post(reverse("releases:outgoing_approve", args=[request.pk]), follow=True)
    assert "already approved" in " ".join(messages_of(response))
    assert request.approvals.count() == 2

    client.post(reverse("releases:outgoing_generate", args=[request.pk]))
    packet = ReleasePacket.objects.get()
    viewed = AccessLog.objects.filter(
        what=AccessLog.What.PACKET, person=person, object_id=str(packet.pk)
    )
    seen_before = viewed.count()
    body = client.get(reverse("releases:packet_view", args=[packet.pk])).content.decode()
    assert "This record which has been disclosed to you" in body
    pdf = client.get(reverse("releases:packet_pdf", args=[packet.pk]))
    assert pdf["Content-Type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    assert viewed.count() - seen_before == 2  # the page and the PDF
    client.post(reverse("releases:packet_hand_over", args=[packet.pk]), HANDED)
    packet.refresh_from_db()
    assert packet.handed_over_by == second_clinician

    paths = [r.path for r in logs(request=request, decision="granted")]
    assert paths == ["packet_generate", "packet_view", "packet_pdf", "packet_hand_over"]

    client.force_login(privacy_officer)
    listing = client.get(reverse("releases:outgoing_list")).content.decode()
    assert "County Drug Court" in listing
    detail = client.get(reverse("releases:outgoing_detail", args=[request.pk])).content.decode()
    assert "Handed over" in detail
    assert AccessLog.objects.filter(
        what=AccessLog.What.RELEASE, object_id=str(request.pk), user=privacy_officer
    ).exists()


def test_refused_packet_page_shows_the_reason_in_plain_words(client, person, provider, clinician):
    client.force_login(clinician)
    request = ask(person, provider, clinician)
    response = client.post(reverse("releases:outgoing_generate", args=[request.pk]), follow=True)
    assert messages_of(response) == ["There is no consent from this person for this recipient."]
    assert not ReleasePacket.objects.exists()


def test_access_log_tells_requests_packets_and_accounting_apart(
    client, person, approved, clinician, privacy_officer
):
    request = approved
    packet = services.packet_generate(request=request, by=clinician)
    client.force_login(privacy_officer)
    client.get(reverse("releases:outgoing_detail", args=[request.pk]))
    client.get(reverse("releases:packet_view", args=[packet.pk]))
    client.get(reverse("releases:accounting", args=[person.pk]))
    kinds = list(
        AccessLog.objects.filter(user=privacy_officer)
        .order_by("pk")
        .values_list("what", "object_id")
    )
    assert kinds == [
        (AccessLog.What.RELEASE, str(request.pk)),
        (AccessLog.What.PACKET, str(packet.pk)),
        (AccessLog.What.ACCOUNTING, ""),
    ]
    # The privacy officer's access-log page names each kind.
    log = client.get(reverse("visits:access_log")).content.decode()
    for label in ("Release request", "Release packet", "Accounting of disclosures"):
        assert label in log
