"""Adversarial cases 2 and 4 of RELEASES.md, as an attacker would try them."""

import datetime as dt
import zoneinfo

import pytest
from django.contrib.auth.models import Permission
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.urls import NoReverseMatch, reverse

from clinic import roles
from releases import gate
from releases.models import Category, Consent, DisclosureLog, EmergencyRelease, Recipient, Scope
from tests.factories import SiteFactory, UserFactory, make_staff
from tests.releases.clock import clock_at
from tests.releases.factories import (
    approve_twice,
    make_consent,
    make_person,
    make_recipient,
    make_request,
    recategorise,
    revoke,
)

pytestmark = pytest.mark.django_db

HONOLULU = zoneinfo.ZoneInfo("Pacific/Honolulu")


# --- Adversarial case 2 ----------------------------------------------------------------------


def test_adversarial_case_2_only_the_exact_match_goes_with_only_attendance():
    """Consent names "County Probation, Officer A", purpose "attendance", scope attendance,
    until a date. Officer B, another purpose, tox results, one minute after expiry and an
    oral revocation are all refused or held and logged with their reason; only the exact
    match (with both approvals) is granted, and only with attendance."""
    site = SiteFactory(timezone="Pacific/Honolulu")
    person = make_person(site=site, name="Casey")
    asked_by = make_staff(site=site, roles=[roles.CLINICIAN])
    officer_a = make_recipient(
        site=site,
        category=Category.PROBATION,
        organisation="County Probation",
        person_name="Officer A",
    )
    officer_b = make_recipient(
        site=site,
        category=Category.PROBATION,
        organisation="County Probation",
        person_name="Officer B",
    )
    until = dt.date(2026, 6, 30)
    consent = make_consent(
        person=person,
        recipients=[officer_a],
        purposes=["attendance"],
        scope=[Scope.ATTENDANCE],
        expires_on=until,
        signed_on=dt.date(2026, 1, 2),
    )
    before_expiry = dt.datetime(2026, 6, 30, 23, 0, tzinfo=HONOLULU)
    minute_after_expiry = dt.datetime(2026, 7, 1, 0, 1, tzinfo=HONOLULU)

    def approved(recipient, purpose="attendance", scope=(Scope.ATTENDANCE,)):
        # Every attempt below has its own fully approved request: approvals never help.
        request = make_request(person=person, recipient=recipient, purpose=purpose, scope=scope)
        approve_twice(request, site=site)
        return request

    def attempt(recipient, purpose, scope, at, request):
        with clock_at(at):  # the gate always decides now: move now
            return gate.release_attempt(
                site=site,
                path="adversarial_case_2",
                asked_by=asked_by,
                person=person,
                recipient=recipient,
                purpose=purpose,
                scope=scope,
                request=request,
            )

    tox = [Scope.ATTENDANCE, Scope.TOX]
    tries = [
        ("officer B", officer_b, "attendance", [Scope.ATTENDANCE], before_expiry,
         approved(officer_b), gate.REFUSED, "no_consent"),
        ("another purpose", officer_a, "compliance monitoring", [Scope.ATTENDANCE],
         before_expiry, approved(officer_a, purpose="compliance monitoring"), gate.REFUSED,
         "purpose_not_consented"),
        ("with tox results", officer_a, "attendance", tox, before_expiry,
         approved(officer_a, scope=tox), gate.REFUSED, "scope_not_consented"),
        ("tox results only", officer_a, "attendance", [Scope.TOX], before_expiry,
         approved(officer_a, scope=[Scope.TOX]), gate.REFUSED, "scope_not_consented"),
        ("one minute after expiry", officer_a, "attendance", [Scope.ATTENDANCE],
         minute_after_expiry, approved(officer_a), gate.REFUSED, "expired"),
        ("exact match, no approvals yet", officer_a, "attendance", [Scope.ATTENDANCE],
         before_expiry, make_request(person=person, recipient=officer_a), gate.HELD,
         "awaiting_approvals"),
        ("exact match, no request at all", officer_a, "attendance", [Scope.ATTENDANCE],
         before_expiry, None, gate.REFUSED, "approvals_required"),
    ]  # fmt: skip
    for label, recipient, purpose, scope, at, request, kind, reason in tries:
        decision = attempt(recipient, purpose, scope, at, request)
        assert (decision.decision, decision.reason) == (kind, reason), label
        assert decision.scope == (), label

    exact_request = approved(officer_a)
    exact = attempt(officer_a, "attendance", [Scope.ATTENDANCE], before_expiry, exact_request)
    assert exact.granted
    assert exact.consent == consent
    assert exact.scope == (Scope.ATTENDANCE,)

    revoke(consent, how="oral")
    after_oral = attempt(officer_a, "attendance", [Scope.ATTENDANCE], before_expiry, exact_request)
    assert (after_oral.decision, after_oral.reason) == (gate.HELD, "held_oral_revocation")

    rows = list(DisclosureLog.objects.order_by("pk"))
    expected = [(kind, reason) for *_, kind, reason in tries]
    expected += [(gate.GRANTED, "consent_valid"), (gate.HELD, "held_oral_revocation")]
    assert [(r.decision, r.reason) for r in rows] == expected
    assert all(r.person == person and r.asked_by == asked_by for r in rows)
    assert all(r.recipient_category == Category.PROBATION for r in rows)
    granted = [r for r in rows if r.decision == gate.GRANTED]
    assert len(granted) == 1
    assert granted[0].recipient == officer_a
    assert granted[0].scope == [Scope.ATTENDANCE]
    assert granted[0].legal_basis == f"consent {consent.pk}"


# --- Adversarial case 4 ----------------------------------------------------------------------


@pytest.fixture
def superuser(site):
    user = UserFactory(is_superuser=True, is_staff=True, username="root")
    user.user_permissions.set(Permission.objects.all())
    return user


@pytest.fixture
def admin_client(client, superuser):
    client.force_login(superuser)
    return client


@pytest.fixture
def court(site):
    return make_recipient(site=site, category=Category.COURT, organisation="County Court")


@pytest.fixture
def person(site):
    return make_person(site=site, name="Jordan")


@pytest.fixture
def log_row(site, person, court, clinician):
    make_consent(person=person, recipients=[court])
    gate.release_attempt(
        site=site,
        path="test",
        asked_by=clinician,
        person=person,
        recipient=court,
        purpose="attendance",
        scope=[Scope.ATTENDANCE],
    )
    return DisclosureLog.objects.get()


def snapshot(model, pk):
    return model.objects.filter(pk=pk).values().get()


def test_case_4_superuser_cannot_edit_a_disclosure_row_in_the_admin(admin_client, log_row):
    before = snapshot(DisclosureLog, log_row.pk)
    url = f"/admin/releases/disclosurelog/{log_row.pk}/change/"
    response = admin_client.post(
        url, {"decision": "granted", "reason": "consent_valid", "path": "test"}
    )
    assert response.status_code == 404
    assert snapshot(DisclosureLog, log_row.pk) == before


def test_case_4_superuser_cannot_delete_a_disclosure_row_in_the_admin(admin_client, log_row):
    url = f"/admin/releases/disclosurelog/{log_row.pk}/delete/"
    assert admin_client.get(url).status_code == 404
    assert admin_client.post(url, {"post": "yes"}).status_code == 404
    assert DisclosureLog.objects.filter(pk=log_row.pk).exists()


def test_case_4_superuser_cannot_bulk_delete_disclosure_rows_in_the_admin(admin_client, log_row):
    url = "/admin/releases/disclosurelog/"
    assert admin_client.get(url).status_code == 404
    response = admin_client.post(
        url,
        {"action": "delete_selected", "_selected_action": [log_row.pk], "index": 0, "post": "yes"},
    )
    assert response.status_code == 404
    assert DisclosureLog.objects.filter(pk=log_row.pk).exists()


@pytest.mark.parametrize("persona", ["superuser", "director", "privacy_officer"])
@pytest.mark.parametrize("model_name", ["consent", "recipient", "disclosurelog"], ids=lambda m: m)
def test_case_4_the_admin_offers_no_consent_recipient_or_disclosure_page_to_anyone(
    request, client, log_row, model_name, persona
):
    """They hold people's names: the privacy officer's pages keep them, by role, logged."""
    obj = {
        "consent": Consent.objects.first(),
        "recipient": Recipient.objects.first(),
        "disclosurelog": log_row,
    }[model_name]
    model = type(obj)
    before = snapshot(model, obj.pk)
    user = request.getfixturevalue(persona)
    client.force_login(user)
    # Signed-in staff who direct no site have no admin at all (403).
    expected = 403 if persona == "privacy_officer" else 404
    for name, args in (("changelist", []), ("add", []), ("change", [obj.pk]), ("delete", [obj.pk])):
        with pytest.raises(NoReverseMatch):
            reverse(f"admin:releases_{model_name}_{name}", args=args)
    base = f"/admin/releases/{model_name}/"
    for url in (base, f"{base}add/", f"{base}{obj.pk}/change/", f"{base}{obj.pk}/delete/"):
        assert client.get(url).status_code == expected, url
        assert client.post(url, {"category": Category.TREATMENT_PROVIDER}).status_code == expected
    if persona != "privacy_officer":
        index = client.get(reverse("admin:index"))
        assert "releases" not in {app["app_label"] for app in index.context["app_list"]}
    assert snapshot(model, obj.pk) == before


def test_case_4_orm_edits_and_deletes_of_the_log_are_refused(log_row):
    before = snapshot(DisclosureLog, log_row.pk)
    log_row.decision = gate.GRANTED
    with pytest.raises(PermissionError):
        log_row.save()
    with pytest.raises(PermissionError):
        log_row.delete()
    with pytest.raises(PermissionError):
        DisclosureLog.objects.filter(pk=log_row.pk).update(decision=gate.GRANTED)
    with pytest.raises(PermissionError):
        DisclosureLog.objects.filter(pk=log_row.pk).delete()
    assert snapshot(DisclosureLog, log_row.pk) == before


@pytest.mark.postgres
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE releases_disclosurelog SET decision = 'granted' WHERE id = %s",
        "DELETE FROM releases_disclosurelog WHERE id = %s",
    ],
    ids=["update", "delete"],
)
def test_case_4_raw_sql_on_postgresql_is_refused(log_row, sql):
    before = snapshot(DisclosureLog, log_row.pk)
    with (
        pytest.raises(DatabaseError),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql, [log_row.pk])
    assert snapshot(DisclosureLog, log_row.pk) == before


def test_case_4_recategorising_a_court_through_the_orm_is_refused(court):
    court.category = Category.TREATMENT_PROVIDER
    with pytest.raises(IntegrityError), transaction.atomic():
        court.save()
    with pytest.raises(IntegrityError), transaction.atomic():
        Recipient.objects.filter(pk=court.pk).update(category=Category.TREATMENT_PROVIDER)
    assert Recipient.objects.get(pk=court.pk).category == Category.COURT


def test_case_4_recategorising_a_court_in_the_admin_is_refused(admin_client, court):
    url = f"/admin/releases/recipient/{court.pk}/change/"
    response = admin_client.post(url, {"category": Category.TREATMENT_PROVIDER})
    assert response.status_code == 404
    assert Recipient.objects.get(pk=court.pk).category == Category.COURT


def test_case_4_a_forged_recategorisation_leaves_the_court_criminal_legal(
    superuser, person, court, site
):
    make_consent(person=person, recipients=[court])
    recategorise(court, Category.TREATMENT_PROVIDER, by=superuser, reason="it is a clinic now")
    assert court.current_category == Category.TREATMENT_PROVIDER

    def attempt(request=None):
        return gate.release_attempt(
            site=site,
            path="test",
            asked_by=superuser,
            person=person,
            recipient=court,
            purpose="attendance",
            scope=[Scope.ATTENDANCE],
            request=request,
        )

    assert (attempt().decision, attempt().reason) == (gate.REFUSED, "approvals_required")
    request = make_request(person=person, recipient=court, by=superuser)
    # The consent was signed for a court: it does not hold for the relabelled recipient.
    assert attempt(request).reason == "recipient_recategorised"
    approve_twice(request, site=site)
    assert attempt(request).reason == "recipient_recategorised"
    # A consent signed after the relabelling still needs both approvals: once a court,
    # always criminal-legal.
    make_consent(person=person, recipients=[court])
    assert attempt().reason == "approvals_required"
    assert attempt(request).granted  # only with consent and both approvals
    rows = DisclosureLog.objects.all()
    assert {r.recipient_category for r in rows} == {Category.COURT}


def test_case_4_emergency_release_to_a_court_is_refused_and_logged(site, person, court):
    from releases.errors import ReleaseError
    from releases.services.outgoing import emergency_release

    officer = make_staff(site=site, roles=[roles.PRIVACY_OFFICER, roles.CLINICIAN])
    for recipient in (court, _relabelled_court(site)):
        try:
            result = emergency_release(
                site=site,
                person=person,
                recipient=recipient,
                personnel_name="Dr. Ruiz",
                reason="unconscious, overdose suspected",
                scope=[Scope.MEDICATIONS],
                by=officer,
            )
        except ReleaseError:
            result = None
        assert result is None
        assert not EmergencyRelease.objects.filter(recipient=recipient).exists()
        row = DisclosureLog.objects.filter(recipient=recipient).get()
        assert row.decision == gate.REFUSED
        assert row.reason == "emergency_not_medical"
        assert row.legal_basis == "42 CFR 2.51"
    # (The relabelled court's row carries its current label; the gate's own rows carry
    # gate.logged_category(), which keeps it criminal-legal.)
    assert DisclosureLog.objects.get(recipient=court).recipient_category == Category.COURT


def _relabelled_court(site):
    court = make_recipient(site=site, category=Category.COURT, organisation="Drug Court")
    recategorise(court, Category.TREATMENT_PROVIDER)
    return court
