"""The staff board's live part: its three tables, built once per snapshot and permission set.

The board page, its polling fallback and the websocket all send this HTML, and every socket
with the same permissions at the same version can be sent the same string:
`board_live_html(snapshot, perms)` does no database query and nothing for a request.

The rows are written here rather than in a template loop. A template with several includes
per row cost about 0.4 ms a person (120 ms with 300 waiting); these rows cost a few
microseconds each. Everything translated or reversed is looked up once per render, never per
row, and every value that comes from the database is escaped. The frame around the rows
(headings, column heads, "nobody is waiting") stays in templates/queues/_board_live.html.

A row is written once and kept while nothing it shows changes: each build takes the rows of
the last one (for the same site settings, permission set and language) whose values and wait,
in whole minutes, are the same, and writes only the others (`board_rows`).

`board_live` gives the same fragment in parts (each table's rows by arrival, each section's
frame) and `board_patch` what changed between two of them: what a live board is sent.
"""

import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from html import escape

from django.template.loader import render_to_string
from django.urls import get_script_prefix, reverse
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from clinic.models import Discipline, Site
from clinic.sites import site_perms
from queues.selectors import QueueRow, QueueSnapshot, queue_snapshot, queue_version
from queues.templatetags.queue_tags import minutes_waiting, wait_label

# What each name in `perms_here` means, as a permission at the site.
BOARD_PERMISSIONS = {
    "call": "queue.call_arrival",
    "presence": "queue.mark_presence",
    "close_day": "queue.close_day",
    "check_in": "queue.check_in",
}


def board_permissions(user, site) -> dict[str, bool]:
    """What the board lets this user do at the site (one query)."""
    return board_permissions_of(site_perms(user, site))


def board_permissions_of(held: frozenset[str]) -> dict[str, bool]:
    """What the board lets someone do who holds `held` at the site (`site_perms`)."""
    return {name: perm in held for name, perm in BOARD_PERMISSIONS.items()}


@dataclass(frozen=True)
class BoardRows:
    """Each table's rows as (arrival id, HTML), in the order shown."""

    waiting: list[tuple[int, str]]
    in_progress: list[tuple[int, str]]
    finished: list[tuple[int, str]]

    @staticmethod
    def joined(rows: list[tuple[int, str]]) -> SafeString:
        return mark_safe("".join(html for _pk, html in rows))  # noqa: S308 (escaped when built)

    @property
    def waiting_html(self) -> SafeString:
        return self.joined(self.waiting)

    @property
    def in_progress_html(self) -> SafeString:
        return self.joined(self.in_progress)

    @property
    def finished_html(self) -> SafeString:
        return self.joined(self.finished)


def board_live_html(snapshot: QueueSnapshot, perms: Mapping[str, bool]) -> SafeString:
    """The board's live fragment for this snapshot, as a user with `perms` sees it."""
    return render_to_string("queues/_board_live.html", {"snapshot": snapshot, "perms_here": perms})


def board_rows(snapshot: QueueSnapshot, perms: Mapping[str, bool]) -> BoardRows:
    """Each table's rows. A row whose values and wait (in minutes) are as in the last build for
    the same site settings, permission set and language is not written again: after a change
    most rows are taken as they were (`_RowWriter.kept`)."""
    prefix = (_site_values(snapshot.site), tuple(sorted(perms.items())), get_language())
    prefix += (get_script_prefix(),)
    with _memo_lock:
        memo = _memos.get(prefix, {})
    writer = _RowWriter(snapshot, perms, memo)
    rows = writer.rows()
    with _memo_lock:
        _memos[prefix] = writer.used  # only this build's rows: the memo never outgrows a board
        _memos.move_to_end(prefix)
        while len(_memos) > _MEMO_KEEP:
            _memos.popitem(last=False)
    return rows


# The rows of the last build per site settings, permission set and language, by their values.
_MEMO_KEEP = 16
_memos: OrderedDict[tuple, dict] = OrderedDict()
_memo_lock = threading.Lock()


def _site_values(site: Site) -> tuple:
    """Everything of the site's own settings a board shows or is written with."""
    return tuple(getattr(site, f.attname) for f in Site._meta.concrete_fields)


def _row_values(a: QueueRow) -> tuple:
    """Every value of a row the board shows (the key of a written row)."""
    person = a.person
    return (
        a.pk,
        a.ticket,
        a.state,
        a.urgent,
        a.urgent_reason,
        a.arrived_at,
        a.appointment_at,
        a.state_changed_at,
        a.revision,
        None if person is None else (person.pk, person.name, person.pronouns),
        a.service_name,
        a.staff_id,
        a.staff_name,
        a.room_name,
        a.staff_discipline,
    )


# --- the fragment for pages and polling screens, built once per change ------------------------

# A built fragment is handed out for this long at most: its wait labels are worked out when it
# is built (the page's script ticks them on; a page without scripts is this much behind).
BUILT_SECONDS = 20
_BUILT_KEEP = 8  # fragments kept per process: a few sites, versions and permission sets
# key -> (when it was built, seconds since the epoch; the snapshot; the fragment)
_built: OrderedDict[tuple, tuple[float, QueueSnapshot, SafeString]] = OrderedDict()
_built_lock = threading.Lock()


def built_board(site: Site, perms: Mapping[str, bool]) -> tuple[QueueSnapshot, SafeString]:
    """The snapshot and live fragment of `site` as someone with `perms` sees it, for the board
    page and the polling fallback: built once per version, permission set and language (and
    again once it is BUILT_SECONDS old), then given to every page and poll at that version, as
    the websocket does for its screens. One query when it is built already.

    Kept in this process only; nothing leaves it. The key holds the site's own settings too,
    so a change to them (the wait warning, the time zone) is seen at once."""
    version = queue_version(site.pk)
    now = timezone.now()
    at = now.timestamp()
    key = (_site_values(site), version, tuple(sorted(perms.items())), get_language())
    with _built_lock:
        built = _built.get(key)
        # Its own age, not a slot of the clock: two requests a moment apart share it even
        # where a round 20 seconds falls between them.
        if built is not None and 0 <= at - built[0] < BUILT_SECONDS:
            _built.move_to_end(key)
            return built[1], built[2]
    snapshot = queue_snapshot(site=site, now=now, version=version)
    html = board_live_html(snapshot, perms)
    with _built_lock:
        _built[key] = (at, snapshot, html)
        _built.move_to_end(key)
        while len(_built) > _BUILT_KEEP:
            _built.popitem(last=False)
    return snapshot, html


def built_board_forget() -> None:
    """Drop every built fragment and written row (tests: a new test's database may repeat a
    site's version)."""
    with _built_lock:
        _built.clear()
    with _memo_lock:
        _memos.clear()


# --- the fragment in parts, so that a screen can be sent only what changed ---------------------

# The board's sections, in the order shown; each holds the table of the same name. The last is
# shown only when it has rows.
SECTIONS = ("waiting", "in_progress", "finished")

_SECTION = re.compile(r'<section\b[^>]*\bdata-section="(\w+)".*?</section>', re.DOTALL)
_HEADING = re.compile(r"<h2\b.*?</h2>", re.DOTALL)
# A row's wait label and its "long" mark change every minute without a change in the queue;
# the screens tick them themselves (static/js/live.js), so rows are compared without them.
_WAIT_LABEL = re.compile(r'(<span class="wait)(?: long)?("[^>]*>)[^<]*(</span>)')


class _Marked(BoardRows):
    """The rows as the template sees them, each table's body a marker to split the frame by."""

    @property
    def waiting_html(self) -> SafeString:
        return mark_safe(_marker("waiting"))  # noqa: S308 (a constant)

    @property
    def in_progress_html(self) -> SafeString:
        return mark_safe(_marker("in_progress"))  # noqa: S308 (a constant)

    @property
    def finished_html(self) -> SafeString:
        return mark_safe(_marker("finished"))  # noqa: S308 (a constant)


def _marker(table: str) -> str:
    return f"<!--rows:{table}-->"


@dataclass(frozen=True)
class LiveBoard:
    """The live fragment (`html`, what `board_live_html` gives) and its parts: each table's
    rows, and each section's frame with its table empty (None: the section is not shown)."""

    html: str
    rows: BoardRows
    sections: dict[str, str | None]

    def heading(self, section: str) -> str | None:
        frame = self.sections[section]
        found = _HEADING.search(frame) if frame else None
        return found.group(0) if found else None


def _changed(before: str, after: str) -> bool:
    """Whether a row changed in more than its wait label. Comparing the HTML (rather than the
    row's data) catches everything the row shows; it costs a string comparison a row, and a
    substitution only for rows whose text differs (every row, once a minute)."""
    return before != after and _WAIT_LABEL.sub(r"\1\2\3", before) != _WAIT_LABEL.sub(
        r"\1\2\3", after
    )


def board_live(snapshot: QueueSnapshot, perms: Mapping[str, bool]) -> LiveBoard:
    """`board_live_html` with its parts, in one render."""
    rows = board_rows(snapshot, perms)
    marked = _Marked(rows.waiting, rows.in_progress, rows.finished)
    frame = render_to_string(
        "queues/_board_live.html", {"snapshot": snapshot, "perms_here": perms, "rows": marked}
    )
    html, empty = frame, frame
    for table in SECTIONS:
        html = html.replace(_marker(table), BoardRows.joined(getattr(rows, table)))
        empty = empty.replace(_marker(table), "")
    sections = dict.fromkeys(SECTIONS)
    sections.update((m.group(1), m.group(0)) for m in _SECTION.finditer(empty))
    return LiveBoard(html=html, rows=rows, sections=sections)


def board_patch(old: LiveBoard, new: LiveBoard) -> dict:
    """What turns a screen showing `old` into `new`: each section whose frame changed (its
    heading alone when only that did), and for each table whose rows changed, its order and the
    rows added or changed (rows that differ only by their wait label are not sent)."""
    patch = {"sections": {}, "headings": {}, "tables": {}}
    for name in SECTIONS:
        before, after = old.sections[name], new.sections[name]
        rebuilt = before != after and (
            before is None
            or after is None
            or before.replace(old.heading(name), "") != after.replace(new.heading(name), "")
        )
        if rebuilt:
            patch["sections"][name] = after
        elif before != after:
            patch["headings"][name] = new.heading(name)
        rows = getattr(new.rows, name)
        if rebuilt and not rows:
            continue  # the new frame is the whole section
        if not rebuilt and getattr(old.rows, name) == rows:
            continue
        was = dict(getattr(old.rows, name))
        sent = {pk: html for pk, html in rows if pk not in was or _changed(was[pk], html)}
        order = [pk for pk, _html in rows]
        if rebuilt or sent or order != list(was):
            patch["tables"][name] = {"order": order, "rows": sent}
    return {part: value for part, value in patch.items() if value}


def _url_maker(name: str, **kwargs) -> Callable[[int], str]:
    """A function of an arrival or person id giving the URL `name` reverses to: reversed once
    with a stand-in id, so that rows do not run the resolver."""
    stand_in = 987654321987
    before, after = reverse(name, kwargs={"pk": stand_in, **kwargs}).split(str(stand_in))
    before, after = escape(before), escape(after)
    return lambda pk: f"{before}{pk}{after}"


_ACTIONS = ("call", "start", "step-out", "back", "left", "done", "undo")


class _RowWriter:
    def __init__(
        self, snapshot: QueueSnapshot, perms: Mapping[str, bool], memo: Mapping | None = None
    ) -> None:
        self.memo = memo or {}  # rows written before, by `kept`'s key
        self.used: dict = {}  # the rows of this build, by the same key
        self.snapshot = snapshot
        self.now = snapshot.now
        self.tz = snapshot.site.tz
        self.warn = snapshot.site.wait_warning_minutes
        self.can_call = bool(perms.get("call"))
        self.can_mark = bool(perms.get("presence"))
        self.action_url = {
            action: _url_maker("queues:arrival_action", action=action) for action in _ACTIONS
        }
        self.person_url = _url_maker("visits:person")
        self.visit_url = _url_maker("visits:visit_for_arrival")
        self.hand_off_url = _url_maker("queues:hand_off")
        self.waits: dict[int, str] = {}
        self.disciplines: dict[str, str] = {}
        self.text = {
            key: escape(value)
            for key, value in {
                "anonymous": _("Anonymous"),
                "not_sure": _("Not sure yet"),
                "urgent": _("Urgent:"),
                "stepped_out_badge": _("Stepped out — keeps their place"),
                "none": _("none"),
                "front_desk": _("the front desk"),
                "called_by": _("Called by %(who)s to %(room)s"),
                "with": _("With %(who)s"),
                "call": _("Call"),
                "call_again": _("Call again"),
                "start": _("Start"),
                "step_out": _("Stepped out"),
                "back": _("Back"),
                "left": _("Left"),
                "undo": _("Undo"),
                "done": _("Done"),
                "open_visit": _("Open visit"),
                "hand_off": _("Hand off"),
            }.items()
        }

    def rows(self) -> BoardRows:
        s = self.snapshot
        return BoardRows(
            waiting=[(a.pk, self.kept(a, a.arrived_at, self.waiting_row)) for a in s.waiting],
            in_progress=[
                (a.pk, self.kept(a, a.state_changed_at, self.in_progress_row))
                for a in s.in_progress
            ],
            finished=[(a.pk, self.kept(a, None, self.finished_row)) for a in s.finished],
        )

    def kept(self, a: QueueRow, since: datetime | None, write: Callable[[QueueRow], str]) -> str:
        """The row as written before when its values and its wait (whole minutes since
        `since`) are the same, else written now."""
        minutes = None if since is None else minutes_waiting(since, self.now)
        key = (write.__name__, minutes, _row_values(a))
        html = self.memo.get(key)
        if html is None:
            html = write(a)
        self.used[key] = html
        return html

    # --- the parts ------------------------------------------------------------------------

    def wait(self, since: datetime) -> tuple[int, str]:
        minutes = minutes_waiting(since, self.now)
        label = self.waits.get(minutes)
        if label is None:
            label = self.waits[minutes] = escape(wait_label(since, self.now))
        return minutes, label

    def discipline(self, code: str) -> str:
        label = self.disciplines.get(code)
        if label is None:
            label = self.disciplines[code] = escape(str(dict(Discipline.choices).get(code, code)))
        return label

    def local(self, moment: datetime) -> datetime:
        return moment.astimezone(self.tz)

    def button(self, a: QueueRow, ticket: str, action: str, label: str, css: str) -> str:
        return (
            f'<button form="row-actions" formaction="{self.action_url[action](a.pk)}" '
            f'name="revision" value="{a.revision}" data-focus-key="{a.pk}-{action}" '
            f'class="{css}">{self.text[label]}<span class="visually-hidden"> {ticket}</span>'
            "</button>"
        )

    def name(self, a: QueueRow, *, pronouns: bool) -> str:
        person = a.person
        if person is None:
            return self.text["anonymous"]
        url, name = self.person_url(person.pk), escape(person.name)
        html = f'<a class="person-link" href="{url}">{name}</a>'
        if pronouns and person.pronouns:
            html += f' <span class="pronouns">({escape(person.pronouns)})</span>'
        return html

    def service(self, a: QueueRow) -> str:
        return escape(a.service_name) if a.service_name else self.text["not_sure"]

    # --- the rows -------------------------------------------------------------------------

    def waiting_row(self, a: QueueRow) -> str:
        text, ticket = self.text, escape(a.ticket)
        waiting = a.state == "waiting"
        classes = ("urgent " if a.urgent else "") + ("" if waiting else "stepped-out")
        row_class = f' class="{classes.strip()}"' if classes else ""
        name = self.name(a, pronouns=True)
        if not waiting:
            name += f' <span class="badge">{text["stepped_out_badge"]}</span>'
        service = self.service(a)
        if a.urgent:
            service += (
                f' <span class="badge urgent">{text["urgent"]} {escape(a.urgent_reason)}</span>'
            )
        minutes, label = self.wait(a.arrived_at)
        long = " long" if minutes >= self.warn else ""
        if a.appointment_at is not None:
            appointment = f"{self.local(a.appointment_at):%H:%M}"
        else:
            appointment = f'<span aria-label="{text["none"]}">—</span>'
        buttons = []
        if waiting:
            if self.can_call:
                buttons.append(self.button(a, ticket, "call", "call", "primary"))
            if self.can_mark:
                buttons.append(self.button(a, ticket, "step-out", "step_out", "secondary"))
                buttons.append(self.button(a, ticket, "left", "left", "secondary"))
        elif self.can_mark:
            buttons.append(self.button(a, ticket, "back", "back", "primary"))
            buttons.append(self.button(a, ticket, "left", "left", "secondary"))
            buttons.append(self.button(a, ticket, "undo", "undo", "link"))
        return (
            f'<tr{row_class} data-arrival="{a.pk}"><td class="ticket">{ticket}</td>'
            f'<th scope="row">{name}</th><td>{service}</td>'
            f'<td><span class="wait{long}" data-since="{self.local(a.arrived_at).isoformat()}" '
            f'data-warn="{self.warn}">{label}</span></td><td>{appointment}</td>'
            f'<td class="actions"><div class="action-list">{"".join(buttons)}</div></td></tr>'
        )

    def in_progress_row(self, a: QueueRow) -> str:
        text, ticket = self.text, escape(a.ticket)
        who = escape(a.staff_name)
        if a.state == "called":
            room = escape(a.room_name) if a.room_name else text["front_desk"]
            with_whom = text["called_by"] % {"who": who, "room": room}
        else:
            with_whom = text["with"] % {"who": who}
            if a.staff_discipline:
                with_whom += f" ({self.discipline(a.staff_discipline)})"
        changed = self.local(a.state_changed_at)
        _minutes, label = self.wait(a.state_changed_at)
        actions = []
        if a.state == "called":
            if self.can_call:
                actions.append(self.button(a, ticket, "start", "start", "primary"))
                actions.append(self.button(a, ticket, "call", "call_again", "secondary"))
            if self.can_mark:
                actions.append(self.button(a, ticket, "step-out", "step_out", "secondary"))
                actions.append(self.button(a, ticket, "left", "left", "secondary"))
        elif self.can_call:
            actions.append(
                f'<a class="button secondary" href="{self.visit_url(a.pk)}" '
                f'data-focus-key="{a.pk}-visit">{text["open_visit"]}'
                f'<span class="visually-hidden"> {ticket}</span></a>'
            )
            actions.append(
                f'<a class="button secondary" href="{self.hand_off_url(a.pk)}" '
                f'data-focus-key="{a.pk}-handoff">{text["hand_off"]}'
                f'<span class="visually-hidden"> {ticket}</span></a>'
            )
            actions.append(self.button(a, ticket, "done", "done", "primary"))
        if self.can_call:
            actions.append(self.button(a, ticket, "undo", "undo", "link"))
        return (
            f'<tr data-arrival="{a.pk}"><td class="ticket">{ticket}</td>'
            f'<th scope="row">{self.name(a, pronouns=True)}</th><td>{self.service(a)}</td>'
            f"<td>{with_whom}</td>"
            f'<td><span class="wait" data-since="{changed.isoformat()}" '
            f'title="{changed:%H:%M}">{label}</span></td>'
            f'<td class="actions"><div class="action-list">{"".join(actions)}</div></td></tr>'
        )

    def finished_row(self, a: QueueRow) -> str:
        ticket = escape(a.ticket)
        undo = (a.state == "done" and self.can_call) or (a.state == "left" and self.can_mark)
        action = self.button(a, ticket, "undo", "undo", "link") if undo else ""
        return (
            f'<tr data-arrival="{a.pk}"><td class="ticket">{ticket}</td>'
            f'<th scope="row">{self.name(a, pronouns=False)}</th>'
            f"<td>{escape(a.state_label)}</td>"
            f"<td>{self.local(a.state_changed_at):%H:%M}</td>"
            f'<td class="actions"><div class="action-list">{action}</div></td></tr>'
        )
