"""Consents: every §2.31 element required, no bundling with a criminal-legal recipient,
signatures that are real, revocation (oral = hold, written = revoked), expiry events, access
logging and the printable copy."""

import base64
import re
import struct
import uuid
import zlib
from datetime import date, timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from clinic import roles
from clinic.models import AccessLog
from releases.errors import ReleaseError
from releases.gate import release_decide
from releases.models import Category, Consent, ConsentPurpose, DisclosureLog, Revocation, Scope
from releases.services.consents import (
    STANDARD_REVOCATION_STATEMENT,
    check_signature_image,
    consent_expiry_event_record,
    consent_record,
    consent_revoke,
)
from releases.services.registry import recipient_add
from tests.factories import PersonFactory, make_staff


def png(width=60, height=20, *, ink=True, filter_type=0) -> bytes:
    """An RGBA PNG: white, with a dark diagonal stroke when `ink`."""
    rows = []
    for y in range(height):
        row = bytearray(b"\xff\xff\xff\xff" * width)
        if ink:
            for x in range(width):
                if abs(x // 3 - y) <= 1:
                    row[x * 4 : x * 4 + 3] = b"\x11\x11\x11"
        rows.append(bytes([filter_type]) + bytes(row) if filter_type == 0 else _sub(row))
    raw = b"".join(rows)

    def chunk(kind, body):
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def _sub(row: bytearray) -> bytes:
    out = bytearray(row)
    for i in range(len(row) - 1, 3, -1):
        out[i] = (row[i] - row[i - 4]) & 0xFF
    return b"\x01" + bytes(out)


def signature(**kwargs) -> str:
    return "data:image/png;base64," + base64.b64encode(png(**kwargs)).decode()


@pytest.fixture
def person(site):
    return PersonFactory(site=site, name="Maria Lopez", date_of_birth=date(1980, 5, 17))


@pytest.fixture
def provider(site, privacy_officer):
    return recipient_add(
        site=site, by=privacy_officer, organisation="Eastside Clinic", category="treatment_provider"
    )


@pytest.fixture
def probation(site, privacy_officer):
    return recipient_add(
        site=site,
        by=privacy_officer,
        organisation="County Probation",
        person_name="Officer A",
        category=Category.PROBATION,
    )


def today(site):
    return timezone.localdate(timezone.now(), site.tz)


def valid_kwargs(person, site, officer, recipients) -> dict:
    return {
        "person": person,
        "site": site,
        "by": officer,
        "recipients": recipients,
        "purposes": ["Confirm attendance"],
        "scope": [Scope.ATTENDANCE],
        "revocation_statement": str(STANDARD_REVOCATION_STATEMENT),
        "expires_on": today(site) + timedelta(days=90),
        "signed_by": Consent.SignedBy.PERSON,
        "signature_image": signature(),
        "signed_on": today(site),
    }


def make_consent(person, site, officer, recipients_, **overrides) -> Consent:
    return consent_record(**{**valid_kwargs(person, site, officer, recipients_), **overrides})


def test_complete_consent_is_recorded(person, site, privacy_officer, provider):
    consent = make_consent(person, site, privacy_officer, [provider], purposes=["a", "b", "A "])
    assert list(consent.recipients.all()) == [provider]
    assert sorted(p.text for p in consent.purposes.all()) == ["a", "b"]
    decision = release_decide(
        person=person, recipient=provider, purpose="a", scope=[Scope.ATTENDANCE]
    )
    assert decision.granted


@pytest.mark.parametrize(
    ("override", "code"),
    [
        ({"recipients": []}, "recipient_required"),
        ({"recipients": ["Officer B, County Probation"]}, "recipient_unknown"),
        ({"purposes": ["", "  "]}, "purpose_required"),
        ({"scope": []}, "scope_required"),
        ({"scope": ["everything"]}, "scope_unknown"),
        ({"scope": [Scope.OTHER]}, "scope_other_required"),
        ({"scope_other": "housing file"}, "scope_other_unticked"),
        ({"revocation_statement": " "}, "revocation_statement_required"),
        ({"expires_on": None, "expiry_event": ""}, "expiry_required"),
        ({"expires_on": date(2000, 1, 1)}, "expires_in_past"),
        ({"signed_by": ""}, "signed_by_required"),
        ({"signed_by": "representative"}, "representative_name_required"),
        (
            {"signed_by": "representative", "representative_name": "Ana"},
            "representative_basis_required",
        ),
        ({"signature_image": ""}, "signature_required"),
        ({"signed_on": None}, "signed_on_required"),
        ({"signed_on": date.today() + timedelta(days=3)}, "signed_on_future"),
        ({"court_condition": True}, "irrevocable_until_required"),
        ({"irrevocable_until_event": "case closes"}, "irrevocable_without_court"),
    ],
)
def test_each_missing_element_is_refused_and_nothing_saved(
    person, site, privacy_officer, provider, override, code
):
    with pytest.raises(ReleaseError) as caught:
        make_consent(person, site, privacy_officer, [provider], **override)
    assert caught.value.code == code
    assert caught.value.message
    assert not Consent.objects.exists()
    assert not ConsentPurpose.objects.exists()


def test_missing_element_through_the_page_shows_message_and_saves_nothing(
    client, person, site, privacy_officer, provider
):
    client.force_login(privacy_officer)
    data = {
        "recipients": [provider.pk],
        "purposes": "Confirm attendance",
        "scope": [Scope.ATTENDANCE],
        "revocation_statement": "You can revoke it.",
        "signed_by": "person",
        "signature_image": signature(),
        "signed_on": today(site).isoformat(),
        "nonce": str(uuid.uuid4()),
    }  # no expiry
    response = client.post(reverse("releases:consent_new", args=[person.pk]), data)
    assert response.status_code == 400
    assert "Please give the date or the event when the consent ends." in response.content.decode()
    assert not Consent.objects.exists()
    data["expiry_event"] = "When my referral ends"
    response = client.post(reverse("releases:consent_new", args=[person.pk]), data)
    assert response.status_code == 302
    assert Consent.objects.get().expiry_event == "When my referral ends"


def test_criminal_legal_recipient_cannot_be_bundled(
    person, site, privacy_officer, provider, probation
):
    with pytest.raises(ReleaseError) as caught:
        make_consent(person, site, privacy_officer, [probation, provider])
    assert caught.value.code == "criminal_legal_bundled"
    assert "must name that one recipient" in caught.value.message
    assert not Consent.objects.exists()
    consent = make_consent(person, site, privacy_officer, [probation])
    assert list(consent.recipients.all()) == [probation]


def test_recipient_of_another_site_or_inactive_is_refused(
    person, site, other_site, privacy_officer, provider
):
    officer_there = make_staff(site=other_site, roles=[roles.PRIVACY_OFFICER], username="oz")
    theirs = recipient_add(
        site=other_site, by=officer_there, organisation="Far", category="treatment_provider"
    )
    with pytest.raises(ReleaseError) as caught:
        make_consent(person, site, privacy_officer, [theirs])
    assert caught.value.code == "recipient_unknown"


def test_clinician_cannot_record_consent(person, site, clinician, provider):
    with pytest.raises(ReleaseError) as caught:
        make_consent(person, site, clinician, [provider])
    assert caught.value.code == "not_privacy_officer"


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("data:image/jpeg;base64,AAAA", "signature_invalid"),
        ("data:image/png;base64,not base64!!", "signature_invalid"),
        (
            "data:image/png;base64," + base64.b64encode(b"GIF89a" + b"x" * 200).decode(),
            "signature_invalid",
        ),
        ("data:image/png;base64," + "A" * 500_000, "signature_invalid"),
        (signature(ink=False), "signature_blank"),
        (signature(width=5000, height=2), "signature_invalid"),
    ],
)
def test_signature_must_be_a_real_drawn_png(value, code):
    with pytest.raises(ReleaseError) as caught:
        check_signature_image(value)
    assert caught.value.code == code


def test_signature_with_filtered_rows_is_read():
    assert check_signature_image(signature(filter_type=1))


def test_corrupted_png_checksum_is_refused():
    data = bytearray(png())
    data[40] ^= 0xFF
    with pytest.raises(ReleaseError):
        check_signature_image("data:image/png;base64," + base64.b64encode(bytes(data)).decode())


def test_scanned_form_instead_of_drawn_signature(
    person, site, privacy_officer, provider, settings, tmp_path, client
):
    settings.MEDIA_ROOT = tmp_path
    scan = SimpleUploadedFile("Maria Lopez consent.pdf", b"%PDF-1.4\n%%EOF\n")
    consent = make_consent(
        person, site, privacy_officer, [provider], signature_image="", scanned_form=scan
    )
    assert "Maria" not in consent.scanned_form.name
    client.force_login(privacy_officer)
    response = client.get(reverse("releases:consent_scan", args=[consent.pk]))
    assert response.status_code == 200
    assert b"".join(response.streaming_content).startswith(b"%PDF-")
    assert AccessLog.objects.filter(what=AccessLog.What.CONSENT, object_id=str(consent.pk)).exists()


@pytest.mark.parametrize(
    ("name", "content", "code"),
    [
        ("form.exe", b"MZ", "scan_kind"),
        ("form.pdf", b"<html>not a pdf", "scan_kind"),
        ("form.png", b"%PDF-1.4", "scan_kind"),
        ("form.pdf", b"", "scan_empty"),
        ("form.jpg", b"\xff\xd8\xff" + b"0" * (10 * 1024 * 1024), "scan_too_big"),
    ],
)
def test_scanned_form_is_checked(
    person, site, privacy_officer, provider, settings, tmp_path, name, content, code
):
    settings.MEDIA_ROOT = tmp_path
    with pytest.raises(ReleaseError) as caught:
        make_consent(
            person,
            site,
            privacy_officer,
            [provider],
            signature_image="",
            scanned_form=SimpleUploadedFile(name, content),
        )
    assert caught.value.code == code
    assert not Consent.objects.exists()


def test_court_condition_consent_shows_irrevocable_until(
    client, person, site, privacy_officer, probation
):
    consent = make_consent(
        person,
        site,
        privacy_officer,
        [probation],
        court_condition=True,
        irrevocable_until_event="the end of the diversion program",
    )
    client.force_login(privacy_officer)
    body = client.get(reverse("releases:consent", args=[consent.pk])).content.decode()
    assert "Irrevocable until" in body
    assert "the end of the diversion program" in body


def test_oral_revocation_holds_and_written_completes_it(person, site, privacy_officer, provider):
    consent = make_consent(person, site, privacy_officer, [provider])
    ask = {
        "person": person,
        "recipient": provider,
        "purpose": "Confirm attendance",
        "scope": [Scope.ATTENDANCE],
    }
    assert release_decide(**ask).granted
    consent_revoke(consent=consent, by=privacy_officer, how="oral", received_on=today(site))
    decision = release_decide(**ask)
    assert (decision.decision, decision.reason) == ("held", "held_oral_revocation")
    with pytest.raises(ReleaseError) as caught:
        consent_revoke(consent=consent, by=privacy_officer, how="oral", received_on=today(site))
    assert caught.value.code == "already_held"
    consent_revoke(consent=consent, by=privacy_officer, how="written", received_on=today(site))
    decision = release_decide(**ask)
    assert (decision.decision, decision.reason) == ("refused", "revoked")
    with pytest.raises(ReleaseError):
        consent_revoke(consent=consent, by=privacy_officer, how="written", received_on=today(site))
    assert Revocation.objects.filter(consent=consent).count() == 2


def test_revocation_through_the_page(client, person, site, privacy_officer, provider):
    consent = make_consent(person, site, privacy_officer, [provider])
    client.force_login(privacy_officer)
    response = client.post(
        reverse("releases:consent_revoke", args=[consent.pk]),
        {"how": "oral", "received_on": today(site).isoformat(), "note": "Told Alex at the desk"},
    )
    assert response.status_code == 302
    revocation = Revocation.objects.get()
    assert (revocation.how, revocation.taken_by) == ("oral", privacy_officer)
    response = client.post(
        reverse("releases:consent_revoke", args=[consent.pk]),
        {"how": "written", "received_on": (today(site) + timedelta(days=2)).isoformat()},
    )
    assert response.status_code == 400
    assert Revocation.objects.count() == 1


def test_expiry_event_recorded_ends_consent(person, site, privacy_officer, provider):
    consent = make_consent(
        person, site, privacy_officer, [provider], expires_on=None, expiry_event="Referral ends"
    )
    ask = {
        "person": person,
        "recipient": provider,
        "purpose": "Confirm attendance",
        "scope": [Scope.ATTENDANCE],
    }
    assert release_decide(**ask).granted
    consent_expiry_event_record(consent=consent, by=privacy_officer, happened_on=today(site))
    assert release_decide(**ask).reason == "expired"
    with pytest.raises(ReleaseError):
        consent_expiry_event_record(consent=consent, by=privacy_officer, happened_on=today(site))


def test_every_view_of_a_consent_is_access_logged(client, person, site, privacy_officer, provider):
    consent = make_consent(person, site, privacy_officer, [provider])
    client.force_login(privacy_officer)
    for name in ("consent", "consent_print"):
        assert client.get(reverse(f"releases:{name}", args=[consent.pk])).status_code == 200
    assert client.get(reverse("releases:person_consents", args=[person.pk])).status_code == 200
    rows = AccessLog.objects.filter(
        what=AccessLog.What.CONSENT, person=person, user=privacy_officer
    )
    assert rows.count() == 3


def test_printable_copy_lists_every_element_and_no_one_else(
    client, person, site, privacy_officer, provider
):
    other = PersonFactory(site=site, name="Someone Else")
    make_consent(other, site, privacy_officer, [provider], purposes=["Other purpose"])
    consent = make_consent(
        person,
        site,
        privacy_officer,
        [provider],
        expiry_event="Referral ends",
        purposes=["Confirm attendance", "Coordinate care"],
    )
    client.force_login(privacy_officer)
    body = client.get(reverse("releases:consent_print", args=[consent.pk])).content.decode()
    for text in (
        "Maria Lopez",
        "Riverside",
        "Attendance and visit dates",
        "Eastside Clinic",
        "Confirm attendance",
        "Coordinate care",
        "revoke",
        "Referral ends",
        "The person",
        "data:image/png;base64,",
    ):
        assert text in body
    assert "Someone Else" not in body
    assert "Other purpose" not in body


@pytest.mark.parametrize("persona", ["front_desk", "clinician", "director", "other_site_clinician"])
def test_consent_pages_refuse_other_roles(
    request, client, person, site, privacy_officer, provider, persona
):
    consent = make_consent(person, site, privacy_officer, [provider])
    client.force_login(request.getfixturevalue(persona))
    for name in ("consent", "consent_print", "consent_scan"):
        assert client.get(reverse(f"releases:{name}", args=[consent.pk])).status_code == 403
    assert client.get(reverse("releases:consent_new", args=[person.pk])).status_code == 403
    assert not AccessLog.objects.filter(what=AccessLog.What.CONSENT).exists()


def test_other_site_officer_gets_404(client, person, site, other_site, privacy_officer, provider):
    consent = make_consent(person, site, privacy_officer, [provider])
    client.force_login(make_staff(site=other_site, roles=[roles.PRIVACY_OFFICER], username="oz"))
    assert client.get(reverse("releases:consent", args=[consent.pk])).status_code == 404
    assert client.get(reverse("releases:consent_new", args=[person.pk])).status_code == 404
    response = client.post(
        reverse("releases:consent_revoke", args=[consent.pk]),
        {"how": "written", "received_on": today(site).isoformat()},
    )
    assert response.status_code == 404
    assert not Revocation.objects.exists()


def test_there_is_no_edit_view(person, site, privacy_officer, provider):
    from django.urls import NoReverseMatch

    consent = make_consent(person, site, privacy_officer, [provider])
    for name in ("consent_edit", "consent_change", "consent_update"):
        with pytest.raises(NoReverseMatch):
            reverse(f"releases:{name}", args=[consent.pk])
    assert not DisclosureLog.objects.exists()


def test_form_refuses_recipient_of_another_site_by_pk(
    client, person, site, other_site, privacy_officer
):
    officer_there = make_staff(site=other_site, roles=[roles.PRIVACY_OFFICER], username="oz")
    theirs = recipient_add(
        site=other_site, by=officer_there, organisation="Far", category="treatment_provider"
    )
    client.force_login(privacy_officer)
    response = client.post(
        reverse("releases:consent_new", args=[person.pk]),
        {
            "recipients": [theirs.pk],
            "purposes": "Care",
            "scope": [Scope.ATTENDANCE],
            "revocation_statement": "You can revoke it.",
            "expiry_event": "Referral ends",
            "signed_by": "person",
            "signature_image": signature(),
            "signed_on": today(site).isoformat(),
            "nonce": str(uuid.uuid4()),
        },
    )
    assert response.status_code == 400
    assert not Consent.objects.exists()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_consent_signed_on_the_touchscreen_in_chromium(
    asgi_server, consents_flushable, site, privacy_officer
):
    """The signature pad's PNG (as Chromium encodes it) passes the server's checks."""
    import shutil

    from playwright.sync_api import sync_playwright

    from tests.conftest import session_cookie_for

    person = PersonFactory(site=site, name="Jess")
    recipient_add(
        site=site, by=privacy_officer, organisation="Eastside Clinic", category="treatment_provider"
    )
    cookie = session_cookie_for(privacy_officer)
    day = today(site).isoformat()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=shutil.which("chromium"),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        context = browser.new_context(base_url=asgi_server.url)
        context.add_cookies([{**cookie, "url": asgi_server.url}])
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"/privacy/people/{person.pk}/consents/new/")
        page.get_by_label("Eastside Clinic (Treatment provider)").check()
        page.get_by_label("Purposes").fill("Coordinate care")
        page.get_by_label("Medications").check()
        page.get_by_label("Or ends when").fill("When my referral ends")
        page.get_by_label("The person").check()
        page.get_by_label("Date signed").fill(day)
        # Submitting with an empty pad is refused and nothing is saved.
        page.get_by_role("button", name="Record the signed consent").click()
        assert page.get_by_text("Please have it signed on the screen").first.is_visible()
        canvas = page.get_by_role("img", name="Signature box")
        canvas.scroll_into_view_if_needed()
        box = canvas.bounding_box()
        page.mouse.move(box["x"] + 20, box["y"] + box["height"] / 2)
        page.mouse.down()
        for i in range(30):
            dy = 25 if i % 4 < 2 else -25
            page.mouse.move(box["x"] + 20 + i * 12, box["y"] + box["height"] / 2 + dy, steps=3)
        page.mouse.up()
        page.get_by_role("button", name="Record the signed consent").click()
        page.wait_for_url("**/privacy/consents/*/")
        assert page.get_by_text("The consent is recorded.").is_visible()
        browser.close()
    assert errors == []
    consent = Consent.objects.get()
    assert consent.signature_image.startswith("data:image/png;base64,")
    assert consent.scope == [Scope.MEDICATIONS]


# --- a double tap on "Record the signed consent" ---------------------------------------------


def test_the_same_form_posted_twice_records_one_consent(
    client, person, site, privacy_officer, provider
):
    client.force_login(privacy_officer)
    page = client.get(reverse("releases:consent_new", args=[person.pk])).content.decode()
    nonce = re.search(r'name="nonce" value="([0-9a-f-]{36})"', page).group(1)
    data = {
        "recipients": [provider.pk],
        "purposes": "Confirm attendance",
        "scope": [Scope.ATTENDANCE],
        "revocation_statement": "You can revoke it.",
        "expiry_event": "When my referral ends",
        "signed_by": "person",
        "signature_image": signature(),
        "signed_on": today(site).isoformat(),
        "nonce": nonce,
    }
    first = client.post(reverse("releases:consent_new", args=[person.pk]), data)
    second = client.post(reverse("releases:consent_new", args=[person.pk]), data)
    consent = Consent.objects.get()
    assert first.status_code == second.status_code == 302
    assert first.url == second.url == reverse("releases:consent", args=[consent.pk])
    assert consent.nonce == uuid.UUID(nonce)
    assert ConsentPurpose.objects.count() == 1


def test_the_service_returns_the_first_consent_for_a_repeated_nonce(
    person, site, privacy_officer, provider
):
    nonce = uuid.uuid4()
    first = make_consent(person, site, privacy_officer, [provider], nonce=nonce)
    again = make_consent(person, site, privacy_officer, [provider], nonce=nonce)
    assert again == first
    assert Consent.objects.count() == 1
    other = make_consent(person, site, privacy_officer, [provider], nonce=uuid.uuid4())
    assert other != first


def test_a_nonce_used_for_someone_else_is_refused(person, site, privacy_officer, provider):
    nonce = uuid.uuid4()
    make_consent(person, site, privacy_officer, [provider], nonce=nonce)
    someone_else = PersonFactory(site=site, name="Kim")
    with pytest.raises(ReleaseError) as info:
        make_consent(someone_else, site, privacy_officer, [provider], nonce=nonce)
    assert info.value.code == "stale_form"
    assert not Consent.objects.filter(person=someone_else).exists()


def test_a_post_without_a_nonce_saves_nothing_and_offers_a_fresh_one(
    client, person, site, privacy_officer, provider
):
    client.force_login(privacy_officer)
    data = {
        "recipients": [provider.pk],
        "purposes": "Confirm attendance",
        "scope": [Scope.ATTENDANCE],
        "revocation_statement": "You can revoke it.",
        "expiry_event": "When my referral ends",
        "signed_by": "person",
        "signature_image": signature(),
        "signed_on": today(site).isoformat(),
    }
    response = client.post(reverse("releases:consent_new", args=[person.pk]), data)
    assert response.status_code == 400
    body = response.content.decode()
    assert "This page was out of date" in body
    assert re.search(r'name="nonce" value="[0-9a-f-]{36}"', body)
    assert not Consent.objects.exists()
