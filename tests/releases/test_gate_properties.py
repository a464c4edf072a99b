"""Property-based test of the consent gate: whatever recipients, consents, revocations,
approvals and requests exist, a granted release is always backed by a valid consent and
never carries anything outside it, and every attempt writes exactly one log row."""

import datetime as dt
import zoneinfo
from collections import Counter

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clinic import roles
from releases import gate
from releases.models import CRIMINAL_LEGAL, Category, DisclosureLog, Revocation, Scope
from tests.factories import SiteFactory, make_staff
from tests.releases.clock import clock_at
from tests.releases.factories import (
    approve,
    make_consent,
    make_person,
    make_recipient,
    make_request,
    recategorise,
    record_expiry_event,
    revoke,
)

settings.register_profile(
    "gate",
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

TIMEZONES = ["Pacific/Honolulu", "Asia/Tokyo", "UTC", "America/Chicago"]
PURPOSES = ["attendance", "compliance", "treatment coordination", "housing"]
SCOPES = Scope.values

scope_sets = st.sets(st.sampled_from(SCOPES), min_size=1, max_size=4).map(sorted)


def spelled(purpose):
    """The same purpose as staff might type it: case and spacing vary."""
    return st.sampled_from([purpose, purpose.upper(), f"  {purpose} ", purpose.title()])


recipient_specs = st.fixed_dictionaries(
    {
        "category": st.sampled_from(Category.values),
        "relabel": st.none() | st.sampled_from(Category.values),
        "active": st.sampled_from([True, True, True, True, False]),
    }
)

consent_specs = st.fixed_dictionaries(
    {
        "recipients": st.sets(st.integers(0, 2), min_size=1, max_size=3),
        "scope": scope_sets,
        "purposes": st.sets(st.sampled_from(PURPOSES[:3]), min_size=1, max_size=2),
        "expiry": st.one_of(
            st.tuples(st.just("date"), st.integers(-2, 4)),
            st.tuples(st.just("event"), st.booleans()),  # (event, recorded?)
        ),
        "signed": st.integers(-5, 1),  # days from today; positive: not yet signed
        "revocation": st.sampled_from(["none", "none", "none", "oral", "written"]),
    }
)

attempt_specs = st.fixed_dictionaries(
    {
        "recipient": st.integers(0, 2),
        "purpose": st.sampled_from([*PURPOSES, "", "attendance."]).flatmap(spelled),
        "scope": st.one_of(scope_sets, st.just([]), scope_sets.map(lambda s: [*s, "everything"])),
        # hours from now, or a second either side of the end of a consent's expiry day
        "when": st.one_of(
            st.integers(-72, 72).map(lambda h: ("hours", h)),
            st.tuples(st.just("edge"), st.integers(0, 2), st.sampled_from([-1, 1])),
        ),
        "request": st.sampled_from(
            ["none", "matching", "matching", "matching", "other_recipient", "other_person"]
        ),
        "approvers": st.sampled_from([{"officer", "colleague"}, {"officer", "officer_plain"}])
        | st.sets(st.sampled_from(["officer", "colleague", "colleague2", "officer_plain"])),
        "from_consent": st.sampled_from([None, 0, 0, 0, 1, 2]),
    }
)


def end_of_local_day(day, tz):
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=tz)


def check_granted(decision, *, person, recipient, purpose, scope, request, at):
    """Independent check of everything a granted decision must rest on."""
    consent = decision.consent
    assert consent is not None
    assert consent.person_id == person.pk
    assert recipient.pk in {r.pk for r in consent.recipients.all()}
    assert not consent.revocations.exists()
    local_day = timezone.localdate(at, consent.site.tz)
    assert consent.signed_on <= local_day
    assert consent.expires_on is not None or consent.expiry_event
    if consent.expires_on is not None:
        assert at < end_of_local_day(consent.expires_on, consent.site.tz)
    if consent.expiry_event:
        assert not consent.expiry_events.exists()
    wanted = " ".join(purpose.split()).casefold()
    assert wanted in {" ".join(p.text.split()).casefold() for p in consent.purposes.all()}
    assert set(scope) <= set(consent.scope)
    assert decision.scope == tuple(sorted(set(scope)))
    assert set(decision.scope) <= set(SCOPES)
    history = {recipient.category, *recipient.category_history()}
    if history & CRIMINAL_LEGAL:
        assert request is not None
        assert (request.person_id, request.recipient_id) == (person.pk, recipient.pk)
        assert set(scope) <= set(request.scope)
        approvals = list(request.approvals.all())
        assert len({a.by_id for a in approvals}) >= 2
        assert any(a.as_privacy_officer for a in approvals)
        assert consent.recipients.count() == 1


@pytest.mark.django_db
def test_nothing_leaves_outside_a_valid_consent_and_every_attempt_is_logged():
    outcomes = Counter()

    @settings(settings.get_profile("gate"))
    @given(
        tz_name=st.sampled_from(TIMEZONES),
        recipients=st.lists(recipient_specs, min_size=3, max_size=3),
        consents=st.lists(consent_specs, min_size=1, max_size=3) | st.just([]),
        attempts=st.lists(attempt_specs, min_size=1, max_size=3),
    )
    def example(tz_name, recipients, consents, attempts):
        with transaction.atomic():
            run_example(tz_name, recipients, consents, attempts, outcomes)
            transaction.set_rollback(True)

    example()
    # The property is not vacuous: both grants and refusals were generated and checked.
    assert outcomes[gate.GRANTED] > 0, outcomes
    assert outcomes[gate.REFUSED] > 0, outcomes


def run_example(tz_name, recipient_specs_, consent_specs_, attempt_specs_, outcomes):
    tz = zoneinfo.ZoneInfo(tz_name)
    site = SiteFactory(timezone=tz_name)
    person = make_person(site=site)
    today = timezone.localdate(timezone.now(), tz)
    staff = {
        "officer": make_staff(site=site, roles=[roles.PRIVACY_OFFICER]),
        "officer_plain": make_staff(site=site, roles=[roles.PRIVACY_OFFICER]),
        "colleague": make_staff(site=site, roles=[roles.CLINICIAN]),
        "colleague2": make_staff(site=site, roles=[roles.CLINICIAN]),
    }
    recipients = []
    for i, spec in enumerate(recipient_specs_):
        recipient = make_recipient(
            site=site,
            category=spec["category"],
            organisation=f"Recipient {i}",
            is_active=spec["active"],
        )
        if spec["relabel"] and spec["relabel"] != spec["category"]:
            recategorise(recipient, spec["relabel"])
        recipients.append(recipient)

    consents = []
    for spec in consent_specs_:
        kind, value = spec["expiry"]
        consent = make_consent(
            person=person,
            recipients=[recipients[i] for i in spec["recipients"]],
            purposes=sorted(spec["purposes"]),
            scope=spec["scope"],
            expires_on=today + dt.timedelta(days=value) if kind == "date" else None,
            expiry_event="" if kind == "date" else "treatment ends",
            signed_on=today + dt.timedelta(days=spec["signed"]),
        )
        if kind == "event" and value:
            record_expiry_event(consent)
        if spec["revocation"] != "none":
            revoke(consent, how=Revocation.How(spec["revocation"]))
        consents.append((consent, spec))

    for spec in attempt_specs_:
        recipient = recipients[spec["recipient"]]
        purpose, scope = spec["purpose"], spec["scope"]
        if spec["from_consent"] is not None and spec["from_consent"] < len(consents):
            # Ask for what a consent names, so that valid releases are generated too.
            consent, cspec = consents[spec["from_consent"]]
            recipient = recipients[min(cspec["recipients"])]
            purpose = min(cspec["purposes"])
            scope = cspec["scope"][: max(1, len(cspec["scope"]) - 1)]
        if spec["when"][0] == "hours":
            at = timezone.now() + dt.timedelta(hours=spec["when"][1])
        else:
            _, day_offset, side = spec["when"]
            at = end_of_local_day(today + dt.timedelta(days=day_offset), tz) + dt.timedelta(
                seconds=side
            )
        request = None
        if spec["request"] != "none":
            target, about = recipient, person
            if spec["request"] == "other_recipient":
                target = recipients[(recipients.index(recipient) + 1) % len(recipients)]
            elif spec["request"] == "other_person":
                about = make_person(site=site)  # approvals given for someone else
            request = make_request(
                person=about,
                recipient=target,
                purpose=purpose.strip() or "attendance",
                scope=[s for s in scope if s in SCOPES] or [Scope.ATTENDANCE],
            )
            for name in sorted(spec["approvers"]):
                approve(request, by=staff[name], as_privacy_officer=(name == "officer"))

        rows_before = DisclosureLog.objects.count()
        with clock_at(at):  # the gate always decides now: move now
            decision = gate.release_attempt(
                site=site,
                path="property",
                asked_by=staff["colleague"],
                person=person,
                recipient=recipient,
                purpose=purpose,
                scope=scope,
                request=request,
            )
        outcomes[decision.decision] += 1
        outcomes[decision.reason] += 1
        assert DisclosureLog.objects.count() == rows_before + 1
        row = DisclosureLog.objects.order_by("-pk").first()
        assert (row.decision, row.reason) == (decision.decision, decision.reason)
        assert (row.person_id, row.recipient_id, row.at) == (person.pk, recipient.pk, at)
        assert row.scope == sorted(scope)
        assert decision.decision != gate.ERROR, decision
        if decision.granted:
            check_granted(
                decision,
                person=person,
                recipient=recipient,
                purpose=purpose,
                scope=scope,
                request=request,
                at=at,
            )
        else:
            assert decision.scope == ()
