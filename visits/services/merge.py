"""Two records of one person, made one (README: "Two records for one person").

A clinician proposes merging the second record (the duplicate, B) into the one kept (A), with
a reason and which details A keeps; the site's privacy officer, never the proposer, approves
or declines. Refusals are Django `ValidationError`s with a `code`.

On approval, in one transaction, with both people locked:

- what may change moves from B to A (`MOVED`): the queue's arrivals (their events point at
  the arrival and stay as they are), visits (sealed ones too: the database allows exactly
  this change of a sealed visit, visits/migrations/0006), goals, appointments, release
  requests in progress (their approvals stay with them; the gate decides every release
  again, for A) and requests from outside the privacy officer linked to B;
- what may not change stays with B (`STAYS`): the access log, the history of changes, the
  disclosure log and emergency releases (all append-only), and B's signed consents (a sealed
  record naming the person as they signed it; the gate counts them for A, releases/gate.py);
- B is marked `merged_into` A, and A takes the chosen details;
- the merge row records who proposed and approved it, when, why, and the ids of every row
  moved. The history of changes records the moved visits, goals and appointments (for A),
  the change of B (for B) and the merge itself.
"""

import hashlib
import json
import logging
import uuid
from collections.abc import Iterable
from datetime import date

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from clinic.models import Person, PersonMerge, Site
from clinic.sites import can
from queues import services as queue_services
from queues.models import ACTIVE_STATES, Arrival
from releases.models import IncomingRequest, ReleaseRequest
from visits.models import Appointment, Goal, Visit

logger = logging.getLogger(__name__)

APPROVE = "clinic.approve_merge"

# The details a merge compares. The kept record keeps its own unless the proposer chose the
# other record's; "what helps" is never replaced, only added to (nothing that helps is lost).
DETAILS = ("name", "pronouns", "date_of_birth", "phone", "what_helps")
TAKEABLE = ("name", "pronouns", "date_of_birth", "phone")
WHAT_HELPS_MAX = Person._meta.get_field("what_helps").max_length

# What moves from the second record to the kept one: (table, model). Each points at the person
# with a `person` field the application may change.
MOVED = (
    ("queue_arrival", Arrival),
    ("visits_visit", Visit),
    ("visits_goal", Goal),
    ("visits_appointment", Appointment),
    ("releases_releaserequest", ReleaseRequest),
    ("releases_incomingrequest", IncomingRequest),
)
# What stays with the second record, and why. Reads that gather a person's records include the
# records merged into theirs (clinic.people.with_merged), so none of it is lost from view.
STAYS = {
    "clinic_accesslog": "append-only: who read the record, as it was then",
    "clinic_changehistory": "append-only: written by the database, never changed",
    "releases_disclosurelog": "append-only: every release attempt, for the accounting",
    "releases_emergencyrelease": "append-only: what was sent in a medical emergency",
    "releases_consent": "signed and sealed, naming the person as they signed it",
}
MOVE_CHUNK = 500  # ids per UPDATE (SQLite's limit on query parameters)


def _error(code: str, message: str, field: str | None = None) -> ValidationError:
    error = ValidationError(message, code=code)
    return ValidationError({field: error}) if field else error


def person_details(person: Person) -> dict:
    """The compared details, as JSON-ready values."""
    values = {field: getattr(person, field) for field in DETAILS}
    born = values["date_of_birth"]
    values["date_of_birth"] = born.isoformat() if born else None
    return values


def merge_fingerprint(kept: Person, duplicate: Person) -> str:
    """What a page showed of both records: a proposal made from an older page is refused."""
    shown = [kept.pk, person_details(kept), duplicate.pk, person_details(duplicate)]
    return hashlib.sha256(json.dumps(shown, sort_keys=True).encode()).hexdigest()[:32]


def wants_what_helps(kept: dict, duplicate: dict) -> bool:
    """Whether the second record's "what helps" says anything the kept one does not."""
    theirs = (duplicate.get("what_helps") or "").strip()
    return bool(theirs) and theirs not in (kept.get("what_helps") or "")


def merged_details(kept: dict, duplicate: dict, *, take: Iterable[str], append: bool) -> dict:
    """The kept record's details after the merge (from person_details() of both)."""
    take = set(take)
    result = {f: duplicate[f] if f in take else kept[f] for f in TAKEABLE}
    helps = (kept.get("what_helps") or "").strip()
    if append and wants_what_helps(kept, duplicate):
        theirs = duplicate["what_helps"].strip()
        helps = f"{helps}\n{theirs}" if helps else theirs
    result["what_helps"] = helps
    return result


def _lock_people(site: Site, *people: Person) -> list[Person]:
    """Both people, locked in id order (every merge locks them the same way round)."""
    wanted = {p.pk for p in people}
    locked = Person.objects.select_for_update().filter(pk__in=wanted)
    by_id = {p.pk: p for p in locked.order_by("pk")}
    if len(by_id) != len(wanted) or any(p.site_id != site.pk for p in by_id.values()):
        raise _error("other_site", _("Both records must be records of this site."))
    return [by_id[p.pk] for p in people]


def person_merge_check(*, site: Site, kept: Person, duplicate: Person) -> None:
    """What makes two records mergeable; the services call it with both people locked, pages
    to say beforehand what stands in the way."""
    if kept.pk == duplicate.pk:
        raise _error("same_person", _("That is the same record. Please choose the other one."))
    if kept.site_id != site.pk or duplicate.site_id != site.pk:
        raise _error("other_site", _("Both records must be records of this site."))
    for person in (kept, duplicate):
        if person.merged_into_id is not None:
            raise _error(
                "already_merged",
                _("The record of %(name)s was already merged into another record.")
                % {"name": person.name},
            )
    here = Arrival.objects.filter(person=duplicate, state__in=ACTIVE_STATES).first()
    if here is not None:
        raise _error(
            "in_line",
            _(
                "%(name)s is here now (ticket %(ticket)s). Their second record can be merged "
                "once they have been seen or have left."
            )
            % {"name": duplicate.name, "ticket": here.ticket},
        )


def person_merge_propose(
    *,
    site: Site,
    kept: Person,
    duplicate: Person,
    by,
    reason: str,
    seen: str,
    nonce: uuid.UUID,
    take_from_duplicate: Iterable[str] = (),
    append_what_helps: bool = False,
) -> PersonMerge:
    """Propose merging `duplicate` into `kept`, for the privacy officer to decide.

    Locks both people. `seen` is the fingerprint of the records as the page showed them
    (refused if either changed since). The same `nonce` again (a repeated tap) returns the
    first proposal. Refuses: the same record twice, another site's, a record already merged or
    in a merge waiting for a decision, a second record that is in line right now, and "what
    helps" that would grow too long."""
    take = sorted(set(take_from_duplicate) & set(TAKEABLE))
    try:
        with transaction.atomic():
            kept, duplicate = _lock_people(site, kept, duplicate)
            first = PersonMerge.objects.filter(site=site, nonce=nonce).first()
            if first is not None:
                return _same_proposal(first, kept=kept, duplicate=duplicate)
            person_merge_check(site=site, kept=kept, duplicate=duplicate)
            if seen != merge_fingerprint(kept, duplicate):
                raise _error(
                    "stale",
                    _(
                        "One of the records changed since this page was opened. Please check "
                        "them again."
                    ),
                )
            waiting = PersonMerge.objects.filter(
                Q(kept__in=(kept, duplicate)) | Q(duplicate__in=(kept, duplicate)),
                status=PersonMerge.Status.PROPOSED,
            )
            if waiting.exists():
                raise _error(
                    "already_proposed",
                    _(
                        "A merge of one of these records is already waiting for the privacy "
                        "officer."
                    ),
                )
            snapshot = {"kept": person_details(kept), "duplicate": person_details(duplicate)}
            details = merged_details(
                snapshot["kept"], snapshot["duplicate"], take=take, append=append_what_helps
            )
            if len(details["what_helps"]) > WHAT_HELPS_MAX:
                raise _too_long()
            return PersonMerge.objects.create(
                site=site,
                kept=kept,
                duplicate=duplicate,
                reason=reason,
                take_from_duplicate=take,
                append_what_helps=append_what_helps,
                snapshot=snapshot,
                nonce=nonce,
                proposed_by=by,
                proposed_at=timezone.now(),
            )
    except IntegrityError:
        # An identical tap committed first (same nonce): that proposal is this one.
        first = PersonMerge.objects.filter(site=site, nonce=nonce).first()
        if first is None:
            raise
        return _same_proposal(first, kept=kept, duplicate=duplicate)


def _same_proposal(first: PersonMerge, *, kept: Person, duplicate: Person) -> PersonMerge:
    if (first.kept_id, first.duplicate_id) != (kept.pk, duplicate.pk):
        raise _error("stale", _("This form was already used. Please open the page again."))
    return first


def _too_long() -> ValidationError:
    return _error(
        "what_helps_too_long",
        _(
            'Together, both "what helps" notes are longer than %(max)d characters. Please '
            "shorten one of them first, or leave the second one out."
        )
        % {"max": WHAT_HELPS_MAX},
        "append_what_helps",
    )


def _locked_proposal(merge: PersonMerge, *, by, decision: str) -> PersonMerge | None:
    """The merge, locked, if it is still waiting; None when `by` already made this very
    decision (a repeated tap); refuses otherwise."""
    # OF self: without it the joined site row would be locked too, and every check-in there
    # (whose new arrival's key checks the site) would wait for this merge, or deadlock with it.
    merge = (
        PersonMerge.objects.select_for_update(of=("self",)).select_related("site").get(pk=merge.pk)
    )
    if merge.status != PersonMerge.Status.PROPOSED:
        if merge.status == decision and merge.decided_by_id == by.pk:
            return None
        raise _error("already_decided", _("This merge was already decided."))
    if merge.proposed_by_id == by.pk:
        raise _error(
            "own_proposal", _("You proposed this merge: someone else must approve or decline it.")
        )
    if not can(by, APPROVE, merge.site):
        raise _error(
            "not_officer",
            _("Only the privacy officer of this site can approve or decline a merge."),
        )
    return merge


def person_merge_approve(*, merge: PersonMerge, by) -> PersonMerge:
    """Approve a proposed merge and carry it out (the module docstring says what moves).

    Locks the merge, the second record's arrivals, both people, then the rows that move.
    Everything is checked again under those locks; the records must still be exactly as they
    were proposed (else "stale": decline it, and propose it again). A repeated tap returns the
    merge unchanged."""
    with transaction.atomic():
        locked = _locked_proposal(merge, by=by, decision=PersonMerge.Status.APPROVED)
        if locked is None:
            return PersonMerge.objects.get(pk=merge.pk)
        merge = locked
        # The queue locks an arrival before its person (undoing "done"): so does this, so the
        # two never wait for each other.
        _lock_rows(Arrival, merge.duplicate_id)
        kept, duplicate = _lock_people(merge.site, merge.kept, merge.duplicate)
        person_merge_check(site=merge.site, kept=kept, duplicate=duplicate)
        now = {"kept": person_details(kept), "duplicate": person_details(duplicate)}
        if now != merge.snapshot:
            raise _error(
                "stale",
                _(
                    "One of the records changed since the merge was proposed. Please decline "
                    "it; it can be proposed again with the records as they are now."
                ),
            )
        details = merged_details(
            now["kept"],
            now["duplicate"],
            take=merge.take_from_duplicate,
            append=merge.append_what_helps,
        )
        if len(details["what_helps"]) > WHAT_HELPS_MAX:
            raise _too_long()
        moved = {table: _lock_rows(model, duplicate.pk) for table, model in MOVED}
        # First the decision: the database lets a sealed visit move, and the second record be
        # marked merged, only once an approved merge of B into A exists.
        merge.status = PersonMerge.Status.APPROVED
        merge.decided_by = by
        merge.decided_at = timezone.now()
        merge.moved = moved
        merge.save(update_fields=["status", "decided_by", "decided_at", "moved"])

        board_changed = (kept.name, kept.pronouns) != (details["name"], details["pronouns"])
        changed = _take_details(kept, details)
        if changed:
            kept.save(update_fields=changed)
        duplicate.merged_into = kept
        duplicate.save(update_fields=["merged_into"])
        for table, model in MOVED:
            ids = moved[table]
            for start in range(0, len(ids), MOVE_CHUNK):
                model.objects.filter(pk__in=ids[start : start + MOVE_CHUNK]).update(person=kept)
        if board_changed and Arrival.objects.filter(person=kept, state__in=ACTIVE_STATES).exists():
            # The board shows names and pronouns; screens refetch when the version moves.
            queue_services.queue_version_bump(kept.site_id)
    logger.info(
        "Merge %s approved: record %s merged into %s (%s rows moved)",
        merge.pk,
        duplicate.pk,
        kept.pk,
        sum(len(ids) for ids in moved.values()),
    )
    return merge


def _lock_rows(model, person_id: int) -> list[int]:
    """The ids of the person's rows of `model`, locked."""
    rows = model.objects.select_for_update().filter(person_id=person_id).order_by("pk")
    return list(rows.values_list("pk", flat=True))


def _take_details(kept: Person, details: dict) -> list[str]:
    changed = []
    for field, value in details.items():
        if field == "date_of_birth" and value is not None:
            value = date.fromisoformat(value)
        if getattr(kept, field) != value:
            setattr(kept, field, value)
            changed.append(field)
    return changed


def person_merge_decline(*, merge: PersonMerge, by, reason: str = "") -> PersonMerge:
    """Decline a proposed merge: nothing moves, both records stay as they are. Locks the
    merge. A repeated tap returns the merge unchanged."""
    with transaction.atomic():
        locked = _locked_proposal(merge, by=by, decision=PersonMerge.Status.DECLINED)
        if locked is None:
            return PersonMerge.objects.get(pk=merge.pk)
        merge = locked
        merge.status = PersonMerge.Status.DECLINED
        merge.decided_by = by
        merge.decided_at = timezone.now()
        merge.decline_reason = reason
        merge.save(update_fields=["status", "decided_by", "decided_at", "decline_reason"])
    return merge
