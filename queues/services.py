"""Every write to the queue. Each service owns its transaction, locks what it decides on,
writes one event row per change, bumps the site's queue version and, as its last step, asks
the realtime module to tell screens after commit.

Locking: on PostgreSQL rows are locked with SELECT … FOR UPDATE (SKIP LOCKED for "call next",
so two clinicians pressing it together get two different people). On SQLite, Django ignores
FOR UPDATE; the settings open every transaction IMMEDIATE, which takes the database write lock
at the start, so concurrent services run one after the other instead.
"""

import uuid
from contextlib import contextmanager
from datetime import datetime

from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from clinic.dates import birth_date_problem
from clinic.models import Person, Room, Service, Site
from clinic.names import NO_LETTER, has_letter, person_name_clean
from clinic.sites import staff_who_can
from queues import realtime
from queues.errors import QueueError
from queues.models import (
    ACTIVE_STATES,
    NOT_SEEN_STATES,
    Arrival,
    ArrivalEvent,
    EventKind,
    QueueClock,
    StaffRoom,
    State,
    TicketCounter,
)
from queues.selectors import last_action
from visits.services import appointments as appointment_services
from visits.services import visits as visit_services

NAME_MAX = 200
REASON_MAX = 200
WHAT_HELPS_MAX = 1000


def staff_label(user) -> str:
    if user is None:
        return _("the system")
    return user.get_full_name() or user.get_username()


# --- check-in ---------------------------------------------------------------------------------


def _clean_text(value: str | None, *, max_length: int, code: str, label: str) -> str:
    value = (value or "").strip()
    if len(value) > max_length:
        raise QueueError(
            code,
            _("%(label)s can be at most %(max)d characters.") % {"label": label, "max": max_length},
        )
    return value


def arrival_check_in(
    *,
    site: Site,
    by,
    nonce: uuid.UUID,
    person: Person | None = None,
    name: str = "",
    pronouns: str = "",
    date_of_birth=None,
    phone: str = "",
    what_helps: str = "",
    service: Service | None = None,
    urgent: bool = False,
    urgent_reason: str = "",
    appointment_at: datetime | None = None,
    now: datetime | None = None,
) -> Arrival:
    """Put a person in line and give them a ticket code.

    A known `person` is checked in as they are (blank optional details never erase what is
    on file); otherwise a new person is recorded with just `name`. The same `nonce` twice
    returns the first arrival, so a double tap is harmless.

    Locks: the person row (so one person cannot be checked in twice at once) and, last, the
    site's queue version; the day's ticket counter only while a number is taken.
    """
    now = now or timezone.now()
    name = _clean_text(
        person_name_clean(name), max_length=NAME_MAX, code="name_too_long", label=_("Name")
    )
    if name and not has_letter(name):
        raise QueueError("name_no_letter", str(NO_LETTER))
    urgent_reason = _clean_text(
        urgent_reason, max_length=REASON_MAX, code="reason_too_long", label=_("Reason")
    )
    details = {
        "pronouns": _clean_text(pronouns, max_length=40, code="too_long", label=_("Pronouns")),
        "phone": _clean_text(phone, max_length=40, code="too_long", label=_("Phone")),
        "what_helps": _clean_text(
            what_helps, max_length=WHAT_HELPS_MAX, code="too_long", label=_("What helps")
        ),
        "date_of_birth": date_of_birth,
    }
    if date_of_birth is not None:
        problem = birth_date_problem(date_of_birth, today=timezone.localdate(now, site.tz))
        if problem is not None:
            raise QueueError(*problem)
    if person is None and not name:
        raise QueueError("name_required", _("Please enter the name the person goes by."))
    if person is not None and person.site_id != site.pk:
        raise QueueError("unknown_person", _("That person is not known at this site."))
    if service is not None and (service.site_id != site.pk or not service.is_active):
        raise QueueError("unknown_service", _("Please pick a service this site offers."))
    if urgent and not urgent_reason:
        raise QueueError("urgent_needs_reason", _("Please give a short reason it is urgent."))
    if not urgent:
        urgent_reason = ""

    existing = Arrival.objects.filter(site=site, nonce=nonce).first()
    if existing is not None:
        return existing
    if person is not None:
        # Asked again under the person's lock below; asked here so that checking in someone
        # already in line does not use up a ticket number.
        _refuse_if_already_here(person)
    # The ticket number is taken in a statement of its own, before the check-in's transaction
    # (unless the caller has one open): its counter is locked only for that statement, not
    # until the check-in is written, so check-ins at one site wait on each other only for the
    # queue version bumped last. A check-in that then fails, which only a race between two
    # screens can make happen, leaves its number unused: the next person gets the next one.
    day = timezone.localdate(now, site.tz)
    number = _take_ticket_number(site, day)
    try:
        with transaction.atomic():
            return _check_in_locked(
                site=site,
                by=by,
                nonce=nonce,
                day=day,
                number=number,
                person=person,
                name=name,
                details=details,
                service=service,
                urgent=urgent,
                urgent_reason=urgent_reason,
                appointment_at=appointment_at,
                now=now,
            )
    except IntegrityError:
        # Lost a race with an identical tap (same nonce) or a check-in of the same person on
        # another screen; both committed first, so say what happened.
        existing = Arrival.objects.filter(site=site, nonce=nonce).first()
        if existing is not None:
            return existing
        if person is not None:
            _refuse_if_already_here(person)
        raise


def _refuse_if_already_here(person: Person) -> None:
    active = Arrival.objects.filter(person=person, state__in=ACTIVE_STATES).first()
    if active is not None:
        raise QueueError(
            "already_here",
            _("%(name)s is already checked in (%(ticket)s).")
            % {"name": person.name, "ticket": active.ticket},
            arrival=active,
        )


def _check_in_locked(
    *,
    site,
    by,
    nonce,
    day,
    number,
    person,
    name,
    details,
    service,
    urgent,
    urgent_reason,
    appointment_at,
    now,
) -> Arrival:
    new_person = person is None
    if new_person:
        person = Person.objects.create(site=site, name=name, created_by=by, **details)
    else:
        person = Person.objects.select_for_update().get(pk=person.pk, site=site)
        if person.merged_into_id is not None:
            # Merged a moment ago (two records of one person): the kept record is theirs.
            raise QueueError(
                "person_merged",
                _(
                    "This record was merged into another record of the same person: please "
                    "find them again."
                ),
            )
        _refuse_if_already_here(person)
        changed = [field for field, value in details.items() if value]
        for field in changed:
            setattr(person, field, details[field])
        if changed:
            person.save(update_fields=changed)

    arrival = Arrival.objects.create(
        site=site,
        person=person,
        service=service,
        urgent=urgent,
        urgent_reason=urgent_reason,
        day=day,
        ticket_number=number,
        ticket=f"{site.ticket_prefix}-{number}",
        arrived_at=now,
        appointment_at=appointment_at,
        state=State.WAITING,
        state_changed_at=now,
        nonce=nonce,
    )
    # Today's booked appointment, if any, is linked so the board shows its time. It never
    # touches arrived_at or urgency, which alone decide the place in line. (Someone recorded
    # a moment ago has none.)
    if not new_person:
        appointment_services.appointment_link_arrival(arrival=arrival)
    ArrivalEvent.objects.create(
        arrival=arrival,
        site=site,
        kind=EventKind.CHECKED_IN,
        at=now,
        by=by,
        to_state=State.WAITING,
        revision=arrival.revision,
    )
    queue_version_bump(site.pk)
    return arrival


# --- transitions --------------------------------------------------------------------------------


def _lock(arrival: Arrival) -> Arrival:
    # OF self: PostgreSQL refuses FOR UPDATE on the nullable side of the outer joins that
    # select_related makes for person and staff, and only the arrival row needs the lock.
    return (
        Arrival.objects.select_for_update(of=("self",))
        .select_related("site", "person", "staff")
        .get(pk=arrival.pk, site_id=arrival.site_id)
    )


def _describe_current(arrival: Arrival) -> str:
    last = arrival.events.order_by("-at", "-pk").select_related("by").first()
    who = staff_label(arrival.staff) if arrival.staff_id else staff_label(last.by if last else None)
    messages = {
        State.WAITING: _("This person's place in line changed on another screen."),
        State.CALLED: _("Already called by %(who)s."),
        State.WITH_STAFF: _("Already with %(who)s."),
        State.STEPPED_OUT: _("Already marked as stepped out by %(who)s."),
        State.DONE: _("Already finished by %(who)s."),
        State.LEFT: _("Already marked as left before being seen."),
    }
    return messages[arrival.state] % {"who": who}


def _check(arrival: Arrival, revision: int | None, allowed: tuple[str, ...]) -> None:
    if revision is not None and arrival.revision != revision:
        raise QueueError("changed_elsewhere", _describe_current(arrival), arrival=arrival)
    if arrival.state not in allowed:
        raise QueueError("not_allowed_now", _describe_current(arrival), arrival=arrival)


def _apply(
    arrival: Arrival,
    *,
    kind: str,
    by,
    now,
    to_state: str,
    staff=None,
    room=None,
    reverts: ArrivalEvent | None = None,
) -> ArrivalEvent:
    now = now or timezone.now()
    event = ArrivalEvent.objects.create(
        arrival=arrival,
        site_id=arrival.site_id,
        kind=kind,
        at=now,
        by=by,
        from_state=arrival.state,
        to_state=to_state,
        from_staff_id=arrival.staff_id,
        to_staff=staff,
        from_room_id=arrival.room_id,
        to_room=room,
        reverts=reverts,
        revision=arrival.revision + 1,  # written first: the database checks the change by it
    )
    arrival.state = to_state
    arrival.staff = staff
    arrival.room = room
    arrival.state_changed_at = now
    arrival.revision = F("revision") + 1
    arrival.save(update_fields=["state", "staff", "room", "state_changed_at", "revision"])
    arrival.refresh_from_db(fields=["revision"])
    return event


def _valid_room(site: Site, room: Room | None) -> Room | None:
    if room is not None and (room.site_id != site.pk or not room.is_active):
        raise QueueError("unknown_room", _("Please pick a room at this site."))
    return room


def staff_room_remember(*, site: Site, user, room: Room | None, now: datetime | None = None):
    """Remember the room (None: the front desk) `user` calls people to at `site`, as chosen or
    confirmed today. Refuses a room of another site or one no longer in use."""
    room = _valid_room(site, room)
    today = timezone.localdate(now or timezone.now(), site.tz)
    StaffRoom.objects.update_or_create(
        user=user, site=site, defaults={"room": room, "confirmed_on": today}
    )
    return room


def arrival_call_next(
    *,
    site: Site,
    by,
    room: Room | None = None,
    service: Service | None = None,
    now: datetime | None = None,
) -> Arrival:
    """Call whoever is first in line (urgent first, then by arrival), optionally for one service.

    Locks the chosen row with SKIP LOCKED, so a concurrent caller takes the next person.
    """
    now = now or timezone.now()
    room = _valid_room(site, room)
    if service is not None and service.site_id != site.pk:
        raise QueueError("unknown_service", _("Please pick a service this site offers."))
    with transaction.atomic():
        waiting = Arrival.objects.filter(site=site, state=State.WAITING)
        if service is not None:
            waiting = waiting.filter(service=service)
        arrival = (
            waiting.order_by("-urgent", "arrived_at", "pk")
            .select_for_update(skip_locked=True)
            .first()
        )
        if arrival is None:
            if service is not None:
                raise QueueError(
                    "nobody_waiting",
                    _("Nobody is waiting for %(service)s.") % {"service": service.name},
                )
            raise QueueError("nobody_waiting", _("Nobody is waiting."))
        _apply(
            arrival,
            kind=EventKind.CALLED,
            by=by,
            now=now,
            to_state=State.CALLED,
            staff=by,
            room=room,
        )
        queue_version_bump(site.pk)
    return arrival


@contextmanager
def _changing(arrival: Arrival, revision: int | None, allowed: tuple[str, ...]):
    """One transition: lock the arrival, check it is still as the screen showed it and in a
    state that allows the action, let the caller change it, then bump the queue version."""
    with transaction.atomic():
        locked = _lock(arrival)
        _check(locked, revision, allowed)
        yield locked
        queue_version_bump(locked.site_id)


def arrival_call(
    *,
    arrival: Arrival,
    by,
    revision: int | None,
    room: Room | None = None,
    now: datetime | None = None,
) -> Arrival:
    """Call one person (or call them again). Locks the arrival."""
    with _changing(arrival, revision, (State.WAITING, State.CALLED)) as arrival:
        room = _valid_room(arrival.site, room)
        _apply(
            arrival,
            kind=EventKind.CALLED,
            by=by,
            now=now,
            to_state=State.CALLED,
            staff=by,
            room=room,
        )
    return arrival


def arrival_start(
    *, arrival: Arrival, by, revision: int | None, now: datetime | None = None
) -> Arrival:
    """The team member starts seeing the person; their visit opens. Locks the arrival."""
    with _changing(arrival, revision, (State.WAITING, State.CALLED)) as arrival:
        event = _apply(
            arrival,
            kind=EventKind.STARTED,
            by=by,
            now=now,
            to_state=State.WITH_STAFF,
            staff=by,
            room=arrival.room,
        )
        visit_services.visit_open_from_arrival(arrival=arrival, by=by, at=event.at)
    return arrival


def handoff_candidates(site: Site):
    """Active team members who may call and see people at the site (and so take one over)."""
    return staff_who_can("queue.call_arrival", site).order_by("first_name", "username")


def arrival_hand_off(
    *, arrival: Arrival, by, revision: int | None, to_user, now: datetime | None = None
) -> Arrival:
    """Hand a person being seen over to another team member. Locks the arrival."""
    with _changing(arrival, revision, (State.WITH_STAFF,)) as arrival:
        if to_user is None or not handoff_candidates(arrival.site).filter(pk=to_user.pk).exists():
            raise QueueError("unknown_staff", _("Please pick a team member at this site."))
        if to_user.pk == arrival.staff_id:
            raise QueueError(
                "same_staff",
                _("%(who)s is already with this person.") % {"who": staff_label(to_user)},
            )
        event = _apply(
            arrival,
            kind=EventKind.HANDED_OFF,
            by=by,
            now=now,
            to_state=State.WITH_STAFF,
            staff=to_user,
            room=arrival.room,
        )
        visit_services.visit_add_participant(visit=arrival.visit, user=to_user, at=event.at)
    return arrival


def arrival_step_out(
    *, arrival: Arrival, by, revision: int | None, now: datetime | None = None
) -> Arrival:
    """Stepped out (a smoke, the dog, a call): the person keeps their place. Locks the arrival."""
    with _changing(arrival, revision, (State.WAITING, State.CALLED)) as arrival:
        _apply(arrival, kind=EventKind.STEPPED_OUT, by=by, now=now, to_state=State.STEPPED_OUT)
    return arrival


def arrival_come_back(
    *, arrival: Arrival, by, revision: int | None, now: datetime | None = None
) -> Arrival:
    """Back from stepping out: the same place in line as before (arrival time is unchanged)."""
    with _changing(arrival, revision, (State.STEPPED_OUT,)) as arrival:
        _apply(arrival, kind=EventKind.CAME_BACK, by=by, now=now, to_state=State.WAITING)
    return arrival


def arrival_mark_left(
    *, arrival: Arrival, by, revision: int | None, now: datetime | None = None
) -> Arrival:
    """Left before being seen: a measure of the clinic's capacity, never a mark on the person."""
    with _changing(arrival, revision, NOT_SEEN_STATES) as arrival:
        _apply(arrival, kind=EventKind.LEFT, by=by, now=now, to_state=State.LEFT)
    return arrival


def arrival_finish(
    *, arrival: Arrival, by, revision: int | None, now: datetime | None = None
) -> Arrival:
    """Done: the visit closes. Locks the arrival."""
    with _changing(arrival, revision, (State.WITH_STAFF,)) as arrival:
        event = _apply(
            arrival,
            kind=EventKind.DONE,
            by=by,
            now=now,
            to_state=State.DONE,
            staff=arrival.staff,
            room=arrival.room,
        )
        visit_services.visit_close(visit=arrival.visit, at=event.at)
    return arrival


def arrival_undo(
    *, arrival: Arrival, by, revision: int | None, now: datetime | None = None
) -> ArrivalEvent:
    """Undo the latest action on an arrival that has not been undone yet.

    Restores the state, staff and room from before that action and records an "undone" event
    pointing at it. Locks the arrival (and the person, when the entry would become active).
    """
    with _changing(arrival, revision, tuple(State.values)) as arrival:
        target = last_action(arrival)
        if target is None or target.to_state != arrival.state:
            raise QueueError("nothing_to_undo", _("There is nothing to undo here."))
        if (
            arrival.person_id is not None
            and arrival.state not in ACTIVE_STATES
            and target.from_state in ACTIVE_STATES
        ):
            # Bringing a finished entry back must not put the person in line twice if they
            # have checked in again since (lock the person as check-in does).
            _refuse_if_already_here(Person.objects.select_for_update().get(pk=arrival.person_id))
        visit = getattr(arrival, "visit", None)
        if target.kind == EventKind.STARTED and visit is not None:
            visit_services.visit_discard_unstarted(visit=visit)
        elif target.kind == EventKind.DONE and visit is not None:
            visit_services.visit_reopen(visit=visit)
        elif target.kind == EventKind.HANDED_OFF and visit is not None:
            visit_services.visit_remove_participant(visit=visit, user=target.to_staff)
        undo = _apply(
            arrival,
            kind=EventKind.UNDONE,
            by=by,
            now=now,
            to_state=target.from_state,
            staff=target.from_staff,
            room=target.from_room,
            reverts=target,
        )
    return undo


def queue_close_day(*, site: Site, by, now: datetime | None = None) -> int:
    """End of day: everyone not seen yet is recorded as left before being seen, and the
    site's ended visits are sealed (they can no longer be undone; corrections are addenda).

    People with a staff member are left alone. Locks the affected rows. Returns how many
    were recorded as left.
    """
    now = now or timezone.now()
    with transaction.atomic():
        open_arrivals = list(
            Arrival.objects.select_for_update()
            .filter(site=site, state__in=NOT_SEEN_STATES)
            .order_by("pk")
        )
        for arrival in open_arrivals:
            _apply(arrival, kind=EventKind.DAY_CLOSED, by=by, now=now, to_state=State.LEFT)
        visit_services.visits_seal(site=site, now=now)
        if open_arrivals:
            queue_version_bump(site.pk)
    return len(open_arrivals)


def site_rotate_display_token(*, site: Site) -> Site:
    """Give the waiting-room display a new secret link; screens on the old one disconnect."""
    from clinic.models import new_display_token

    with transaction.atomic():
        Site.objects.filter(pk=site.pk).update(display_token=new_display_token())
        site.refresh_from_db(fields=["display_token"])
        queue_version_bump(site.pk)
    return site


def queue_version_bump(site_id: int) -> None:
    """Bump the site's queue version (in the caller's transaction) and schedule the hint."""
    version = _increment(QueueClock, "version", site_id=site_id)
    if version is None:
        QueueClock.objects.get_or_create(site_id=site_id)
        version = _increment(QueueClock, "version", site_id=site_id)
    realtime.queue_changed(site_id=site_id, version=version)


def _take_ticket_number(site: Site, day) -> int:
    """The next ticket number at `site` on `day`: two check-ins never get the same one. The
    counter's row stays locked until the caller's transaction ends, if there is one."""
    number = _increment(TicketCounter, "last", site_id=site.pk, day=day)
    if number is None:
        TicketCounter.objects.get_or_create(site=site, day=day)
        number = _increment(TicketCounter, "last", site_id=site.pk, day=day)
    return number


def _increment(model, field: str, **where) -> int | None:
    """Add one to `field` of the row of `model` matching `where` and return the new value, in
    one statement (UPDATE … RETURNING, which also locks the row like SELECT … FOR UPDATE); None
    when there is no such row. Django's update() cannot return the value it wrote."""
    meta = model._meta
    column = connection.ops.quote_name(meta.get_field(field).column)
    conditions = " AND ".join(
        f"{connection.ops.quote_name(meta.get_field(name).column)} = %s" for name in where
    )
    params = [meta.get_field(name).get_db_prep_value(v, connection) for name, v in where.items()]
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {connection.ops.quote_name(meta.db_table)} SET {column} = {column} + 1 "  # noqa: S608 (names from the model)
            f"WHERE {conditions} RETURNING {column}",
            params,
        )
        row = cursor.fetchone()
    return None if row is None else row[0]
