"""Every rule of the consent gate (releases.gate.release_decide / release_attempt), each with
its reason code. Default deny: anything missing, unknown or failing is a refusal."""

import datetime as dt
import inspect
import zoneinfo

import pytest
from django.contrib.auth.models import Group, Permission
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone

from clinic import roles
from clinic.models import Membership, Person
from releases import gate
from releases.models import Category, DisclosureLog, Recipient, RecipientCategoryChange, Scope
from releases.services import outgoing
from tests.factories import SiteFactory, UserFactory, make_staff
from tests.releases.clock import clock_at
from tests.releases.factories import (
    approve,
    approve_twice,
    make_consent,
    make_person,
    make_recipient,
    make_request,
    recategorise,
    record_expiry_event,
    revoke,
)

pytestmark = pytest.mark.django_db

ATT = [Scope.ATTENDANCE]


@pytest.fixture
def person(site):
    return make_person(site=site, name="Jordan")


@pytest.fixture
def provider(site):
    return make_recipient(site=site, category=Category.TREATMENT_PROVIDER)


@pytest.fixture
def probation(site):
    return make_recipient(
        site=site, category=Category.PROBATION, organisation="County Probation", person_name="A"
    )


def decide(person, recipient, purpose="attendance", scope=ATT, **kw):
    return gate.release_decide(
        person=person, recipient=recipient, purpose=purpose, scope=scope, **kw
    )


def attempt(person, recipient, purpose="attendance", scope=ATT, *, asked_by=None, **kw):
    return gate.release_attempt(
        site=person.site,
        path="test",
        asked_by=asked_by,
        person=person,
        recipient=recipient,
        purpose=purpose,
        scope=scope,
        **kw,
    )


def assert_refused(decision, reason, kind=gate.REFUSED):
    assert (decision.decision, decision.reason) == (kind, reason)
    assert not decision.granted
    assert decision.scope == ()


# --- the baseline: a valid consent to a treatment provider is granted ---------------------------


def test_valid_consent_is_granted_with_exactly_the_requested_scope(person, provider):
    consent = make_consent(
        person=person, recipients=[provider], scope=[Scope.ATTENDANCE, Scope.MEDICATIONS]
    )
    decision = decide(person, provider, scope=[Scope.ATTENDANCE])
    assert decision.granted
    assert decision.reason == "consent_valid"
    assert decision.consent == consent
    assert decision.scope == (Scope.ATTENDANCE,)


# --- missing or unknown inputs -------------------------------------------------------------------


def test_missing_person(person, provider):
    make_consent(person=person, recipients=[provider])
    assert_refused(decide(None, provider), "missing_person")
    assert_refused(decide(Person(site=person.site, name="unsaved"), provider), "missing_person")


def test_missing_recipient(person, provider):
    make_consent(person=person, recipients=[provider])
    assert_refused(decide(person, None), "missing_recipient")
    unsaved = Recipient(site=person.site, organisation="Free text", category=provider.category)
    assert_refused(decide(person, unsaved), "missing_recipient")


@pytest.mark.parametrize("purpose", ["", "   ", "\t\n", None])
def test_missing_purpose(person, provider, purpose):
    make_consent(person=person, recipients=[provider])
    assert_refused(decide(person, provider, purpose=purpose), "missing_purpose")


@pytest.mark.parametrize("scope", [[], (), None, set()])
def test_missing_scope_is_never_a_wildcard(person, provider, scope):
    make_consent(person=person, recipients=[provider], scope=Scope.values)
    assert_refused(decide(person, provider, scope=scope), "missing_scope")


@pytest.mark.parametrize(
    "scope",
    [
        [Scope.ATTENDANCE, "everything"],
        ["*"],
        ["ATTENDANCE"],
        "attendance",  # a bare string is not a list of categories
    ],
)
def test_unknown_scope_item(person, provider, scope):
    make_consent(person=person, recipients=[provider], scope=Scope.values)
    assert_refused(decide(person, provider, scope=scope), "unknown_scope")


def test_unknown_category_in_history_is_refused(person, provider):
    make_consent(person=person, recipients=[provider])
    RecipientCategoryChange.objects.create(
        recipient=provider,
        from_category=provider.category,
        to_category="friendly_court",
        by=UserFactory(),
        at=timezone.now(),
        reason="forged",
    )
    assert_refused(decide(person, provider), "unknown_category")


def test_recipient_inactive(person, site):
    inactive = make_recipient(site=site, is_active=False)
    make_consent(person=person, recipients=[inactive])
    assert_refused(decide(person, inactive), "recipient_inactive")


def test_recipient_of_another_site(person, other_site):
    elsewhere = make_recipient(site=other_site)
    make_consent(person=person, recipients=[elsewhere])
    assert_refused(decide(person, elsewhere), "other_site")


def test_recipient_deactivated_after_consent_is_read_again(person, provider):
    make_consent(person=person, recipients=[provider])
    assert decide(person, provider).granted
    Recipient.objects.filter(pk=provider.pk).update(is_active=False)
    # The caller still holds the stale, active instance: the gate reads current data.
    assert provider.is_active
    assert_refused(decide(person, provider), "recipient_inactive")


# --- consent ---------------------------------------------------------------------------------


def test_no_consent_at_all(person, provider):
    assert_refused(decide(person, provider), "no_consent")


def test_consent_for_another_recipient_or_person_is_no_consent(person, provider, site):
    other_provider = make_recipient(site=site, organisation="Westside Clinic")
    someone_else = make_person(site=site)
    make_consent(person=person, recipients=[other_provider], scope=Scope.values)
    make_consent(person=someone_else, recipients=[provider], scope=Scope.values)
    assert_refused(decide(person, provider), "no_consent")


def test_written_revocation_refuses(person, provider):
    consent = make_consent(person=person, recipients=[provider])
    assert decide(person, provider).granted
    revoke(consent, how="written")
    assert_refused(decide(person, provider), "revoked")


def test_oral_revocation_holds(person, provider):
    consent = make_consent(person=person, recipients=[provider])
    revoke(consent, how="oral")
    assert_refused(decide(person, provider), "held_oral_revocation", kind=gate.HELD)


def test_oral_then_written_revocation_is_revoked(person, provider):
    consent = make_consent(person=person, recipients=[provider])
    revoke(consent, how="oral")
    revoke(consent, how="written")
    assert_refused(decide(person, provider), "revoked")


def test_revoked_consent_does_not_hide_behind_an_older_valid_one(person, provider):
    """Two consents: the newer is revoked, the older is still valid -> the older grants;
    but revoking both refuses."""
    older = make_consent(
        person=person, recipients=[provider], signed_on=timezone.localdate() - dt.timedelta(days=30)
    )
    newer = make_consent(person=person, recipients=[provider])
    revoke(newer)
    decision = decide(person, provider)
    assert decision.granted and decision.consent == older
    revoke(older)
    assert_refused(decide(person, provider), "revoked")


@pytest.mark.parametrize("tz_name", ["Pacific/Honolulu", "Asia/Tokyo"])
def test_expiry_date_ends_at_the_end_of_the_local_day(tz_name):
    """Honolulu is UTC-10: 23:59:59 local is already the next UTC day (a UTC-date gate would
    refuse). Tokyo is UTC+9: 00:00:01 local the next day is still the expiry day in UTC (a
    UTC-date gate would grant)."""
    tz = zoneinfo.ZoneInfo(tz_name)
    far_site = SiteFactory(timezone=tz_name)
    person = make_person(site=far_site)
    provider = make_recipient(site=far_site)
    expires = dt.date(2026, 3, 10)
    make_consent(
        person=person,
        recipients=[provider],
        expires_on=expires,
        signed_on=dt.date(2026, 1, 5),
    )
    last_second = dt.datetime(2026, 3, 10, 23, 59, 59, tzinfo=tz)
    first_second = dt.datetime(2026, 3, 11, 0, 0, 1, tzinfo=tz)
    just_after_midnight = dt.datetime(2026, 3, 11, 0, 0, 0, tzinfo=tz)
    if tz_name == "Pacific/Honolulu":
        assert last_second.astimezone(dt.UTC).date() == dt.date(2026, 3, 11)
    else:
        assert first_second.astimezone(dt.UTC).date() == dt.date(2026, 3, 10)

    with clock_at(last_second):
        granted = decide(person, provider)
    assert granted.granted, granted
    with clock_at(first_second):
        assert_refused(decide(person, provider), "expired")
    with clock_at(just_after_midnight):
        assert_refused(decide(person, provider), "expired")
    # release_attempt decides at the moment it runs, and logs that moment.
    with clock_at(first_second):
        assert_refused(attempt(person, provider), "expired")
    assert DisclosureLog.objects.get().at == first_second


def test_expiry_event_recorded_expires(person, provider):
    consent = make_consent(
        person=person, recipients=[provider], expires_on=None, expiry_event="end of treatment"
    )
    assert consent.expires_on is None
    assert decide(person, provider).granted  # the event has not been recorded yet
    record_expiry_event(consent)
    assert_refused(decide(person, provider), "expired")


def test_not_yet_signed(person, provider):
    tomorrow = timezone.localdate(timezone.now(), person.site.tz) + dt.timedelta(days=1)
    make_consent(person=person, recipients=[provider], signed_on=tomorrow)
    assert_refused(decide(person, provider), "not_yet_signed")


def test_bundled_consent_to_a_criminal_legal_recipient_is_refused(person, provider, probation):
    make_consent(person=person, recipients=[probation, provider])
    request = make_request(person=person, recipient=probation)
    approve_twice(request, site=person.site)
    assert_refused(decide(person, probation, request=request), "bundled_consent")


def test_bundled_consent_naming_a_criminal_legal_recipient_grants_nobody(
    person, provider, probation
):
    """The clinic's rule: consent to a criminal-legal recipient cannot be bundled with other
    consents. A bundled form is not a valid consent for its treatment provider either."""
    make_consent(person=person, recipients=[probation, provider])
    assert_refused(decide(person, provider), "bundled_consent")


def test_purpose_not_consented(person, provider):
    make_consent(person=person, recipients=[provider], purposes=["attendance"])
    assert_refused(decide(person, provider, purpose="housing application"), "purpose_not_consented")


@pytest.mark.parametrize("asked", ["Attendance", "  attendance ", "ATTENDANCE\t", "attendance"])
def test_purpose_match_ignores_only_case_and_whitespace(person, provider, asked):
    make_consent(person=person, recipients=[provider], purposes=["attendance"])
    assert decide(person, provider, purpose=asked).granted


@pytest.mark.parametrize(
    "asked", ["attendance.", "attendances", "attendance and tox", "attend ance", "any purpose"]
)
def test_purpose_match_is_not_fuzzy(person, provider, asked):
    make_consent(person=person, recipients=[provider], purposes=["attendance"])
    assert_refused(decide(person, provider, purpose=asked), "purpose_not_consented")


def test_purpose_internal_whitespace_is_normalised(person, provider):
    make_consent(person=person, recipients=[provider], purposes=["Attendance  letter"])
    assert decide(person, provider, purpose="attendance\nletter").granted


def test_scope_not_consented(person, provider):
    make_consent(person=person, recipients=[provider], scope=[Scope.ATTENDANCE])
    assert_refused(
        decide(person, provider, scope=[Scope.ATTENDANCE, Scope.TOX]), "scope_not_consented"
    )


@pytest.mark.parametrize("named", Scope.values)
def test_a_consent_covers_exactly_the_categories_it_names(person, provider, named):
    make_consent(person=person, recipients=[provider], scope=[named])
    assert decide(person, provider, scope=[named]).scope == (named,)
    for other in Scope.values:
        if other == named:
            continue
        assert_refused(decide(person, provider, scope=[other]), "scope_not_consented")
        assert_refused(decide(person, provider, scope=[named, other]), "scope_not_consented")


@pytest.mark.parametrize("bad_scope", [{"attendance": True}, "attendance", []])
def test_a_malformed_consent_scope_covers_nothing(person, provider, bad_scope):
    make_consent(person=person, recipients=[provider], raw_scope=bad_scope)
    assert not decide(person, provider).granted


# --- criminal-legal recipients: approvals --------------------------------------------------------


def test_criminal_legal_without_a_request_is_refused(person, probation):
    make_consent(person=person, recipients=[probation])
    assert_refused(decide(person, probation), "approvals_required")


def test_criminal_legal_needs_an_officer_and_a_second_person(
    person, probation, privacy_officer, clinician, second_clinician
):
    make_consent(person=person, recipients=[probation])
    request = make_request(person=person, recipient=probation)
    assert_refused(decide(person, probation, request=request), "awaiting_approvals", gate.HELD)

    approve(request, by=clinician, as_privacy_officer=False)
    approve(request, by=second_clinician, as_privacy_officer=False)
    # Two people, but neither a privacy officer: held.
    assert_refused(decide(person, probation, request=request), "awaiting_approvals", gate.HELD)

    approve(request, by=privacy_officer, as_privacy_officer=True)
    decision = decide(person, probation, request=request)
    assert decision.granted
    assert decision.scope == (Scope.ATTENDANCE,)


def test_privacy_officer_alone_is_not_enough(person, probation, privacy_officer):
    make_consent(person=person, recipients=[probation])
    request = make_request(person=person, recipient=probation)
    approve(request, by=privacy_officer, as_privacy_officer=True)
    assert_refused(decide(person, probation, request=request), "awaiting_approvals", gate.HELD)


def test_the_same_person_cannot_approve_twice(person, probation, privacy_officer):
    make_consent(person=person, recipients=[probation])
    request = make_request(person=person, recipient=probation)
    approve(request, by=privacy_officer, as_privacy_officer=True)
    with pytest.raises(IntegrityError), transaction.atomic():
        approve(request, by=privacy_officer, as_privacy_officer=False)
    assert request.approvals.count() == 1
    assert_refused(decide(person, probation, request=request), "awaiting_approvals", gate.HELD)


@pytest.mark.parametrize("category", sorted(c.value for c in gate.CRIMINAL_LEGAL))
def test_every_criminal_legal_category_needs_approvals(person, site, category):
    recipient = make_recipient(site=site, category=category)
    make_consent(person=person, recipients=[recipient])
    assert_refused(decide(person, recipient), "approvals_required")
    request = make_request(person=person, recipient=recipient)
    assert_refused(decide(person, recipient, request=request), "awaiting_approvals", gate.HELD)
    approve_twice(request, site=site)
    assert decide(person, recipient, request=request).granted


# A request's approvals are for that request: that person, that recipient, that purpose and
# that scope. They can never be borrowed for another release.


def test_approvals_for_another_person_are_not_borrowed(person, probation, site):
    someone_else = make_person(site=site)
    make_consent(person=person, recipients=[probation])
    make_consent(person=someone_else, recipients=[probation])
    approved = make_request(person=someone_else, recipient=probation)
    approve_twice(approved, site=site)
    assert_refused(decide(person, probation, request=approved), "request_mismatch")


def test_approvals_for_another_recipient_are_not_borrowed(person, probation, site):
    court = make_recipient(site=site, category=Category.COURT, organisation="County Court")
    make_consent(person=person, recipients=[probation])
    make_consent(person=person, recipients=[court])
    approved = make_request(person=person, recipient=court)
    approve_twice(approved, site=site)
    assert_refused(decide(person, probation, request=approved), "request_mismatch")


def test_approvals_do_not_stretch_to_more_scope_or_another_purpose(person, probation, site):
    make_consent(
        person=person,
        recipients=[probation],
        purposes=["attendance", "compliance"],
        scope=[Scope.ATTENDANCE, Scope.TOX],
    )
    approved = make_request(person=person, recipient=probation, scope=[Scope.ATTENDANCE])
    approve_twice(approved, site=site)
    assert decide(person, probation, request=approved).granted
    assert_refused(
        decide(person, probation, scope=[Scope.ATTENDANCE, Scope.TOX], request=approved),
        "request_mismatch",
    )
    assert_refused(
        decide(person, probation, purpose="compliance", request=approved), "request_mismatch"
    )


def test_a_request_edited_in_memory_is_read_again(person, probation, site):
    someone_else = make_person(site=site)
    make_consent(person=someone_else, recipients=[probation])
    make_consent(person=person, recipients=[probation])
    approved = make_request(person=person, recipient=probation)
    approve_twice(approved, site=site)
    approved.person = someone_else  # not saved: the approvals were for `person`
    assert_refused(decide(someone_else, probation, request=approved), "request_mismatch")


# --- recategorisation ------------------------------------------------------------------------


def test_court_relabelled_as_treatment_provider_is_still_criminal_legal(person, site):
    court = make_recipient(site=site, category=Category.COURT, organisation="County Court")
    make_consent(person=person, recipients=[court])
    recategorise(court, Category.TREATMENT_PROVIDER)
    assert court.current_category == Category.TREATMENT_PROVIDER
    assert court.is_criminal_legal
    assert_refused(decide(person, court), "approvals_required")
    request = make_request(person=person, recipient=court)
    # The consent given to a court does not hold for what is now labelled otherwise...
    assert_refused(decide(person, court, request=request), "recipient_recategorised")
    # ...and one signed after the relabelling still needs both approvals.
    make_consent(person=person, recipients=[court])
    assert_refused(decide(person, court, request=request), "awaiting_approvals", gate.HELD)


def test_provider_recategorised_as_court_after_consent_is_re_evaluated(person, provider):
    make_consent(person=person, recipients=[provider])
    assert decide(person, provider).granted
    recategorise(provider, Category.COURT)
    # Same (stale) instance in the caller's hands; the gate reads the current category.
    assert_refused(decide(person, provider), "approvals_required")


def test_category_column_cannot_be_changed_by_save(site):
    court = make_recipient(site=site, category=Category.COURT)
    court.category = Category.TREATMENT_PROVIDER
    with pytest.raises(DatabaseError) as caught, transaction.atomic():
        court.save()
    assert isinstance(caught.value, IntegrityError), type(caught.value)
    assert Recipient.objects.get(pk=court.pk).category == Category.COURT


def test_category_column_cannot_be_changed_by_queryset_update(site):
    court = make_recipient(site=site, category=Category.COURT)
    with pytest.raises(DatabaseError) as caught, transaction.atomic():
        Recipient.objects.filter(pk=court.pk).update(category=Category.TREATMENT_PROVIDER)
    assert isinstance(caught.value, IntegrityError), type(caught.value)
    assert Recipient.objects.get(pk=court.pk).category == Category.COURT


def test_other_recipient_fields_can_still_be_edited(site):
    court = make_recipient(site=site, category=Category.COURT)
    Recipient.objects.filter(pk=court.pk).update(contact="new address")
    assert Recipient.objects.get(pk=court.pk).contact == "new address"


# --- errors, superusers and the log --------------------------------------------------------------


def test_an_exception_inside_the_decision_is_an_error_refusal(person, provider, monkeypatch):
    make_consent(person=person, recipients=[provider])

    def boom(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(Recipient, "category_history", boom)
    decision = decide(person, provider)
    assert_refused(decision, "gate_error", kind=gate.ERROR)

    attempt(person, provider)
    row = DisclosureLog.objects.get()
    assert (row.decision, row.reason) == ("error", "gate_error")


def test_a_failing_consent_query_is_an_error_refusal(person, provider, monkeypatch):
    make_consent(person=person, recipients=[provider])

    def boom(*args, **kwargs):
        raise DatabaseError("consent table unreadable")

    monkeypatch.setattr(type(gate.Consent.objects), "filter", boom)
    assert_refused(decide(person, provider), "gate_error", kind=gate.ERROR)


def test_a_database_error_in_the_decision_is_still_logged(person, provider, monkeypatch):
    """On PostgreSQL a failed statement poisons the transaction: the gate must contain it so
    the 'error' attempt is still written to the log (every attempt is logged)."""
    make_consent(person=person, recipients=[provider])

    def broken_history(self):
        with connection.cursor() as cursor:
            cursor.execute("SELECT * FROM no_such_table_for_the_gate")
        return []

    monkeypatch.setattr(Recipient, "category_history", broken_history)
    decision = attempt(person, provider)
    assert_refused(decision, "gate_error", kind=gate.ERROR)
    row = DisclosureLog.objects.get()
    assert (row.decision, row.reason) == ("error", "gate_error")


def test_superuser_gets_no_bypass(person, probation, provider):
    boss = UserFactory(is_superuser=True, is_staff=True)
    boss.user_permissions.set(Permission.objects.all())
    assert boss.has_perm("releases.manage_releases")
    # No consent: refused, whoever asks.
    assert_refused(attempt(person, provider, asked_by=boss), "no_consent")
    # With a consent to probation, a superuser's approval stored as the privacy officer's
    # counts for nothing: they hold no role and do not work at the site.
    make_consent(person=person, recipients=[probation])
    request = make_request(person=person, recipient=probation)
    approve(request, by=boss, as_privacy_officer=True)
    assert_refused(
        attempt(person, probation, asked_by=boss, request=request), "approver_not_at_site"
    )


def test_the_gate_never_consults_permissions(person, provider, monkeypatch):
    make_consent(person=person, recipients=[provider])
    clinician = make_staff(site=person.site, roles=[roles.CLINICIAN])

    def forbidden(*args, **kwargs):
        raise AssertionError("the gate must not look at permissions")

    from django.contrib.auth.models import AnonymousUser, PermissionsMixin

    monkeypatch.setattr(PermissionsMixin, "has_perm", forbidden)
    monkeypatch.setattr(AnonymousUser, "has_perm", forbidden)
    assert attempt(person, provider, asked_by=clinician).granted
    assert_refused(
        attempt(person, provider, scope=[Scope.TOX], asked_by=clinician), "scope_not_consented"
    )


def test_release_attempt_writes_exactly_one_row_with_everything(person, probation, clinician):
    consent = make_consent(person=person, recipients=[probation])
    request = make_request(person=person, recipient=probation, by=clinician)
    approve_twice(request, site=person.site)
    at = timezone.now().replace(microsecond=0)
    with clock_at(at):
        decision = attempt(
            person, probation, purpose="attendance", asked_by=clinician, request=request
        )
    assert decision.granted
    row = DisclosureLog.objects.get()
    assert row.at == at
    assert row.site == person.site
    assert row.asked_by == clinician
    assert row.person == person
    assert row.recipient == probation
    assert row.recipient_category == Category.PROBATION
    assert row.path == "test"
    assert row.purpose == "attendance"
    assert row.legal_basis == f"consent {consent.pk}"
    assert row.scope == [Scope.ATTENDANCE]
    assert row.decision == "granted"
    assert row.reason == "consent_valid"
    assert row.request == request


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"recipient": None}, "missing_recipient"),
        ({"purpose": ""}, "missing_purpose"),
        ({"scope": []}, "missing_scope"),
        ({"scope": ["tox"]}, "scope_not_consented"),
    ],
)
def test_every_refusal_is_one_log_row_too(person, provider, clinician, change, reason):
    make_consent(person=person, recipients=[provider])
    kwargs = {"recipient": provider, "purpose": "attendance", "scope": ATT, **change}
    decision = gate.release_attempt(
        site=person.site, path="test", asked_by=clinician, person=person, **kwargs
    )
    assert decision.reason == reason
    row = DisclosureLog.objects.get()
    assert (row.decision, row.reason) == ("refused", reason)
    assert row.legal_basis == ""
    assert row.person == person


def test_missing_person_is_logged_without_a_person(provider, clinician, site):
    gate.release_attempt(
        site=site,
        path="test",
        asked_by=clinician,
        person=None,
        recipient=provider,
        purpose="attendance",
        scope=ATT,
    )
    row = DisclosureLog.objects.get()
    assert (row.person, row.reason) == (None, "missing_person")


def test_the_log_records_the_category_at_the_time(person, provider):
    make_consent(person=person, recipients=[provider])
    recategorise(provider, Category.COURT)
    attempt(person, provider)
    row = DisclosureLog.objects.get()
    assert row.recipient_category == Category.COURT
    assert row.reason == "approvals_required"


def test_if_the_log_cannot_be_written_nothing_is_granted(person, provider, monkeypatch):
    make_consent(person=person, recipients=[provider])

    def fail(*args, **kwargs):
        raise DatabaseError("disk full")

    monkeypatch.setattr(type(DisclosureLog.objects), "create", fail)
    with pytest.raises(DatabaseError):
        attempt(person, provider)
    monkeypatch.undo()
    assert DisclosureLog.objects.count() == 0


def test_decisions_are_from_current_data_every_time(person, provider):
    consent = make_consent(person=person, recipients=[provider])
    assert attempt(person, provider).granted
    revoke(consent, how="oral")
    assert attempt(person, provider).decision == gate.HELD
    assert list(DisclosureLog.objects.order_by("pk").values_list("decision", flat=True)) == [
        "granted",
        "held",
    ]


def test_the_log_keeps_a_relabelled_court_as_criminal_legal(person, site):
    court = make_recipient(site=site, category=Category.COURT, organisation="County Court")
    make_consent(person=person, recipients=[court])
    recategorise(court, Category.TREATMENT_PROVIDER)
    attempt(person, court)
    row = DisclosureLog.objects.get()
    assert (row.recipient_category, row.reason) == (Category.COURT, "approvals_required")


def test_a_consent_letting_another_site_disclose_does_not_let_this_one(
    person, provider, other_site
):
    """ "Who may disclose" is part of the consent: a consent naming another site is not a
    consent for the person's own site to release."""
    make_consent(person=person, recipients=[provider], site=other_site)
    assert_refused(decide(person, provider), "consent_other_site")


def test_release_attempt_from_another_site_is_refused(person, provider, other_site):
    make_consent(person=person, recipients=[provider])
    decision = gate.release_attempt(
        site=other_site,
        path="test",
        asked_by=None,
        person=person,
        recipient=provider,
        purpose="attendance",
        scope=ATT,
    )
    assert_refused(decision, "other_site")
    row = DisclosureLog.objects.get()
    assert (row.site, row.decision, row.reason, row.legal_basis) == (
        other_site,
        "refused",
        "other_site",
        "",
    )


def test_two_consents_are_never_combined(person, provider):
    """One consent for attendance, another for tox results under another purpose: asking for
    both, or for tox under the first one's purpose, is not covered by any single consent."""
    make_consent(person=person, recipients=[provider], purposes=["attendance"], scope=ATT)
    make_consent(person=person, recipients=[provider], purposes=["care"], scope=[Scope.TOX])
    both = [Scope.ATTENDANCE, Scope.TOX]
    assert not decide(person, provider, purpose="attendance", scope=both).granted
    assert not decide(person, provider, purpose="care", scope=both).granted
    assert not decide(person, provider, purpose="attendance", scope=[Scope.TOX]).granted
    assert decide(person, provider, purpose="care", scope=[Scope.TOX]).scope == (Scope.TOX,)
    assert decide(person, provider, purpose="attendance", scope=ATT).scope == (Scope.ATTENDANCE,)


@pytest.mark.parametrize("scope", [{"attendance": True}, ("attendance", "attendance")])
def test_odd_scope_containers_grant_no_more_than_named(person, provider, scope):
    make_consent(person=person, recipients=[provider], scope=Scope.values)
    decision = decide(person, provider, scope=scope)
    assert decision.scope == (Scope.ATTENDANCE,)


@pytest.mark.parametrize("scope", [[Scope.ATTENDANCE, 1], [Scope.ATTENDANCE, None]])
def test_non_text_scope_items_are_refused(person, provider, scope):
    make_consent(person=person, recipients=[provider], scope=Scope.values)
    assert not decide(person, provider, scope=scope).granted


# --- approvals are re-checked at release time ----------------------------------------------------


@pytest.fixture
def approved_probation(person, probation):
    """A consent to probation and a request approved by a privacy officer and a colleague."""
    make_consent(person=person, recipients=[probation])
    request = make_request(person=person, recipient=probation)
    officer, colleague = approve_twice(request, site=person.site)
    assert attempt(person, probation, request=request).granted
    return request, officer, colleague


def test_an_approver_whose_account_was_deactivated_no_longer_counts(person, approved_probation):
    request, _officer, colleague = approved_probation
    colleague.is_active = False
    colleague.save(update_fields=["is_active"])
    assert_refused(attempt(person, request.recipient, request=request), "approver_inactive")


def test_an_approving_privacy_officer_whose_account_was_deactivated_no_longer_counts(
    person, approved_probation
):
    request, officer, _colleague = approved_probation
    officer.is_active = False
    officer.save(update_fields=["is_active"])
    assert_refused(attempt(person, request.recipient, request=request), "approver_inactive")


def test_an_approver_who_left_the_site_no_longer_counts(person, approved_probation):
    request, _officer, colleague = approved_probation
    Membership.objects.filter(user=colleague, site=person.site).delete()
    assert_refused(attempt(person, request.recipient, request=request), "approver_not_at_site")


def test_an_approval_given_as_privacy_officer_needs_the_role_still(person, approved_probation):
    request, officer, _colleague = approved_probation
    membership = officer.memberships.get(site=person.site)
    membership.roles.set([Group.objects.get(name=roles.CLINICIAN)])
    decision = attempt(person, request.recipient, request=request)
    assert_refused(decision, "approver_not_officer")
    assert DisclosureLog.objects.order_by("-pk").first().reason == "approver_not_officer"


def test_a_stored_privacy_officer_flag_alone_counts_for_nothing(person, probation):
    # Someone who never held the role, recorded as the privacy officer (e.g. a bad import).
    make_consent(person=person, recipients=[probation])
    request = make_request(person=person, recipient=probation)
    pretender = make_staff(site=person.site, roles=[roles.CLINICIAN])
    colleague = make_staff(site=person.site, roles=[roles.CLINICIAN])
    approve(request, by=pretender, as_privacy_officer=True)
    approve(request, by=colleague, as_privacy_officer=False)
    assert_refused(attempt(person, probation, request=request), "approver_not_officer")


def test_a_stale_approval_does_not_matter_when_enough_current_ones_remain(
    person, approved_probation
):
    request, _officer, colleague = approved_probation
    third = make_staff(site=person.site, roles=[roles.CLINICIAN])
    approve(request, by=third, as_privacy_officer=False)
    colleague.is_active = False
    colleague.save(update_fields=["is_active"])
    assert attempt(person, request.recipient, request=request).granted


# --- no caller can choose the time of a decision -------------------------------------------------


@pytest.mark.parametrize(
    "function",
    [
        gate.release_decide,
        gate.release_attempt,
        outgoing.release_request_create,
        outgoing.release_approve,
        outgoing.packet_generate,
        outgoing.packet_hand_over,
        outgoing.packet_open,
        outgoing.emergency_release,
    ],
    ids=lambda f: f.__name__,
)
def test_no_decision_or_release_can_be_given_another_time(function):
    parameters = inspect.signature(function).parameters
    assert not {"at", "now", "when", "time"} & set(parameters), function.__name__


def test_passing_a_time_to_the_gate_is_an_error(person, provider):
    make_consent(person=person, recipients=[provider], expires_on=timezone.localdate())
    yesterday = timezone.now() - dt.timedelta(days=1)
    with pytest.raises(TypeError):
        attempt(person, provider, at=yesterday)
    with pytest.raises(TypeError):
        decide(person, provider, at=yesterday)
    assert not DisclosureLog.objects.exists()
