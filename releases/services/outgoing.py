"""Outgoing releases: asking, approving, preparing, handing over, medical emergencies.

Every step that lets information out calls releases.gate.release_attempt at that moment and
goes on only when it is granted; nothing here decides a release itself. Roles are checked
at the site with `clinic.sites.can`, never with `has_perm`: a superuser holds every
permission in Django's eyes and must still get nothing here (RELEASES.md, "no bypass").
"""

from datetime import date

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from clinic.sites import can
from releases import gate
from releases.errors import ReleaseError
from releases.gate import Decision, logged_category, release_attempt
from releases.models import (
    Approval,
    DisclosureLog,
    EmergencyRelease,
    EmergencyReview,
    HandOver,
    Recipient,
    ReleasePacket,
    ReleaseRequest,
    Scope,
)
from releases.packets import build_packet, packet_document, packet_pdf, packet_sha256

REQUEST = "releases.request_release"
MANAGE = "releases.manage_releases"
PURPOSE_MAX = 300

# Plain words for the gate's reason codes, shown to staff when something is not released.
REASONS = {
    "missing_person": gettext_lazy("No person was named."),
    "missing_recipient": gettext_lazy("No recipient from the registry was named."),
    "unknown_category": gettext_lazy("The recipient's category is not one the clinic knows."),
    "recipient_inactive": gettext_lazy("The recipient is no longer active in the registry."),
    "other_site": gettext_lazy("The recipient belongs to another site."),
    "missing_purpose": gettext_lazy("No purpose was given."),
    "missing_scope": gettext_lazy("No information was chosen."),
    "unknown_scope": gettext_lazy("Some of the information asked for is not a known category."),
    "approvals_required": gettext_lazy(
        "This recipient is in the criminal-legal system: a release needs a request approved by "
        "the privacy officer and a second staff member."
    ),
    "no_consent": gettext_lazy("There is no consent from this person for this recipient."),
    "person_merged": gettext_lazy(
        "This record was merged into another record of the same person: use that record."
    ),
    "held_oral_revocation": gettext_lazy(
        "The person revoked the consent orally: everything is on hold until it is in writing."
    ),
    "revoked": gettext_lazy("The person revoked the consent."),
    "expired": gettext_lazy("The consent has expired."),
    "not_yet_signed": gettext_lazy("The consent is dated in the future."),
    "bundled_consent": gettext_lazy(
        "The consent names other recipients too; a consent to a criminal-legal recipient must "
        "name that recipient alone."
    ),
    "purpose_not_consented": gettext_lazy("The consent does not cover this purpose."),
    "scope_not_consented": gettext_lazy(
        "The consent does not cover all of the information asked for."
    ),
    "awaiting_approvals": gettext_lazy(
        "The consent covers this, but the privacy officer and a second staff member have not "
        "both approved yet."
    ),
    "gate_error": gettext_lazy("The check could not be completed, so nothing was released."),
    "consent_changed": gettext_lazy(
        "The consent this packet was prepared under no longer applies; prepare a new packet."
    ),
    "emergency_not_medical": gettext_lazy(
        "A medical emergency release can go only to medical personnel (a treatment provider), "
        "never to a criminal-legal recipient."
    ),
    "emergency_reason_missing": gettext_lazy("Please type the reason for the emergency release."),
    "request_mismatch": gettext_lazy(
        "The approvals given are for a different person, recipient, purpose or information."
    ),
    "consent_other_site": gettext_lazy("The consent was given to another site."),
    "recipient_recategorised": gettext_lazy(
        "The recipient's category has changed since the consent was signed: the consent holds "
        "only for the category the recipient had then. The person must sign a new consent."
    ),
    "consent_valid": gettext_lazy("A valid consent covers this, with the approvals it needs."),
    "medical_emergency": gettext_lazy("A medical emergency (42 CFR 2.51)."),
    "emergency_personnel_missing": gettext_lazy(
        "Please give the name of the medical staff member who receives it."
    ),
    "approver_is_requester": gettext_lazy(
        "The person who asked for this release also approved it: their approval does not "
        "count. Two other staff members must approve."
    ),
    "approver_inactive": gettext_lazy(
        "Someone who approved this request no longer has an active account: their approval "
        "no longer counts. Ask a current staff member to approve."
    ),
    "approver_not_at_site": gettext_lazy(
        "Someone who approved this request no longer works at this site: their approval no "
        "longer counts. Ask a current staff member to approve."
    ),
    "approver_not_officer": gettext_lazy(
        "The privacy officer who approved this request no longer holds that role: their "
        "approval no longer counts. Ask the current privacy officer to approve."
    ),
}


def reason_text(code: str) -> str:
    return str(REASONS.get(code, _("Not released (%(code)s).") % {"code": code}))


def is_release_staff(user, site) -> bool:
    return can(user, REQUEST, site) or can(user, MANAGE, site)


def _require_release_staff(user, site) -> None:
    if not is_release_staff(user, site):
        raise ReleaseError(
            "not_allowed", _("Only care-team staff or the privacy officer of this site can.")
        )


def _refuse_merged(person) -> None:
    if person.merged_into_id is not None:
        raise ReleaseError("person_merged", str(REASONS["person_merged"]))


def _clean_scope(scope) -> list[str]:
    chosen = sorted(set(scope or ()))
    if not chosen:
        raise ReleaseError("missing_scope", _("Please choose what information to release."))
    if not set(chosen) <= set(Scope.values):
        raise ReleaseError("unknown_scope", _("Please choose from the categories listed."))
    return chosen


def release_request_create(
    *,
    site,
    person,
    recipient: Recipient | None,
    purpose: str,
    scope,
    by,
    period_start: date | None = None,
    period_end: date | None = None,
    note: str = "",
) -> ReleaseRequest:
    """A clinician asks for a release. Nothing is released or decided here; the gate decides
    when a packet is prepared and again when it is handed over."""
    now = timezone.now()  # never a caller's time: nothing is decided as of another moment
    if not can(by, REQUEST, site) and not can(by, MANAGE, site):
        raise ReleaseError("not_allowed", _("Only care-team staff of this site can ask."))
    if person is None or person.site_id != site.pk:
        raise ReleaseError("unknown_person", _("That person is not known at this site."))
    _refuse_merged(person)
    if recipient is None or recipient.site_id != site.pk or not recipient.is_active:
        raise ReleaseError(
            "unknown_recipient", _("Please choose a recipient from this site's registry.")
        )
    purpose = " ".join((purpose or "").split())
    if not purpose:
        raise ReleaseError("missing_purpose", _("Please say what the release is for."))
    if len(purpose) > PURPOSE_MAX:
        raise ReleaseError(
            "purpose_too_long",
            _("The purpose can be at most %(max)d characters.") % {"max": PURPOSE_MAX},
        )
    chosen = _clean_scope(scope)
    if period_start and period_end and period_start > period_end:
        raise ReleaseError("period_backwards", _("The period ends before it starts."))
    note = (note or "").strip()
    if len(note) > 2000:
        raise ReleaseError("note_too_long", _("The note can be at most 2000 characters."))
    return ReleaseRequest.objects.create(
        site=site,
        person=person,
        recipient=recipient,
        purpose=purpose,
        scope=chosen,
        period_start=period_start,
        period_end=period_end,
        requested_by=by,
        requested_at=now,
        note=note,
    )


def request_coverage(*, person, recipient, purpose: str, scope) -> tuple[str, list[str]]:
    """While a request is being made: what no current consent covers (releases.gate's
    consent_coverage; decides and releases nothing)."""
    return gate.consent_coverage(person=person, recipient=recipient, purpose=purpose, scope=scope)


def release_approve(*, request: ReleaseRequest, by) -> Approval:
    """Approve a request. Locks the request. The privacy officer's approval counts as such only
    when `by` holds manage_releases through a role at the request's site. The two approvers
    are two people other than the one who asked: nobody approves their own request."""
    now = timezone.now()  # never a caller's time: nothing is decided as of another moment
    with transaction.atomic():
        request = (
            ReleaseRequest.objects.select_for_update().select_related("site").get(pk=request.pk)
        )
        officer = can(by, MANAGE, request.site)
        if not officer and not can(by, REQUEST, request.site):
            raise ReleaseError(
                "not_allowed", _("Only staff of this site can approve a release from it.")
            )
        if by.pk == request.requested_by_id:
            raise ReleaseError(
                "own_request",
                _(
                    "You asked for this release, so you cannot approve it: two other staff "
                    "members must (the privacy officer and a colleague)."
                ),
            )
        if Approval.objects.filter(request=request, by=by).exists():
            raise ReleaseError(
                "already_approved",
                _(
                    "You have already approved this request. A second, different staff member "
                    "must approve it."
                ),
            )
        try:
            with transaction.atomic():
                return Approval.objects.create(
                    request=request, by=by, as_privacy_officer=officer, at=now
                )
        except IntegrityError as exc:
            raise ReleaseError(
                "already_approved", _("You have already approved this request.")
            ) from exc


def _attempt(*, path: str, by, request: ReleaseRequest, packet=None) -> Decision:
    return release_attempt(
        site=request.site,
        path=path,
        asked_by=by,
        person=request.person,
        recipient=request.recipient,
        purpose=request.purpose,
        scope=request.scope,
        request=request,
        packet=packet,
    )


def packet_generate(*, request: ReleaseRequest, by) -> ReleasePacket:
    """Ask the gate; only if granted, build the packet from exactly the granted scope.

    The decision, its log row and the packet are one transaction: a packet that fails to
    build leaves no "granted" row behind. A refusal is logged and raised as a ReleaseError
    carrying the gate's reason code.
    """
    now = timezone.now()  # never a caller's time: nothing is decided as of another moment
    _require_release_staff(by, request.site)
    request = ReleaseRequest.objects.select_related("site", "person", "recipient").get(
        pk=request.pk
    )
    packet = None
    with transaction.atomic():
        decision = _attempt(path="packet_generate", by=by, request=request)
        if decision.granted:
            built = build_packet(decision.permit, now=now)
            packet = ReleasePacket.objects.create(
                request=request,
                consent=decision.consent,
                generated_by=by,
                generated_at=now,
                manifest=built.manifest,
                html=built.html,
                sha256=built.sha256,
            )
    if packet is None:
        raise ReleaseError(decision.reason, reason_text(decision.reason))
    return packet


def _void(packet: ReleasePacket, reason: str, now) -> None:
    if packet.voided_at is None and packet.handed_over_at is None:
        packet.voided_at = now
        packet.void_reason = reason[:40]
        packet.save(update_fields=["voided_at", "void_reason"])


def _log_consent_changed(*, packet, by, path, now) -> None:
    # The gate granted under a different consent than the packet was built from: this
    # packet's scope statement is no longer true, so it does not go (and the log says so).
    request = packet.request
    DisclosureLog.objects.create(
        at=now,
        site=request.site,
        asked_by=by,
        person=request.person,
        recipient=request.recipient,
        recipient_category=logged_category(request.recipient),
        path=path,
        purpose=request.purpose[:300],
        legal_basis=f"consent {packet.consent_id}",
        scope=sorted(request.scope),
        decision=DisclosureLog.Decision.REFUSED,
        reason="consent_changed",
        request=request,
        packet=packet,
    )


def _packet_check(*, packet: ReleasePacket, by, path: str, now) -> tuple[str, Decision]:
    """Decide again from current data for this packet; void it (if not yet handed over) and
    return the reason when the answer is not granted ("" and the decision when it is). Runs
    inside the caller's transaction, which has the packet locked; the caller commits before
    raising so the log row and the void stay."""
    request = packet.request
    decision = _attempt(path=path, by=by, request=request, packet=packet)
    if not decision.granted:
        _void(packet, decision.reason, now)
        return decision.reason, decision
    if decision.consent is None or decision.consent.pk != packet.consent_id:
        _log_consent_changed(packet=packet, by=by, path=path, now=now)
        _void(packet, "consent_changed", now)
        return "consent_changed", decision
    return "", decision


def _locked_packet(packet: ReleasePacket) -> ReleasePacket:
    return (
        ReleasePacket.objects.select_for_update()
        .select_related("request__site", "request__person", "request__recipient")
        .get(pk=packet.pk)
    )


HANDED_TO_MAX = 200
HAND_OVER_NOTE_MAX = 1000


def _hand_over_details(how: str, handed_to: str, note: str) -> tuple[str, str]:
    if how not in HandOver.How.values:
        raise ReleaseError("unknown_how", _("Please choose how it is delivered."))
    handed_to = " ".join((handed_to or "").split())
    if not handed_to:
        raise ReleaseError(
            "handed_to_missing", _("Please say to whom it is handed, or where it is sent.")
        )
    if len(handed_to) > HANDED_TO_MAX:
        raise ReleaseError(
            "handed_to_too_long",
            _("To whom can be at most %(max)d characters.") % {"max": HANDED_TO_MAX},
        )
    note = (note or "").strip()
    if len(note) > HAND_OVER_NOTE_MAX:
        raise ReleaseError(
            "note_too_long",
            _("The note can be at most %(max)d characters.") % {"max": HAND_OVER_NOTE_MAX},
        )
    return handed_to, note


def packet_hand_over(
    *, packet: ReleasePacket, by, how: str, handed_to: str, note: str = ""
) -> ReleasePacket:
    """Hand a prepared packet over, recording how it was delivered and to whom (HandOver,
    append-only). Locks the packet. Decided again from current data: if the consent was
    revoked, expired or otherwise no longer holds, the packet is voided (void_reason = the
    gate's reason code) and nothing leaves. Bad details refuse before the gate is asked."""
    now = timezone.now()  # never a caller's time: nothing is decided as of another moment
    _require_release_staff(by, packet.request.site)
    handed_to, note = _hand_over_details(how, handed_to, note)
    problem = ""
    with transaction.atomic():
        packet = _locked_packet(packet)
        if packet.voided_at is not None:
            raise ReleaseError("packet_void", _("This packet is void and cannot be handed over."))
        if packet.handed_over_at is not None:
            raise ReleaseError("already_handed_over", _("This packet was already handed over."))
        if packet_sha256(packet.html) != packet.sha256:
            raise ReleaseError("packet_altered", _("This packet does not match its hash."))
        problem, _decision = _packet_check(packet=packet, by=by, path="packet_hand_over", now=now)
        if not problem:
            packet.handed_over_at = now
            packet.handed_over_by = by
            packet.save(update_fields=["handed_over_at", "handed_over_by"])
            HandOver.objects.create(
                packet=packet, by=by, at=now, how=how, handed_to=handed_to, note=note
            )
    if problem:
        raise ReleaseError(problem, reason_text(problem))
    return packet


def packet_open(*, packet: ReleasePacket, by, path: str) -> tuple[ReleasePacket, str | bytes]:
    """Show, print or download a packet: path "packet_view" returns the packet and its stored
    HTML, "packet_pdf" the packet and its PDF. Decided again every time, and the document is
    drawn from that decision's permit (releases.packets); a void packet is never shown
    again."""
    if path not in ("packet_view", "packet_pdf"):
        raise ValueError(path)
    now = timezone.now()  # never a caller's time: nothing is decided as of another moment
    _require_release_staff(by, packet.request.site)
    problem, document = "", b""
    with transaction.atomic():
        packet = _locked_packet(packet)
        if packet.voided_at is not None:
            raise ReleaseError("packet_void", _("This packet is void and is not shown again."))
        if packet_sha256(packet.html) != packet.sha256:
            raise ReleaseError("packet_altered", _("This packet does not match its hash."))
        problem, decision = _packet_check(packet=packet, by=by, path=path, now=now)
        if not problem:
            build = packet_document if path == "packet_view" else packet_pdf
            document = build(decision.permit, packet)
    if problem:
        raise ReleaseError(problem, reason_text(problem))
    return packet, document


# --- medical emergency (§2.51) ----------------------------------------------------------------

EMERGENCY_BASIS = gate.EMERGENCY_BASIS


PERSONNEL_MAX = 200
NATURE_MAX = 300


def emergency_release(
    *,
    site,
    person,
    recipient: Recipient | None,
    personnel_name: str,
    reason: str,
    scope,
    by,
) -> EmergencyRelease:
    """A bona fide medical emergency (§2.51), decided by the gate's own rule for it
    (releases.gate.emergency_attempt: only to medical personnel — a registered recipient that
    is, and always was, a treatment provider, and the named staff member there who receives
    it — only with the nature of the emergency typed, never to a criminal-legal recipient),
    which writes the disclosure log, granted or refused, with legal basis "42 CFR 2.51".

    A granted one is built from the gate's permit and stored like a packet (EmergencyRelease:
    the document as sent, its manifest and SHA-256, who released it, when, to whom, the nature
    of the emergency), in the same transaction as its log row, and awaits the privacy
    officer's review (emergency_review_record). Locks nothing: it changes no existing row."""
    _require_release_staff(by, site)
    if person is None or person.site_id != site.pk:
        raise ReleaseError("unknown_person", _("That person is not known at this site."))
    _refuse_merged(person)
    if recipient is None or recipient.site_id != site.pk:
        raise ReleaseError(
            "unknown_recipient", _("Please choose a recipient from this site's registry.")
        )
    chosen = _clean_scope(scope)
    reason = " ".join((reason or "").split())[:NATURE_MAX]
    personnel_name = " ".join((personnel_name or "").split())[:PERSONNEL_MAX]
    released = None
    with transaction.atomic():
        decision = gate.emergency_attempt(
            site=site,
            asked_by=by,
            person=person,
            recipient=recipient,
            personnel_name=personnel_name,
            nature=reason,
            scope=chosen,
        )
        if decision.granted:
            log = DisclosureLog.objects.get(pk=decision.permit.log_id)
            now = log.at  # one moment: the log row's
            built = build_packet(decision.permit, now=now)
            released = EmergencyRelease.objects.create(
                log=log,
                site=site,
                person=person,
                recipient=recipient,
                personnel_name=personnel_name,
                nature=reason,
                scope=chosen,
                released_by=by,
                released_at=now,
                manifest=built.manifest,
                html=built.html,
                sha256=built.sha256,
            )
    if released is None:
        raise ReleaseError(decision.reason, reason_text(decision.reason))
    return released


NOTE_MAX = 2000


def may_review_emergency(user, emergency: EmergencyRelease) -> bool:
    """The privacy officer of the release's site, by role (never a superuser as such), and not
    the person who released it: a release is never reviewed on its maker's own word."""
    return can(user, MANAGE, emergency.site) and user.pk != emergency.released_by_id


def emergency_review_record(
    *, emergency: EmergencyRelease, by, finding: str, note: str = ""
) -> EmergencyReview:
    """Record the privacy officer's review of a medical emergency release: who, when, the
    finding and a note (required unless the finding is "appropriate"). One review per release,
    never changed (append-only); a second one is refused. Late reviews are recorded like any
    other: the release shows as overdue until then, and nothing waits on it."""
    now = timezone.now()  # never a caller's time
    emergency = EmergencyRelease.objects.select_related("site").get(pk=emergency.pk)
    if not can(by, MANAGE, emergency.site):
        raise ReleaseError(
            "not_privacy_officer", _("Only the privacy officer of this site may review it.")
        )
    if by.pk == emergency.released_by_id:
        raise ReleaseError(
            "own_release",
            _("You made this release: another privacy officer of the site must review it."),
        )
    if finding not in EmergencyReview.Finding.values:
        raise ReleaseError("unknown_finding", _("Please choose a finding from the list."))
    note = (note or "").strip()
    if len(note) > NOTE_MAX:
        raise ReleaseError(
            "note_too_long",
            _("The note can be at most %(max)d characters.") % {"max": NOTE_MAX},
        )
    if finding != EmergencyReview.Finding.APPROPRIATE and not note:
        raise ReleaseError(
            "note_required", _("Please say in the note what the concerns are and what was done.")
        )
    if EmergencyReview.objects.filter(emergency=emergency).exists():
        raise ReleaseError("already_reviewed", _("This release has already been reviewed."))
    try:
        # The one-review-per-release constraint decides between two officers posting at once
        # (the release row cannot be locked: the application may not update it).
        with transaction.atomic():
            return EmergencyReview.objects.create(
                emergency=emergency,
                site=emergency.site,
                by=by,
                at=now,
                finding=finding,
                note=note,
            )
    except IntegrityError as exc:
        raise ReleaseError(
            "already_reviewed", _("This release has already been reviewed.")
        ) from exc
