"""The consent gate: the one function that decides whether information about a person may
leave for a recipient (RELEASES.md).

`release_decide` is pure: it reads current data and answers granted / refused / held with a
reason code. `release_attempt` is what every outbound path calls: it decides and writes the
disclosure log in one transaction, so a release whose log row cannot be written does not
happen. Default deny: anything missing, unknown or failing is a refusal. There is no
superuser or role bypass: the asker's permissions are never consulted here, only consent,
recipient, purpose, scope, the time (always now: no caller can pass another) and approvals.
A record merged into another (two records of one person) is refused ("person_merged"): its
records moved to the kept one. The kept record's consents include those signed under records
merged into it (a signed consent stays with the record it was signed under): the person is
the same, and each consent is still judged alone, with its own recipient, purpose, scope,
expiry and revocations, so nothing is released that one consent did not cover.
A consent holds only for the category its recipient had when it was signed (recorded per
recipient at signing, ConsentRecipientCategory): a recipient recategorised since, either way,
is refused under it ("recipient_recategorised") until the person signs a new consent.
Approvals are re-checked at release time: each approver must be someone other than the
person who asked, still an active account working at the site, and the privacy officer's
approval must come from someone who still holds that role (reasons approver_is_requester,
approver_inactive, approver_not_at_site, approver_not_officer).

A granted `release_attempt` (or `emergency_attempt`) carries a Permit: the only thing the
packet builders (releases.packets.build_packet, packet_document, packet_pdf, export_items)
accept. Only this module can make one; it is bound to the disclosure-log row just written
(its path, person, recipient, request, packet, scope), checked against that row when spent,
and spent once (`redeem`). So no packet document, and no export row, can be built except from
the gate's decision for exactly that release, at that moment.

Outbound paths (each calls `release_attempt` at the moment of release and builds only from
its permit; keep this list complete when adding one):
  1. Preparing a release packet (releases.services.outgoing.packet_generate, path
     "packet_generate"): the packet holds exactly the granted scope.
  2. Handing a packet over (releases.services.outgoing.packet_hand_over, "packet_hand_over"):
     decided again from current data, so a revocation or expiry after preparation voids the
     packet.
  3. Viewing, printing or downloading a packet as HTML or PDF
     (releases.services.outgoing.packet_open, "packet_view" / "packet_pdf"): decided again
     every time, the document drawn from that decision's permit; a void packet is never
     shown again.
  4. A medical emergency release (§2.51, releases.services.outgoing.emergency_release,
     "emergency_release"): not a consent decision, but decided here too by its own explicit
     rule (`emergency_attempt`: medical personnel only — a registered recipient that is and
     always was a treatment provider, the receiving person there named — the nature of the
     emergency typed, never criminal-legal), which writes the disclosure log, granted or
     refused, with legal basis "42 CFR 2.51". What was sent is stored (EmergencyRelease:
     document, manifest, SHA-256) and reviewed afterwards by the site's privacy officer
     (EmergencyReview); the review page (releases.views.outgoing.emergency_detail) shows the
     stored record inside the clinic and writes the access log, it sends nothing anywhere.
  5. Replies to requests from outside (subpoena, letter, call): never release anything;
     the neutral reply carries no data about anyone, and the attempt is logged.
  6. The attendance export (manage.py export_attendance, "export_attendance"): one
     `release_attempt` per person, rows read only through its permit; whoever is refused is
     absent from the CSV and logged. Any other export of identifiable clinical data must do
     the same.
The Django admin shows consents, recipients and disclosure rows read-only and has no
release action.
"""

import logging
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from clinic.models import Person
from clinic.people import with_merged
from clinic.sites import can
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

MANAGE = "releases.manage_releases"

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
    "consent_other_site",
    "recipient_recategorised",
    "purpose_not_consented",
    "scope_not_consented",
)


class NotPermitted(PermissionError):
    """A packet document (or export rows) asked for without the gate's granted decision for
    exactly that release. A bug, never a person's mistake: nothing is built."""


# Only this module holds the issuer; Permit() refuses anything else. Issued permits are also
# remembered (weakly), so a permit copied, unpickled or made with object.__new__ is unknown.
_ISSUER = object()
_issued: "weakref.WeakSet[Permit]" = weakref.WeakSet()


@dataclass(frozen=True)
class EmergencyFacts:
    """What a §2.51 release names besides its recipient: who received it there, why."""

    personnel_name: str
    nature: str
    released_by: object


class Permit:
    """The gate's "yes" to one release, as the packet builders (releases.packets) take it.

    Issued only here, by `release_attempt` or `emergency_attempt` when they grant, after the
    disclosure log row is written; bound to that row, the path, the person, the recipient, the
    request and packet (if any), the consent and the granted scope. It can be spent once
    (`redeem`), which checks all of that again, against the log row in the database: a
    decision is never cached, queued or reused for another release."""

    FIELDS = (
        "log_id",
        "path",
        "site",
        "person",
        "recipient",
        "request",
        "packet",
        "consent",
        "scope",
        "purpose",
        "emergency",
    )
    __slots__ = (*FIELDS, "_spent", "__weakref__")

    def __init__(self, issuer, **fields):
        if issuer is not _ISSUER:
            raise NotPermitted("Only the consent gate issues permits.")
        for name in self.FIELDS:
            object.__setattr__(self, name, fields.pop(name))
        if fields:
            raise TypeError(f"Unknown permit fields: {sorted(fields)}")
        object.__setattr__(self, "_spent", False)
        _issued.add(self)

    def __setattr__(self, name, value):
        raise AttributeError("A permit cannot be changed.")

    def __reduce_ex__(self, protocol):
        raise NotPermitted("A permit cannot be copied or stored.")

    def __repr__(self) -> str:
        return f"<Permit log={self.log_id} path={self.path}>"


@dataclass(frozen=True)
class Decision:
    decision: str
    reason: str
    consent: Consent | None = None
    scope: tuple[str, ...] = field(default_factory=tuple)
    # Only when release_attempt / emergency_attempt granted (never from release_decide).
    permit: Permit | None = field(default=None, compare=False, repr=False)

    @property
    def granted(self) -> bool:
        return self.decision == GRANTED


def _pk(obj):
    return getattr(obj, "pk", None) if obj is not None else None


def redeem(permit, *, paths: Iterable[str], packet=None) -> Permit:
    """Spend a permit for one build. Raises NotPermitted unless `permit` is one this module
    issued, not spent yet, for one of `paths`, for `packet` when one is given (its request
    and consent too), and its granted disclosure-log row says exactly the same."""
    if type(permit) is not Permit or permit not in _issued:
        raise NotPermitted("Only a permit the consent gate issued can build a packet.")
    if permit._spent:
        raise NotPermitted("This permit was already used: ask the gate again.")
    object.__setattr__(permit, "_spent", True)
    if permit.path not in set(paths):
        raise NotPermitted(f"The permit is for {permit.path}, not for this.")
    if packet is not None and (
        _pk(permit.packet) is None
        or permit.packet.pk != packet.pk
        or packet.request_id != _pk(permit.request)
        or packet.consent_id != _pk(permit.consent)
    ):
        raise NotPermitted("The permit is for another release.")
    if packet is None and permit.packet is not None:
        raise NotPermitted("The permit is for another release.")
    row = (
        DisclosureLog.objects.filter(pk=permit.log_id)
        .values("decision", "path", "person_id", "recipient_id", "request_id", "packet_id", "scope")
        .first()
    )
    expected = {
        "decision": GRANTED,
        "path": permit.path,
        "person_id": _pk(permit.person),
        "recipient_id": _pk(permit.recipient),
        "request_id": _pk(permit.request),
        "packet_id": _pk(permit.packet),
        "scope": sorted(permit.scope),
    }
    if row != expected:
        raise NotPermitted("The permit does not match the disclosure log.")
    return permit


def normalise_purpose(text: str) -> str:
    return " ".join((text or "").split()).casefold()


def release_decide(
    *,
    person,
    recipient: Recipient | None,
    purpose: str,
    scope: Iterable[str],
    request: ReleaseRequest | None = None,
) -> Decision:
    """Decide one release from current data, now. Never raises: an error is a refusal.

    There is deliberately no way to pass a time: a decision is always about this moment, so
    no caller can decide a release as of an earlier (or later) day."""
    try:
        # A savepoint: a failed query must not poison the caller's transaction (PostgreSQL),
        # or the 'error' attempt could not be written to the log.
        with transaction.atomic():
            return _decide(
                person=person,
                recipient=recipient,
                purpose=purpose,
                scope=scope,
                request=request,
                at=timezone.now(),
            )
    except Exception:
        logger.exception("Consent gate failed; refusing")
        return Decision(ERROR, "gate_error")


def _decide(*, person, recipient, purpose, scope, request, at) -> Decision:
    if person is None or getattr(person, "pk", None) is None:
        return Decision(REFUSED, "missing_person")
    # Read the person again: a record merged a moment ago is no longer anyone's record to
    # release from (its records moved to the kept one, which is asked about instead).
    merged_into = (
        Person.objects.filter(pk=person.pk).values_list("merged_into_id", flat=True).first()
    )
    if merged_into is not None:
        return Decision(REFUSED, "person_merged")
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
    if request is not None:
        # Approvals are for one request: this person, recipient and purpose, at most its scope.
        # Read it again so an edited, unsaved instance cannot borrow another's approvals.
        request = ReleaseRequest.objects.filter(pk=request.pk).first() if request.pk else None
        if (
            request is None
            or request.person_id != person.pk
            or request.recipient_id != recipient.pk
            or request.site_id != person.site_id
            or normalise_purpose(request.purpose) != wanted_purpose
            or not isinstance(request.scope, list)
            or not wanted_scope <= set(request.scope)
        ):
            return Decision(REFUSED, "request_mismatch")
    criminal_legal = bool(set(history) & CRIMINAL_LEGAL)
    if criminal_legal and request is None:
        return Decision(REFUSED, "approvals_required")

    candidates = _consents_for(person, recipient)
    if not candidates:
        return Decision(REFUSED, "no_consent")
    problems = []
    for consent in candidates:
        problem = _consent_problem(
            consent,
            recipient_id=recipient.pk,
            category=history[-1],
            site_id=person.site_id,
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

    if criminal_legal:
        problem = _approvals_problem(request)
        if problem == "awaiting_approvals":
            return Decision(HELD, problem, consent)
        if problem:
            return Decision(REFUSED, problem, consent)
    return Decision(GRANTED, "consent_valid", consent, tuple(sorted(wanted_scope)))


def _consents_for(person, recipient) -> list[Consent]:
    return list(
        # Only sealed consents: a row whose recording did not finish is not a consent. The
        # person's own, and those signed under a record merged into theirs (two records of one
        # person): each is still judged on its own, never combined with another.
        Consent.objects.filter(person_id__in=with_merged(person), recipients=recipient, sealed=True)
        .prefetch_related(
            "purposes", "recipients", "revocations", "expiry_events", "recipient_categories"
        )
        .order_by("-signed_on", "-pk")
    )


def consent_coverage(*, person, recipient, purpose: str, scope: Iterable[str]) -> tuple[str, list]:
    """For staff making a request: which of the information asked for no current consent
    covers, so the request can be corrected before it is saved. Decides nothing, logs nothing
    and lets nothing out: every release is still decided by `release_attempt`, then.

    Returns ("", items no single valid consent covers) when a consent to this recipient for
    this purpose holds now (judged item by item as the gate judges a whole request: by one
    consent, never by several combined), else (the gate's reason code, every item)."""
    wanted = set(scope or ())
    recipient = Recipient.objects.filter(pk=getattr(recipient, "pk", None)).first()
    if person is None or recipient is None or not wanted:
        return "missing_recipient" if recipient is None else "missing_scope", sorted(wanted)
    history = recipient.category_history()
    problems, best = [], None
    for consent in _consents_for(person, recipient):
        problem = _consent_problem(
            consent,
            recipient_id=recipient.pk,
            category=history[-1] if history else None,
            site_id=person.site_id,
            criminal_legal=bool(set(history) & CRIMINAL_LEGAL),
            purpose=normalise_purpose(purpose),
            scope=set(),  # every consent valid for the purpose; its scope is weighed below
            at=timezone.now(),
        )
        if problem:
            problems.append(problem)
            continue
        covered = wanted & (set(consent.scope) if isinstance(consent.scope, list) else set())
        if best is None or len(covered) > len(best):
            best = covered
    if best is None:
        return (min(problems, key=_REASON_ORDER.index) if problems else "no_consent"), sorted(
            wanted
        )
    return "", sorted(wanted - best)


def _consent_problem(
    consent: Consent, *, recipient_id, category, site_id, criminal_legal, purpose, scope, at
) -> str | None:
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
    # A consent to a criminal-legal recipient names that recipient alone; a form bundling one
    # with other recipients is not a valid consent for any of them.
    named = list(consent.recipients.all())
    if len(named) != 1 and (criminal_legal or any(r.is_criminal_legal for r in named)):
        return "bundled_consent"
    # "Who may disclose" is the person's own site (where the records and the recipient are).
    if consent.site_id != site_id:
        return "consent_other_site"
    # A consent holds only for the category the recipient had when it was signed: a treatment
    # provider since recategorised as a court is not whom the person agreed to (nor is a court
    # since relabelled). No recorded category is no consent for it (default deny).
    signed_as = {row.recipient_id: row.category for row in consent.recipient_categories.all()}
    if signed_as.get(recipient_id) != category:
        return "recipient_recategorised"
    if purpose not in {normalise_purpose(p.text) for p in consent.purposes.all()}:
        return "purpose_not_consented"
    consented = set(consent.scope) if isinstance(consent.scope, list) else set()
    if not scope <= consented:
        return "scope_not_consented"
    return None


def _approver_problem(approval: Approval, request: ReleaseRequest) -> str:
    """An approval counts only while its giver could give it now: someone other than the
    person who asked, still an active account, still working at the request's site, and (for
    the privacy officer's approval) still the privacy officer there, by role. Read at release
    time, never from the stored flag alone."""
    site, user = request.site, approval.by
    if user.pk == request.requested_by_id:
        return "approver_is_requester"
    if not user.is_active:
        return "approver_inactive"
    if not user.memberships.filter(site=site, site__is_active=True, roles__isnull=False).exists():
        return "approver_not_at_site"
    if approval.as_privacy_officer and not can(user, MANAGE, site):
        return "approver_not_officer"
    return ""


def _approvals_problem(request: ReleaseRequest) -> str:
    """ "" when a privacy officer and a second, different staff member approved this request
    and both still may; otherwise the reason code. Approvals that no longer count are
    ignored; if what is left is not enough because of one, its reason is reported."""
    approvals = list(Approval.objects.filter(request=request).select_related("by"))
    valid, problems = [], []
    for approval in approvals:
        problem = _approver_problem(approval, request)
        (problems.append(problem) if problem else valid.append(approval))
    officers = {a.by_id for a in valid if a.as_privacy_officer}
    everyone = {a.by_id for a in valid}
    if officers and len(everyone) >= 2:
        return ""
    return problems[0] if problems else "awaiting_approvals"


def logged_category(recipient) -> str:
    """The category the gate applied: the current one, or the latest criminal-legal one if a
    once criminal-legal recipient has been relabelled (it is still treated as one)."""
    fallback = getattr(recipient, "category", "") or ""
    if getattr(recipient, "pk", None) is None:
        return fallback
    try:
        with transaction.atomic():
            history = recipient.category_history()
    except Exception:
        logger.exception("Could not read the recipient's category history for the log")
        return fallback
    criminal = [c for c in history if c in CRIMINAL_LEGAL]
    return criminal[-1] if criminal and history[-1] not in CRIMINAL_LEGAL else history[-1]


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
) -> Decision:
    """Decide and write the disclosure log row, in one transaction. Every outbound path calls
    this at the moment of release and goes on only when the decision is granted. The time is
    always now: there is no parameter to backdate (or postdate) a decision."""
    at = timezone.now()
    scope = list(scope or ())
    with transaction.atomic():
        decision = release_decide(
            person=person,
            recipient=recipient,
            purpose=purpose,
            scope=scope,
            request=request,
        )
        # Only the person's own site discloses their records.
        if decision.granted and getattr(site, "pk", None) != person.site_id:
            decision = Decision(REFUSED, "other_site")
        row = DisclosureLog.objects.create(
            at=at,
            site=site,
            asked_by=asked_by,
            person=person if getattr(person, "pk", None) else None,
            recipient=recipient if getattr(recipient, "pk", None) else None,
            recipient_category=logged_category(recipient),
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
    if not decision.granted:
        return decision
    permit = Permit(
        _ISSUER,
        log_id=row.pk,
        path=path,
        site=site,
        person=person,
        recipient=recipient,
        request=request,
        packet=packet,
        consent=decision.consent,
        scope=tuple(sorted(scope)),
        purpose=purpose,
        emergency=None,
    )
    return replace(decision, permit=permit)


# --- medical emergency (§2.51) ----------------------------------------------------------------

EMERGENCY_BASIS = "42 CFR 2.51"
EMERGENCY_PATH = "emergency_release"
# Medical personnel: of the registry's categories, only a treatment provider is one.
MEDICAL = frozenset({Category.TREATMENT_PROVIDER})


def emergency_purpose(nature: str) -> str:
    return (
        (_("Medical emergency: %(reason)s") % {"reason": nature})[:300]
        if nature
        else _("Medical emergency")
    )


def _emergency_problem(*, person, recipient, personnel_name, nature, scope) -> str:
    if person is None or getattr(person, "pk", None) is None:
        return "missing_person"
    if recipient is None or getattr(recipient, "pk", None) is None:
        return "missing_recipient"
    recipient = Recipient.objects.filter(pk=recipient.pk).first()
    if recipient is None:
        return "missing_recipient"
    # Medical personnel only: a registered recipient that is, and always was, a treatment
    # provider (never one that was ever criminal-legal, or anything else), still in use.
    if not set(recipient.category_history()) <= MEDICAL or not recipient.is_active:
        return "emergency_not_medical"
    if recipient.site_id != person.site_id:
        return "other_site"
    if not nature:
        return "emergency_reason_missing"
    if not personnel_name:
        return "emergency_personnel_missing"
    if not scope or not set(scope) <= set(Scope.values):
        return "missing_scope" if not scope else "unknown_scope"
    return ""


def emergency_attempt(
    *, site, asked_by, person, recipient, personnel_name: str, nature: str, scope
) -> Decision:
    """A bona fide medical emergency (§2.51) is not a consent decision, but it is decided here
    too, by its own explicit rule: only to medical personnel (a registered recipient whose
    category is, and always was, treatment provider, with the person there who receives it
    named), only with the nature of the emergency typed, never to a criminal-legal recipient.
    Writes the disclosure log (legal basis "42 CFR 2.51"), granted or refused; a grant
    carries the permit its document is built from. Every one is reviewed afterwards by the
    privacy officer (releases.services.outgoing.emergency_review_record)."""
    at = timezone.now()
    scope = sorted(set(scope or ()))
    try:
        with transaction.atomic():
            reason = _emergency_problem(
                person=person,
                recipient=recipient,
                personnel_name=personnel_name,
                nature=nature,
                scope=scope,
            )
    except Exception:
        logger.exception("Emergency rule failed; refusing")
        reason = "gate_error"
    if not reason and getattr(site, "pk", None) != person.site_id:
        reason = "other_site"
    decision = (
        Decision(GRANTED, "medical_emergency", None, tuple(scope))
        if not reason
        else Decision(ERROR if reason == "gate_error" else REFUSED, reason)
    )
    purpose = emergency_purpose(nature)
    with transaction.atomic():
        row = DisclosureLog.objects.create(
            at=at,
            site=site,
            asked_by=asked_by,
            person=person if getattr(person, "pk", None) else None,
            recipient=recipient if getattr(recipient, "pk", None) else None,
            recipient_category=logged_category(recipient),
            path=EMERGENCY_PATH,
            purpose=purpose,
            legal_basis=EMERGENCY_BASIS,
            scope=scope,
            decision=decision.decision,
            reason=decision.reason,
        )
    if not decision.granted:
        return decision
    permit = Permit(
        _ISSUER,
        log_id=row.pk,
        path=EMERGENCY_PATH,
        site=site,
        person=person,
        recipient=recipient,
        request=None,
        packet=None,
        consent=None,
        scope=tuple(scope),
        purpose=purpose,
        emergency=EmergencyFacts(
            personnel_name=personnel_name, nature=nature, released_by=asked_by
        ),
    )
    return replace(decision, permit=permit)
