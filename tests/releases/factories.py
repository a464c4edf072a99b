"""Builders for the release-of-information models, shared by the releases tests.

Plain keyword functions with safe defaults: every consent is complete (signed, revocation
statement, expiry), so a test changes only the one element it is about.
"""

import datetime as dt

from django.utils import timezone

from clinic import roles
from releases.models import (
    Approval,
    Category,
    Consent,
    ConsentPurpose,
    ConsentRecipientCategory,
    ExpiryEventRecord,
    Recipient,
    RecipientCategoryChange,
    ReleaseRequest,
    Revocation,
    Scope,
)
from tests.factories import PersonFactory, UserFactory, make_staff

SIGNATURE = "data:image/png;base64,iVBORw0KGgo="


def make_recipient(
    *,
    site,
    category=Category.TREATMENT_PROVIDER,
    organisation="Eastside Recovery",
    office="",
    person_name="",
    created_by=None,
    is_active=True,
):
    return Recipient.objects.create(
        site=site,
        organisation=organisation,
        office=office,
        person_name=person_name,
        category=category,
        is_active=is_active,
        created_by=created_by or UserFactory(),
    )


def make_consent(
    *,
    person,
    recipients,
    purposes=("attendance",),
    scope=(Scope.ATTENDANCE,),
    expires_on=None,
    expiry_event="",
    signed_on=None,
    site=None,
    recorded_by=None,
    raw_scope=None,
    seal=True,
    **fields,
):
    """A complete signed consent. Without expires_on/expiry_event it ends in a year.

    `raw_scope` stores exactly that value as the scope (to test malformed data): signed
    consents cannot be edited afterwards.
    """
    site = site or person.site
    today = timezone.localdate(timezone.now(), site.tz)
    if expires_on is None and not expiry_event:
        expires_on = today + dt.timedelta(days=365)
    consent = Consent.objects.create(
        person=person,
        site=site,
        scope=list(scope) if raw_scope is None else raw_scope,
        revocation_statement="Tell any staff member, or write to the privacy officer.",
        expires_on=expires_on,
        expiry_event=expiry_event,
        signed_by=Consent.SignedBy.PERSON,
        signature_image=SIGNATURE,
        signed_on=signed_on or today - dt.timedelta(days=1),
        recorded_by=recorded_by or UserFactory(),
        recorded_at=timezone.now(),
        **fields,
    )
    consent.recipients.set(recipients)
    for recipient in recipients:
        # As consent_record does: the category each recipient has at signing.
        ConsentRecipientCategory.objects.create(
            consent=consent, recipient=recipient, category=recipient.current_category
        )
    for text in purposes:
        ConsentPurpose.objects.create(consent=consent, text=text)
    if seal:
        # As consent_record does, last: from now on the database keeps it as it is.
        Consent.objects.filter(pk=consent.pk).update(sealed=True)
        consent.sealed = True
    return consent


def revoke(consent, *, how=Revocation.How.WRITTEN, by=None):
    return Revocation.objects.create(
        consent=consent,
        how=how,
        received_on=timezone.localdate(timezone.now(), consent.site.tz),
        taken_by=by or UserFactory(),
        recorded_at=timezone.now(),
    )


def record_expiry_event(consent, *, by=None):
    return ExpiryEventRecord.objects.create(
        consent=consent,
        happened_on=timezone.localdate(timezone.now(), consent.site.tz),
        recorded_by=by or UserFactory(),
        recorded_at=timezone.now(),
    )


def recategorise(recipient, to_category, *, by=None, reason="registry correction"):
    """A recorded category change, as the privacy officer's page would write it."""
    return RecipientCategoryChange.objects.create(
        recipient=recipient,
        from_category=recipient.current_category,
        to_category=to_category,
        by=by or UserFactory(),
        at=timezone.now(),
        reason=reason,
    )


# How a packet is handed over, for tests that hand one over.
HANDED = {"how": "in_person", "handed_to": "Officer A, at the front desk"}


def make_request(*, person, recipient, purpose="attendance", scope=(Scope.ATTENDANCE,), by=None):
    return ReleaseRequest.objects.create(
        site=person.site,
        person=person,
        recipient=recipient,
        purpose=purpose,
        scope=list(scope),
        requested_by=by or UserFactory(),
        requested_at=timezone.now(),
    )


def approve(request, *, by, as_privacy_officer):
    return Approval.objects.create(
        request=request, by=by, as_privacy_officer=as_privacy_officer, at=timezone.now()
    )


def approve_twice(request, *, site):
    """The two approvals a criminal-legal release needs: a privacy officer and a clinician."""
    officer = make_staff(site=site, roles=[roles.PRIVACY_OFFICER])
    colleague = make_staff(site=site, roles=[roles.CLINICIAN])
    approve(request, by=officer, as_privacy_officer=True)
    approve(request, by=colleague, as_privacy_officer=False)
    return officer, colleague


def make_person(*, site, **fields):
    return PersonFactory(site=site, **fields)
