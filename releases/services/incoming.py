"""Requests from outside: subpoenas, warrants, court orders, official letters, calls.

RELEASES.md: a request alone never releases anything. It is logged (an IncomingRequest row and
a refused DisclosureLog row with reason `no_release_on_request`), routed to the privacy officer
and answered with the neutral reply, which neither confirms nor denies that anyone is or was a
patient. A court order (or warrant) is escalated: flagged and shown first to the privacy
officer. Nothing here calls the gate, because nothing here is released: an actual release is a
separate release request, decided by the gate on the person's consent.
"""

import logging
from datetime import datetime

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from clinic.models import Person, Site
from releases.errors import ReleaseError
from releases.models import DisclosureLog, IncomingRequest, Recipient
from releases.services.registry import require_privacy_officer

logger = logging.getLogger(__name__)

PATH = "incoming_request"
REASON = "no_release_on_request"
ESCALATED_KINDS = frozenset({IncomingRequest.Kind.COURT_ORDER, IncomingRequest.Kind.WARRANT})
TEXT_MAX = 300
ASKS_FOR_MAX = 2000


def _limited(value, *, max_length: int, code: str, label: str) -> str:
    value = (value or "").strip()
    if len(value) > max_length:
        raise ReleaseError(
            code,
            _("%(label)s can be at most %(max)d characters.") % {"label": label, "max": max_length},
        )
    return value


def incoming_log(
    *,
    site: Site,
    by,
    kind: str,
    received_at: datetime | None = None,
    from_recipient: Recipient | None = None,
    from_text: str = "",
    about_text: str,
    asks_for: str = "",
    person: Person | None = None,
) -> IncomingRequest:
    """Log a request from outside and the refusal that answers it, in one transaction.

    Locks nothing. Releases nothing, whatever consents exist: a release is a separate request
    through the gate. `person` (optional, the privacy officer's own match) is kept for the
    accounting and never appears in any reply.
    """
    require_privacy_officer(by, site)
    if kind not in IncomingRequest.Kind.values:
        raise ReleaseError("kind_required", _("Please choose what kind of request it is."))
    from_text = _limited(from_text, max_length=TEXT_MAX, code="from_too_long", label=_("From"))
    about_text = _limited(about_text, max_length=TEXT_MAX, code="about_too_long", label=_("About"))
    asks_for = _limited(
        asks_for, max_length=ASKS_FOR_MAX, code="asks_for_too_long", label=_("What they ask for")
    )
    if from_recipient is not None and (
        from_recipient.site_id != site.pk or from_recipient.pk is None
    ):
        raise ReleaseError("recipient_unknown", _("Please choose a recipient from the list."))
    if from_recipient is None and not from_text:
        raise ReleaseError(
            "from_required", _("Please say who the request is from (as they gave it).")
        )
    if not from_text:
        from_text = str(from_recipient)[:TEXT_MAX]
    if not about_text:
        raise ReleaseError(
            "about_required", _("Please write whom the request is about, as they gave it.")
        )
    if person is not None and person.site_id != site.pk:
        raise ReleaseError("person_unknown", _("That person is not known at this site."))
    now = timezone.now()
    received_at = received_at or now
    if received_at > now:
        raise ReleaseError("received_future", _("The time received cannot be in the future."))
    with transaction.atomic():
        incoming = IncomingRequest.objects.create(
            site=site,
            kind=kind,
            received_at=received_at,
            logged_by=by,
            from_recipient=from_recipient,
            from_text=from_text,
            about_text=about_text,
            person=person,
            asks_for=asks_for,
            escalated=kind in ESCALATED_KINDS,
        )
        # The log row is the record that something was asked for and nothing left.
        DisclosureLog.objects.create(
            at=now,
            site=site,
            asked_by=by,
            person=person,
            recipient=from_recipient,
            recipient_category=from_recipient.current_category if from_recipient else "",
            path=PATH,
            purpose=_("%(kind)s received") % {"kind": incoming.get_kind_display()},
            legal_basis=f"incoming {incoming.pk} ({kind})",
            scope=[],
            decision=DisclosureLog.Decision.REFUSED,
            reason=REASON,
        )
    logger.warning("Incoming %s %s logged by %s; nothing released", kind, incoming.pk, by.pk)
    return incoming
