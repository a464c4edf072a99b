"""Visit writes: opening (from the queue or directly), the record while it is open, medication
events, ending, and addenda once it is closed.

Each service owns its transaction and locks the visit row it decides on. Ending a visit that
came from the queue locks the arrival first and the visit second, the same order as the
board's "Done", so the two never wait on each other.
"""

import hashlib
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from clinic.dates import record_day_problem, site_first_day
from clinic.models import Discipline, Membership, Person, Service, Site
from queues.errors import QueueError
from visits.errors import VisitError
from visits.models import (
    Addendum,
    Draft,
    HandOffNote,
    Medication,
    MedicationEvent,
    Visit,
    VisitParticipant,
)

PRIORITIES_MAX = 4000
NOTE_MAX = 20000
ADDENDUM_MAX = 20000
DOSE_MAX = 120
DAYS_SUPPLY_MIN = 1
DAYS_SUPPLY_MAX = 365
HAND_OFF_NOTE_MAX = 2000
# A direct visit typed in a little ahead of the server's clock is still "now".
CLOCK_SLACK = timedelta(minutes=5)


def _discipline(user, site) -> str:
    membership = Membership.objects.filter(user=user, site=site).only("discipline").first()
    return membership.discipline if membership else Discipline.OTHER


# --- used by the queue --------------------------------------------------------------------------


def visit_open_from_arrival(*, arrival, by, at) -> Visit:
    """Open the visit for an arrival that a team member starts seeing. Caller holds the lock."""
    visit = Visit.objects.create(
        site=arrival.site, person=arrival.person, arrival=arrival, started_at=at, opened_by=by
    )
    visit_add_participant(visit=visit, user=by, at=at)
    return visit


def visit_add_participant(*, visit: Visit, user, at) -> None:
    VisitParticipant.objects.get_or_create(
        visit=visit,
        user=user,
        defaults={"discipline": _discipline(user, visit.site), "joined_at": at},
    )


def visit_remove_participant(*, visit: Visit, user) -> None:
    if user.pk != visit.opened_by_id:
        VisitParticipant.objects.filter(visit=visit, user=user).delete()


def _has_record(visit: Visit) -> bool:
    return bool(
        visit.note
        or visit.priorities
        or visit.services.exists()
        or visit.medications.exists()
        or visit.addenda.exists()
        or visit.tox_screens.exists()
        or visit.goals_set.exists()
        or visit.goal_progress.exists()
        or visit.hand_off_notes.exists()
        # Typed and not saved yet is recorded too: undoing "Start" never deletes it.
        or Draft.objects.filter(visit=visit).exists()
    )


@transaction.atomic
def visit_discard_unstarted(*, visit: Visit) -> None:
    """Undoing "Start" removes the visit it opened, as long as nothing was recorded in it.

    Raises QueueError (the caller is the queue's undo) rather than silently dropping a note.
    """
    if _has_record(visit):
        raise QueueError(
            "visit_has_record",
            _(
                "Something is already recorded in this visit, so “Start” cannot be undone. "
                "End the visit instead."
            ),
        )
    visit.participants.all().delete()
    visit.delete()


def visit_close(*, visit: Visit, at) -> None:
    visit.ended_at = max(at, visit.started_at)
    visit.save(update_fields=["ended_at"])


def visit_reopen(*, visit: Visit) -> None:
    """Undoing "Done": the visit is open again, unless it was sealed (the day was closed)."""
    visit.refresh_from_db(fields=["sealed_at"])
    if visit.sealed_at is not None:
        raise QueueError(
            "visit_sealed",
            _(
                "This visit was sealed when the day was closed, so “Done” cannot be undone. "
                "Add an addendum to it instead."
            ),
        )
    visit.ended_at = None
    visit.save(update_fields=["ended_at"])


def visits_seal(*, site: Site, now: datetime) -> int:
    """Seal every ended visit of the site that is not sealed yet (the day's close): from now
    on the database refuses any change to them; corrections are addenda. Returns how many."""
    return Visit.objects.filter(
        site=site, ended_at__isnull=False, ended_at__lte=now, sealed_at__isnull=True
    ).update(sealed_at=now)


def visit_hand_off(*, arrival, by, revision: int | None, to_user, note: str = ""):
    """Hand the person being seen over to another team member (the queue's hand-off), with a
    note for them kept beside the hand-off's event, in one transaction: both or neither.
    Locks the arrival (the queue's service does)."""
    from queues import services as queue_services
    from queues.models import EventKind

    note = _clean_text(
        note,
        max_length=HAND_OFF_NOTE_MAX,
        code="too_long",
        label=_("The note for the next team member"),
    )
    with transaction.atomic():
        arrival = queue_services.arrival_hand_off(
            arrival=arrival, by=by, revision=revision, to_user=to_user
        )
        if note:
            event = arrival.events.filter(kind=EventKind.HANDED_OFF).latest("at", "pk")
            HandOffNote.objects.create(event=event, visit=arrival.visit, text=note)
    return arrival


# --- checks -------------------------------------------------------------------------------------


def _lock(visit: Visit) -> Visit:
    # OF self: PostgreSQL refuses FOR UPDATE on the nullable side of select_related's outer
    # joins (person may be null), and only the visit row needs the lock.
    return (
        Visit.objects.select_for_update(of=("self",))
        .select_related("site", "person")
        .get(pk=visit.pk)
    )


def _require_open(visit: Visit) -> None:
    if not visit.is_open:
        raise VisitError(
            "visit_closed",
            _(
                "This visit has ended, so it can no longer be changed. "
                "Add an addendum for corrections or later notes."
            ),
            visit=visit,
        )


def _require_participant(visit: Visit, user) -> None:
    if not visit.participants.filter(user=user).exists():
        raise VisitError(
            "not_participant",
            _("Join this visit first; then you can record in it."),
            visit=visit,
        )


def _clean_text(value: str | None, *, max_length: int, code: str, label: str) -> str:
    value = (value or "").strip()
    if len(value) > max_length:
        raise VisitError(
            code,
            _("%(label)s can be at most %(max)d characters.") % {"label": label, "max": max_length},
        )
    return value


def _clean_services(site: Site, services: Iterable[Service], *, keep: Iterable[int] = ()) -> list:
    services = list(services or [])
    keep = set(keep)
    for service in services:
        if service.site_id != site.pk or not (service.is_active or service.pk in keep):
            raise VisitError("unknown_service", _("Please pick services this site offers."))
    return services


def visit_fingerprint(visit: Visit) -> str:
    """What the edit form was made from; a different one at save time means someone else saved."""
    service_ids = ",".join(str(pk) for pk in sorted(visit.services.values_list("pk", flat=True)))
    raw = "\x1f".join([visit.priorities, visit.note, service_ids])
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


# --- opening directly ---------------------------------------------------------------------------


def visit_open_direct(
    *,
    site: Site,
    by,
    origin: str,
    person: Person | None = None,
    started_at: datetime | None = None,
    ended_at: datetime | None = None,
    services: Iterable[Service] = (),
    priorities: str = "",
    note: str = "",
    now: datetime | None = None,
) -> Visit:
    """Outreach or a quick contact, for someone known at the site or anonymous (no person).

    Nothing to lock: the visit is new. `started_at` defaults to now. A quick contact (naloxone
    at the door) is over once it is recorded: without an end time it ends when it started.
    """
    now = now or timezone.now()
    started_at = started_at or now
    if origin == Visit.Origin.QUICK and ended_at is None:
        ended_at = started_at
    if origin not in (Visit.Origin.OUTREACH, Visit.Origin.QUICK):
        raise VisitError("unknown_origin", _("Please choose outreach or a quick contact."))
    if person is not None and person.site_id != site.pk:
        raise VisitError("unknown_person", _("That person is not known at this site."))
    if started_at > now + CLOCK_SLACK:
        raise VisitError("starts_in_future", _("A visit cannot start in the future."))
    if timezone.localdate(started_at, site.tz) < site_first_day(site):
        raise VisitError(
            "before_first_day",
            record_day_problem(timezone.localdate(started_at, site.tz), site=site),
        )
    if ended_at is not None:
        if ended_at < started_at:
            raise VisitError("ends_before_start", _("The visit cannot end before it starts."))
        if ended_at > now + CLOCK_SLACK:
            raise VisitError("ends_in_future", _("The end time cannot be in the future."))
    priorities = _clean_text(
        priorities, max_length=PRIORITIES_MAX, code="too_long", label=_("Their priorities")
    )
    note = _clean_text(note, max_length=NOTE_MAX, code="too_long", label=_("The note"))
    services = _clean_services(site, services)
    with transaction.atomic():
        visit = Visit.objects.create(
            site=site,
            person=person,
            origin=origin,
            started_at=started_at,
            ended_at=ended_at,
            opened_by=by,
            priorities=priorities,
            note=note,
        )
        visit.services.set(services)
        visit_add_participant(visit=visit, user=by, at=started_at)
    return visit


# --- while open ---------------------------------------------------------------------------------


def visit_join(*, visit: Visit, by, now: datetime | None = None) -> Visit:
    """A team member joins an open visit (care is a team's work). Locks the visit."""
    with transaction.atomic():
        visit = _lock(visit)
        _require_open(visit)
        visit_add_participant(visit=visit, user=by, at=now or timezone.now())
    return visit


def visit_update(
    *,
    visit: Visit,
    by,
    services: Iterable[Service],
    priorities: str,
    note: str,
    base: str | None = None,
    end: bool = False,
    now: datetime | None = None,
) -> Visit:
    """A participant records services delivered, the person's priorities and the note, and
    with `end` ends the visit in the same step (so nothing typed is lost on the way out).

    Locks the visit (and first its arrival when ending). `base` is the fingerprint the form
    was made from; when someone else saved in between, nothing is saved (code
    "changed_elsewhere") so neither text is lost.
    """
    with transaction.atomic():
        arrival = _lock_arrival(visit) if end else None
        visit = _lock(visit)
        _require_open(visit)
        _require_participant(visit, by)
        if base is not None and base != visit_fingerprint(visit):
            raise VisitError(
                "changed_elsewhere",
                _(
                    "Someone else saved this visit while you were writing. Nothing of yours "
                    "was saved yet: your text is still in the form. Please compare and save again."
                ),
                visit=visit,
            )
        current = set(visit.services.values_list("pk", flat=True))
        services = _clean_services(visit.site, services, keep=current)
        visit.priorities = _clean_text(
            priorities, max_length=PRIORITIES_MAX, code="too_long", label=_("Their priorities")
        )
        visit.note = _clean_text(note, max_length=NOTE_MAX, code="too_long", label=_("The note"))
        visit.save(update_fields=["priorities", "note"])
        visit.services.set(services)
        if end:
            _end_locked(visit, arrival, by=by, now=now or timezone.now())
    return visit


def _clean_days_supply(value) -> int:
    message = _("Days' supply must be a whole number from %(min)d to %(max)d.") % {
        "min": DAYS_SUPPLY_MIN,
        "max": DAYS_SUPPLY_MAX,
    }
    if isinstance(value, bool):
        raise VisitError("bad_days_supply", message)
    if isinstance(value, str):
        value = value.strip()
        if not (value.isascii() and value.isdigit()):
            raise VisitError("bad_days_supply", message)
        value = int(value)
    if not isinstance(value, int) or not DAYS_SUPPLY_MIN <= value <= DAYS_SUPPLY_MAX:
        raise VisitError("bad_days_supply", message)
    return value


def visit_add_medication(
    *,
    visit: Visit,
    by,
    medication: str,
    dose: str,
    days_supply: int,
    action: str,
    now: datetime | None = None,
) -> MedicationEvent:
    """Record MOUD prescribed, dispensed or administered at an open visit. Locks the visit."""
    if medication not in Medication.values:
        raise VisitError("unknown_medication", _("Please pick a medication from the list."))
    if action not in MedicationEvent.Action.values:
        raise VisitError(
            "unknown_action", _("Please say whether it was prescribed, dispensed or administered.")
        )
    dose = _clean_text(dose, max_length=DOSE_MAX, code="dose_too_long", label=_("The dose"))
    if not dose:
        raise VisitError("dose_missing", _("Please write the dose, e.g. 16 mg daily."))
    days_supply = _clean_days_supply(days_supply)
    with transaction.atomic():
        visit = _lock(visit)
        _require_open(visit)
        _require_participant(visit, by)
        return MedicationEvent.objects.create(
            visit=visit,
            medication=medication,
            dose=dose,
            days_supply=days_supply,
            action=action,
            recorded_by=by,
            recorded_at=now or timezone.now(),
        )


def _lock_arrival(visit: Visit):
    """The visit's arrival, locked, or None for a direct visit. Always taken before the visit."""
    # Imported here: the queue's services import this module.
    from queues.models import Arrival

    if visit.arrival_id is None:
        return None
    return Arrival.objects.select_for_update().get(pk=visit.arrival_id)


def _end_locked(visit: Visit, arrival, *, by, now: datetime) -> None:
    from queues import services as queue_services
    from queues.models import State

    if arrival is not None and arrival.state == State.WITH_STAFF:
        queue_services.arrival_finish(arrival=arrival, by=by, revision=None, now=now)
        visit.refresh_from_db(fields=["ended_at"])
    else:
        visit_close(visit=visit, at=now)


def visit_end(*, visit: Visit, by, now: datetime | None = None) -> Visit:
    """A participant ends an open visit. From the queue and still with staff: the arrival is
    finished too, so the board and the visit agree. Locks the arrival, then the visit."""
    with transaction.atomic():
        arrival = _lock_arrival(visit)
        visit = _lock(visit)
        _require_open(visit)
        _require_participant(visit, by)
        _end_locked(visit, arrival, by=by, now=now or timezone.now())
    return visit


# --- once closed --------------------------------------------------------------------------------


def visit_add_addendum(*, visit: Visit, by, text: str, now: datetime | None = None) -> Addendum:
    """A correction or later note on a closed visit, with its author and time. Locks the visit.

    Any care-team member may write one (a lab result may come back to someone else).
    """
    text = _clean_text(text, max_length=ADDENDUM_MAX, code="too_long", label=_("The addendum"))
    if not text:
        raise VisitError("addendum_empty", _("Please write the addendum."))
    with transaction.atomic():
        visit = _lock(visit)
        if visit.is_open:
            raise VisitError(
                "visit_still_open",
                _("This visit is still open: change the note itself instead."),
                visit=visit,
            )
        return Addendum.objects.create(
            visit=visit, author=by, written_at=now or timezone.now(), text=text
        )
