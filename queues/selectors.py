"""Reads of the queue. One snapshot feeds the page, the refresh fragment and the websocket."""

import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

from django.db import connection
from django.db.models import Exists, F, Max, OuterRef, Q, Subquery
from django.utils import timezone

from clinic.models import Membership, Person, Room, Site
from queues.models import ACTIVE_STATES, Arrival, QueueClock, StaffRoom, State

SEARCH_LIMIT = 8
DISPLAY_CALLED_LIMIT = 6


def queue_version(site_id: int) -> int:
    return QueueClock.objects.filter(site_id=site_id).values_list("version", flat=True).first() or 0


# Not frozen: a frozen dataclass sets each field through object.__setattr__, which tripled the
# cost of making a row (4 ms more with 1,000 waiting). Nothing changes a row once read; built
# boards share them between threads (queues/board.py).
@dataclass(slots=True)
class PersonRef:
    pk: int
    name: str
    pronouns: str


@dataclass(slots=True)
class QueueRow:
    """One arrival as the board shows it: plain values from one query, no model instances.

    Building a model instance (and four related ones) per person was most of the snapshot's
    cost with hundreds waiting; these rows cost a couple of microseconds each.
    """

    pk: int
    site_id: int
    ticket: str
    state: str
    urgent: bool
    urgent_reason: str
    arrived_at: datetime
    appointment_at: datetime | None
    state_changed_at: datetime
    revision: int
    person: PersonRef | None
    service_name: str
    staff_id: int | None
    staff_name: str  # as services.staff_label says it: the full name, else the username
    room_name: str
    staff_discipline: str  # the staff member's discipline at the site (a code), or ""

    @property
    def state_label(self) -> str:
        return State(self.state).label


_ROW_FIELDS = (
    "pk",
    "site_id",
    "ticket",
    "state",
    "urgent",
    "urgent_reason",
    "arrived_at",
    "appointment_at",
    "state_changed_at",
    "revision",
    "person_id",
    "person__name",
    "person__pronouns",
    "service__name",
    "staff_id",
    "staff__first_name",
    "staff__last_name",
    "staff__username",
    "room__name",
    "staff_discipline",
)


# The snapshot's two queries compiled once per database vendor, site (and day): the ORM
# took about 4 ms to compile them, on every build of every board. Each entry holds the SQL,
# its parameters and the converters the ORM would apply to the values read.
_COMPILED_KEEP = 64
_compiled: OrderedDict[tuple, tuple] = OrderedDict()
_compiled_lock = threading.Lock()


def _values_rows(queryset, key: tuple) -> list:
    """`queryset`'s rows as values_list() gives them, its SQL compiled once for `key` (which
    must say everything its SQL depends on)."""
    key = (connection.vendor, *key)
    with _compiled_lock:
        entry = _compiled.get(key)
    if entry is None:
        compiler = queryset.query.get_compiler(connection=connection)
        sql, params = compiler.as_sql()
        expressions = [column[0] for column in compiler.select[: compiler.col_count]]
        entry = (sql, params, list(compiler.get_converters(expressions).items()))
        with _compiled_lock:
            _compiled[key] = entry
            while len(_compiled) > _COMPILED_KEEP:
                _compiled.popitem(last=False)
    sql, params, converters = entry
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    if not converters:  # PostgreSQL gives these values as they are
        return rows
    converted = []
    for row in rows:
        row = list(row)
        for position, (functions, expression) in converters:
            value = row[position]
            for function in functions:
                value = function(value, expression, connection)
            row[position] = value
        converted.append(row)
    return converted


def _rows(queryset, key: tuple) -> list[QueueRow]:
    rows = []
    for (
        pk,
        site_id,
        ticket,
        state,
        urgent,
        urgent_reason,
        arrived_at,
        appointment_at,
        state_changed_at,
        revision,
        person_id,
        person_name,
        pronouns,
        service_name,
        staff_id,
        first_name,
        last_name,
        username,
        room_name,
        staff_discipline,
    ) in _values_rows(
        queryset.annotate(
            # The staff member's discipline where they see the person, in the same query.
            staff_discipline=Subquery(
                Membership.objects.filter(site=OuterRef("site"), user=OuterRef("staff")).values(
                    "discipline"
                )[:1]
            )
        ).values_list(*_ROW_FIELDS),
        key,
    ):
        rows.append(
            QueueRow(
                pk=pk,
                site_id=site_id,
                ticket=ticket,
                state=state,
                urgent=urgent,
                urgent_reason=urgent_reason,
                arrived_at=arrived_at,
                appointment_at=appointment_at,
                state_changed_at=state_changed_at,
                revision=revision,
                person=None
                if person_id is None
                else PersonRef(pk=person_id, name=person_name, pronouns=pronouns),
                service_name=service_name or "",
                staff_id=staff_id,
                staff_name=f"{first_name or ''} {last_name or ''}".strip() or (username or ""),
                room_name=room_name or "",
                staff_discipline=staff_discipline or "",
            )
        )
    return rows


@dataclass
class QueueSnapshot:
    site: Site
    version: int
    now: datetime
    waiting: list[QueueRow]
    in_progress: list[QueueRow]
    finished: list[QueueRow]

    @property
    def waiting_count(self) -> int:
        return sum(1 for a in self.waiting if a.state == State.WAITING)

    @property
    def stepped_out_count(self) -> int:
        return len(self.waiting) - self.waiting_count


def queue_snapshot(
    *, site: Site, now: datetime | None = None, version: int | None = None
) -> QueueSnapshot:
    """Everyone active at the site, in line order, and today's recently finished. Two
    queries after the version (`version`: the caller read it just before), whatever the
    number of people."""
    now = now or timezone.now()
    # Version first: rows read afterwards are at least that new, so a screen never believes
    # it is up to date while holding older rows.
    if version is None:
        version = queue_version(site.pk)
    active = _rows(
        Arrival.objects.filter(site=site, state__in=ACTIVE_STATES).order_by(
            "-urgent", "arrived_at", "pk"
        ),
        ("active", site.pk),
    )
    today = timezone.localdate(now, site.tz)
    finished = _rows(
        Arrival.objects.filter(site=site, state__in=(State.DONE, State.LEFT), day=today).order_by(
            "-state_changed_at", "-pk"
        )[:10],
        ("finished", site.pk, today),
    )
    return QueueSnapshot(
        site=site,
        version=version,
        now=now,
        waiting=[a for a in active if a.state in (State.WAITING, State.STEPPED_OUT)],
        in_progress=sorted(
            (a for a in active if a.state in (State.CALLED, State.WITH_STAFF)),
            key=lambda a: (a.state_changed_at, a.pk),
        ),
        finished=finished,
    )


@dataclass(frozen=True)
class MyRoom:
    """The room a staff member calls people to at a site, and whether they said so today."""

    room: Room | None  # None: the front desk
    confirmed_today: bool


def rooms_in_use(*, site: Site, user) -> list[Room]:
    """The site's rooms in use, in order, each with `mine`: whether it is the room `user`
    remembered (a remembered room out of use, or of another site, is not among them). One
    query, for the board's room picker."""
    return list(
        Room.objects.filter(site=site, is_active=True)
        .annotate(mine=Exists(StaffRoom.objects.filter(user=user, room=OuterRef("pk"))))
        .order_by("position", "name")
    )


def staff_room(*, site: Site, user, now: datetime | None = None) -> MyRoom:
    """The remembered room, never one of another site or one taken out of use (then: none)."""
    remembered = StaffRoom.objects.filter(user=user, site=site).select_related("room").first()
    if remembered is None:
        return MyRoom(room=None, confirmed_today=False)
    room = remembered.room
    usable = room is not None and room.site_id == site.pk and room.is_active
    today = timezone.localdate(now or timezone.now(), site.tz)
    return MyRoom(
        room=room if usable else None,
        # A room that went out of use since: asked again, whatever day it was confirmed.
        confirmed_today=remembered.confirmed_on == today and (usable or room is None),
    )


@dataclass(frozen=True)
class DisplayCall:
    ticket: str
    room: str
    # When they were called, in milliseconds: the display chimes for a call newer than any it
    # has shown (static/js/display.js), so an undone call coming back to the top stays quiet.
    called_at: int


@dataclass(frozen=True)
class DisplaySnapshot:
    """What the waiting-room TV may show: ticket codes and rooms, nothing about a person."""

    version: int
    called: tuple[DisplayCall, ...]
    waiting: tuple[str, ...]
    # The site's setting, in every snapshot, so an open TV follows it without a reload.
    chime: bool = False


def display_snapshot(*, site: Site) -> DisplaySnapshot:
    version = queue_version(site.pk)
    called = (
        Arrival.objects.filter(site=site, state=State.CALLED)
        .order_by("-state_changed_at", "-pk")
        .values_list("ticket", "room__name", "state_changed_at")[:DISPLAY_CALLED_LIMIT]
    )
    # Ticket order, not line order: the order on screen must not reveal who is urgent. Someone
    # who stepped out keeps their place, so their code stays up too.
    waiting = (
        Arrival.objects.filter(site=site, state__in=(State.WAITING, State.STEPPED_OUT))
        .order_by("day", "ticket_number")
        .values_list("ticket", flat=True)
    )
    return DisplaySnapshot(
        version=version,
        called=tuple(
            DisplayCall(ticket=t, room=r or "", called_at=int(at.timestamp() * 1000))
            for t, r, at in called
        ),
        waiting=tuple(waiting),
        chime=site.display_chime,
    )


def people_search(*, site: Site, query: str) -> list[Person]:
    """People known at the site whose name contains the query, most recently here first."""
    query = (query or "").strip()
    if not query:
        return []
    words = query.split()[:4]
    condition = Q()
    for word in words:
        condition &= Q(name__icontains=word)
    return list(
        _people_with_visits(site).filter(condition)
        .order_by(F("last_here").desc(nulls_last=True), "name")[:SEARCH_LIMIT]
    )  # fmt: skip


def namesakes(*, site: Site, name: str) -> list[Person]:
    """People known at the site by exactly `name` (case aside), as `people_search` shows them:
    the ones to ask about before a new person of that name is added. Asked by the whole name,
    not through the search's first few matches, which many longer names containing it (Ana,
    Anabel, Diana) would fill."""
    wanted = name.strip().casefold()
    if not wanted:
        return []
    same_name = Person.objects.current().filter(site=site, name__iexact=name.strip())
    # Usually nobody: a plain query says so, and only namesakes are read with their visits.
    if not same_name.exists():
        return []
    found = _people_with_visits(site).filter(name__iexact=name.strip())
    return [
        person
        for person in found.order_by(F("last_here").desc(nulls_last=True), "pk")
        if person.name.strip().casefold() == wanted
    ]


def person_match(*, site: Site, pk: int) -> Person | None:
    """One person known at the site, as `people_search` shows them (a link by record id)."""
    return _people_with_visits(site).filter(pk=pk).first()


def _people_with_visits(site: Site):
    return (
        Person.objects.current()
        .filter(site=site)
        .annotate(
            last_here=Max("arrivals__arrived_at"),
            here_now=Subquery(
                Arrival.objects.filter(person=OuterRef("pk"), state__in=ACTIVE_STATES).values(
                    "ticket"
                )[:1]
            ),
        )
    )


_NOT_UNDOABLE = ("checked_in", "undone")


def last_action(arrival: Arrival):
    """The latest event on an arrival that "Undo" would revert, or None."""
    events = list(arrival.events.order_by("-pk").select_related("from_staff", "from_room"))
    reverted = {event.reverts_id for event in events if event.reverts_id}
    return next((e for e in events if e.kind not in _NOT_UNDOABLE and e.pk not in reverted), None)
