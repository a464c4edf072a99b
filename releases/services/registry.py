"""The recipient registry, kept by the privacy officer (RELEASES.md "Recipients").

Nothing is ever released to a free-text recipient: every consent and request names a row here.
A recipient's category column never changes (a database trigger refuses it); recategorising
writes a RecipientCategoryChange, and the gate treats a recipient that was ever criminal-legal
as criminal-legal.
"""

import logging

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from clinic.models import Site
from clinic.sites import can
from releases.errors import ReleaseError
from releases.models import (
    CRIMINAL_LEGAL,
    Category,
    Consent,
    Recipient,
    RecipientCategoryChange,
    RecipientStatusChange,
)

logger = logging.getLogger(__name__)

MANAGE = "releases.manage_releases"
FIELD_MAX = {"organisation": 200, "office": 200, "person_name": 200, "contact": 1000}
REASON_MAX = 300


def is_privacy_officer(user, site: Site | None) -> bool:
    """The user is this site's privacy officer by role; never just for being a superuser."""
    return can(user, MANAGE, site)


def require_privacy_officer(user, site: Site) -> None:
    if not is_privacy_officer(user, site):
        raise ReleaseError(
            "not_privacy_officer", _("Only the privacy officer of this site may do this.")
        )


def _text(value, *, field: str, label: str) -> str:
    value = (value or "").strip()
    if len(value) > FIELD_MAX[field]:
        raise ReleaseError(
            f"{field}_too_long",
            _("%(label)s can be at most %(max)d characters.")
            % {"label": label, "max": FIELD_MAX[field]},
        )
    return value


def recipient_add(
    *,
    site: Site,
    by,
    organisation: str,
    category: str,
    office: str = "",
    person_name: str = "",
    contact: str = "",
) -> Recipient:
    """Add a recipient to the site's registry. A criminal-legal recipient must name an office
    or a person, so that a consent can never name "any court" or "any probation officer"."""
    require_privacy_officer(by, site)
    organisation = _text(organisation, field="organisation", label=_("Organisation"))
    office = _text(office, field="office", label=_("Office"))
    person_name = _text(person_name, field="person_name", label=_("Named person"))
    contact = _text(contact, field="contact", label=_("Contact"))
    if not organisation:
        raise ReleaseError("organisation_required", _("Please enter the organisation."))
    if category not in Category.values:
        raise ReleaseError("unknown_category", _("Please choose a category from the list."))
    if category in CRIMINAL_LEGAL and not (office or person_name):
        raise ReleaseError(
            "criminal_legal_unspecific",
            _(
                "For a court, probation, parole, pretrial, police, prosecutor or corrections "
                "recipient, name the office or the person: a consent can never be to "
                "“any court”."
            ),
        )
    with transaction.atomic():
        duplicate = Recipient.objects.filter(
            site=site,
            organisation__iexact=organisation,
            office__iexact=office,
            person_name__iexact=person_name,
            is_active=True,
        ).exists()
        if duplicate:
            raise ReleaseError("duplicate", _("This recipient is already in the registry."))
        recipient = Recipient.objects.create(
            site=site,
            organisation=organisation,
            office=office,
            person_name=person_name,
            contact=contact,
            category=category,
            created_by=by,
        )
    logger.info("Recipient %s added (%s) by %s", recipient.pk, category, by.pk)
    return recipient


def recipient_deactivate(*, recipient: Recipient, by, reason: str) -> RecipientStatusChange:
    """Take a recipient out of use: the gate refuses releases to an inactive recipient, and it
    is no longer offered for new consents. Recorded as a RecipientStatusChange row (who,
    when, why). Locks the recipient row."""
    require_privacy_officer(by, recipient.site)
    reason = (reason or "").strip()
    if not reason:
        raise ReleaseError("reason_required", _("Please say why it goes out of use."))
    if len(reason) > REASON_MAX:
        raise ReleaseError(
            "reason_too_long",
            _("The reason can be at most %(max)d characters.") % {"max": REASON_MAX},
        )
    with transaction.atomic():
        locked = Recipient.objects.select_for_update().get(pk=recipient.pk)
        if not locked.is_active:
            raise ReleaseError("already_inactive", _("This recipient is already out of use."))
        locked.is_active = False
        locked.save(update_fields=["is_active"])
        change = RecipientStatusChange.objects.create(
            recipient=locked, is_active=False, by=by, at=timezone.now(), reason=reason
        )
    recipient.is_active = False
    logger.info("Recipient %s deactivated by %s", recipient.pk, by.pk)
    return change


def consents_in_force_for(recipient: Recipient, *, category: str | None = None) -> list:
    """Signed consents naming `recipient` that are in force (not revoked, held or expired) and
    were signed when it had `category` (default: its current one): the consents a change of
    its category would stop from allowing releases to it."""
    from releases.services.consents import consent_status  # it imports this module

    category = category or recipient.current_category
    consents = (
        Consent.objects.filter(
            recipients=recipient,
            sealed=True,
            recipient_categories__recipient=recipient,
            recipient_categories__category=category,
        )
        .select_related("site")
        .prefetch_related("revocations")
        .distinct()
    )
    return [c for c in consents if consent_status(c) == "in_force"]


def recipient_recategorise(
    *, recipient: Recipient, to_category: str, by, reason: str
) -> RecipientCategoryChange:
    """Record a change of the recipient's category (who, when, from, to, why).

    Only the site's privacy officer (never a superuser as such). Locks the recipient row so two
    changes are recorded one after the other, each from the category the other left. The gate
    keeps treating a recipient that was ever criminal-legal as criminal-legal.

    A consent holds only for the category its recipient had when it was signed, so every
    consent signed under the old category stops allowing releases to this recipient. The
    returned change carries `consents_ended`: how many such consents were in force (the page
    warns before and says how many after).
    """
    require_privacy_officer(by, recipient.site)
    reason = (reason or "").strip()
    if not reason:
        raise ReleaseError("reason_required", _("Please say why the category changes."))
    if len(reason) > REASON_MAX:
        raise ReleaseError(
            "reason_too_long",
            _("The reason can be at most %(max)d characters.") % {"max": REASON_MAX},
        )
    if to_category not in Category.values:
        raise ReleaseError("unknown_category", _("Please choose a category from the list."))
    with transaction.atomic():
        locked = Recipient.objects.select_for_update().get(pk=recipient.pk)
        current = locked.current_category
        if to_category == current:
            raise ReleaseError("same_category", _("The recipient already has this category."))
        ended = len(consents_in_force_for(locked, category=current))
        change = RecipientCategoryChange.objects.create(
            recipient=locked,
            from_category=current,
            to_category=to_category,
            by=by,
            at=timezone.now(),
            reason=reason,
        )
    change.consents_ended = ended
    logger.warning(
        "Recipient %s recategorised %s -> %s by %s; %d consents in force no longer hold for it",
        recipient.pk,
        current,
        to_category,
        by.pk,
        ended,
    )
    return change
