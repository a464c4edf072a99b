"""The consent gate: the one function that decides whether information about a person may
leave for a recipient (RELEASES.md).

`release_decide` is pure: it reads current data and answers granted / refused / held with a
reason code. `release_attempt` is what every outbound path calls: it decides and writes the
disclosure log in one transaction, so a release whose log row cannot be written does not
happen. Default deny: anything missing, unknown or failing is a refusal. There is no
superuser or role bypass: permissions are never consulted here, only consent, recipient,
purpose, scope, time and approvals.

Outbound paths (each calls `release_attempt` at the moment of release; keep this list
complete when adding one):
  1. Preparing a release packet (releases.services.packet_generate).
  2. Handing a packet over (releases.services.packet_hand_over): decided again from current
     data, so a revocation or expiry after preparation voids the packet.
  3. Viewing, printing or downloading a packet as HTML or PDF (releases views): decided
     again every time.
  4. A medical emergency release (§2.51, releases.services.emergency_release): medical
     personnel only, reason typed, never to a criminal-legal recipient.
  5. Replies to requests from outside (subpoena, letter, call): never release anything;
     the neutral reply carries no data about anyone, and the attempt is logged.
  6. Exports containing identifiable clinical data: none exist yet; any added must go
     through `release_attempt` per person and leave out (and log) whoever is refused.
The Django admin shows consents, recipients and disclosure rows read-only and has no
release action.
"""

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from releases.models import (
    CRIMINAL_LEGAL,
    Approval,
    Category,
    Consent,
    DisclosureLog,
    Recipient,
    ReleaseRequest,
    Revocation,
    Scope,
)

logger = logging.getLogger(__name__)

GRANTED = DisclosureLog.Decision.GRANTED
REFUSED = DisclosureLog.Decision.REFUSED
HELD = DisclosureLog.Decision.HELD
ERROR = DisclosureLog.Decision.ERROR

# When no consent is valid, the reason reported is the most telling one found.
_REASON_ORDER = (
    "held_oral_revocation",
    "revoked",
    "expired",
    "not_yet_signed",
    "bundled_consent",
    "purpose_not_consented",
    "scope_not_consented",
)


@dataclass(frozen=True)
class Decision:
    decision: str
    reason: str
    consent: Consent | None = None
    scope: tuple[str, ...] = field(default_factory=tuple)

    @property
    def granted(self) -> bool:
        return self.decision == GRANTED


def normalise_purpose(text: str) -> str:
    return " ".join((text or "").split()).casefold()


def release_decide(
    *,
    person,
    recipient: Recipient | None,
    purpose: str,
    scope: Iterable[str],
    request: ReleaseRequest | None = None,
    at: datetime | None = None,
) -> Decision:
    """Decide one release from current data. Never raises: an error is a refusal."""
    try:
        return _decide(
            person=person,
            recipient=recipient,
            purpose=purpose,
            scope=scope,
            request=request,
            at=at or timezone.now(),
        )
    except Exception:
        logger.exception("Consent gate failed; refusing")
        return Decision(ERROR, "gate_error")


def _decide(*, person, recipient, purpose, scope, request, at) -> Decision:
    if person is None or getattr(person, "pk", None) is None:
        return Decision(REFUSED, "missing_person")
    if recipient is None or getattr(recipient, "pk", None) is None:
        return Decision(REFUSED, "missing_recipient")
    # Read the recipient again: a category changed a moment ago counts now.
    recipient = Recipient.objects.filter(pk=recipient.pk).first()
    if recipient is None:
        return Decision(REFUSED, "missing_recipient")
    history = recipient.category_history()
    if any(category not in Category.values for category in history):
        return Decision(REFUSED, "unknown_category")
    if not recipient.is_active:
        return Decision(REFUSED, "recipient_inactive")
    if recipient.site_id != person.site_id:
        return Decision(REFUSED, "other_site")
    wanted_purpose = normalise_purpose(purpose)
    if not wanted_purpose:
        return Decision(REFUSED, "missing_purpose")
    wanted_scope = set(scope or ())
    if not wanted_scope:
        return Decision(REFUSED, "missing_scope")
    if not wanted_scope <= set(Scope.values):
        return Decision(REFUSED, "unknown_scope")
    criminal_legal = bool(set(history) & CRIMINAL_LEGAL)
    if criminal_legal and request is None:
        return Decision(REFUSED, "approvals_required")

    candidates = list(
        Consent.objects.filter(person=person, recipients=recipient)
        .prefetch_related("purposes", "recipients", "revocations", "expiry_events")
        .order_by("-signed_on", "-pk")
    )
    if not candidates:
        return Decision(REFUSED, "no_consent")
    problems = []
    for consent in candidates:
        problem = _consent_problem(
            consent,
            criminal_legal=criminal_legal,
            purpose=wanted_purpose,
            scope=wanted_scope,
            at=at,
        )
        if problem is None:
            break
        problems.append(problem)
    else:
        reason = min(problems, key=_REASON_ORDER.index)
        decision = HELD if reason == "held_oral_revocation" else REFUSED
        return Decision(decision, reason)

    if criminal_legal and not _two_approvals(request):
        return Decision(HELD, "awaiting_approvals", consent)
    return Decision(GRANTED, "consent_valid", consent, tuple(sorted(wanted_scope)))


def _consent_problem(consent: Consent, *, criminal_legal, purpose, scope, at) -> str | None:
    tz = consent.site.tz
    today = timezone.localdate(at, tz)
    revocations = list(consent.revocations.all())
    if any(r.how == Revocation.How.WRITTEN for r in revocations):
        return "revoked"
    if revocations:
        return "held_oral_revocation"
    # A dated consent expires at the end of that local day at the disclosing site.
    if consent.expires_on is not None and today > consent.expires_on:
        return "expired"
    if consent.expiry_event and list(consent.expiry_events.all()):
        return "expired"
    if consent.expires_on is None and not consent.expiry_event:
        return "expired"  # no expiry at all is not a valid consent
    if consent.signed_on > today:
        return "not_yet_signed"
    # A consent to a criminal-legal recipient names that recipient alone.
    if criminal_legal and len(consent.recipients.all()) != 1:
        return "bundled_consent"
    if purpose not in {normalise_purpose(p.text) for p in consent.purposes.all()}:
        return "purpose_not_consented"
    consented = set(consent.scope) if isinstance(consent.scope, list) else set()
    if not scope <= consented:
        return "scope_not_consented"
    return None


def _two_approvals(request: ReleaseRequest) -> bool:
    """A privacy officer and a second, different staff member approved this request."""
    approvals = list(Approval.objects.filter(request=request))
    officers = {a.by_id for a in approvals if a.as_privacy_officer}
    everyone = {a.by_id for a in approvals}
    return bool(officers) and len(everyone) >= 2


def release_attempt(
    *,
    site,
    path: str,
    asked_by,
    person,
    recipient: Recipient | None,
    purpose: str,
    scope: Iterable[str],
    request: ReleaseRequest | None = None,
    packet=None,
    legal_basis: str = "",
    at: datetime | None = None,
) -> Decision:
    """Decide and write the disclosure log row, in one transaction. Every outbound path calls
    this at the moment of release and goes on only when the decision is granted."""
    at = at or timezone.now()
    scope = list(scope or ())
    with transaction.atomic():
        decision = release_decide(
            person=person,
            recipient=recipient,
            purpose=purpose,
            scope=scope,
            request=request,
            at=at,
        )
        DisclosureLog.objects.create(
            at=at,
            site=site,
            asked_by=asked_by,
            person=person if getattr(person, "pk", None) else None,
            recipient=recipient if getattr(recipient, "pk", None) else None,
            recipient_category=getattr(recipient, "category", "") or "",
            path=path,
            purpose=(purpose or "")[:300],
            legal_basis=legal_basis
            or (f"consent {decision.consent.pk}" if decision.consent else ""),
            scope=sorted(scope),
            decision=decision.decision,
            reason=decision.reason,
            request=request,
            packet=packet,
        )
    return decision
