"""The staff board's live tables (queues/board.py): one render per snapshot and permission set,
no query and nothing of a request inside it, the same rows, buttons and markers for each role,
and a cost in queries that does not grow with the number of people waiting."""

import re
import zoneinfo
from datetime import UTC, datetime, time, timedelta
from html.parser import HTMLParser

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from queues import services
from queues.board import board_live_html, board_permissions
from queues.selectors import queue_snapshot
from tests.factories import PersonFactory, check_in

CHICAGO = zoneinfo.ZoneInfo("America/Chicago")  # the site's time zone
# 09:00 today at the site: what finished today is on the board.
T0 = datetime.combine(timezone.localdate(timezone.now(), CHICAGO), time(9), tzinfo=CHICAGO)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


class Rows(HTMLParser):
    """Each table row of the fragment: its arrival id, class, text and actions (buttons'
    form actions and links)."""

    def __init__(self, html: str):
        super().__init__()
        self.rows: dict[int, dict] = {}
        self.current = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "tr" and "data-arrival" in attrs:
            self.current = self.rows[int(attrs["data-arrival"])] = {
                "class": set((attrs.get("class") or "").split()),
                "text": "",
                "actions": [],
                "since": None,
            }
        elif self.current is None:
            return
        elif tag == "button":
            assert attrs["form"] == "row-actions"
            self.current["actions"].append(
                (attrs["formaction"], attrs["value"], attrs["class"], attrs["data-focus-key"])
            )
        elif tag == "a" and "button" in (attrs.get("class") or ""):
            self.current["actions"].append((attrs["href"], None, attrs["class"], None))
        elif tag == "span" and "wait" in (attrs.get("class") or "").split():
            self.current["since"] = attrs["data-since"]
            self.current["wait_class"] = attrs["class"]

    def handle_endtag(self, tag):
        if tag == "tr":
            self.current = None

    def handle_data(self, data):
        if self.current is not None:
            self.current["text"] = " ".join((self.current["text"] + " " + data).split())


def act(arrival, action: str) -> str:
    return reverse("queues:arrival_action", args=[arrival.pk, action])


def build_queue(site, front_desk, clinician, room, service):
    """One of each: waiting (urgent, with an appointment), stepped out, anonymous-looking,
    called, with staff, done, left."""
    urgent = check_in(
        site=site,
        by=front_desk,
        name="Ana <b>Bold</b>",
        pronouns="she/her",
        service=service,
        urgent=True,
        urgent_reason='Chest "pain" & <dizzy>',
        appointment_at=at(45),
        now=at(0),
    )
    away = check_in(site=site, by=front_desk, name="Ben", now=at(1))
    services.arrival_step_out(arrival=away, by=front_desk, revision=away.revision, now=at(2))
    called = check_in(site=site, by=front_desk, name="Cy", now=at(3))
    services.arrival_call(arrival=called, by=clinician, revision=called.revision, room=room)
    seen = check_in(site=site, by=front_desk, name="Dee", now=at(4))
    seen = services.arrival_call(arrival=seen, by=clinician, revision=seen.revision)
    seen = services.arrival_start(arrival=seen, by=clinician, revision=seen.revision)
    done = check_in(site=site, by=front_desk, name="Eli", now=at(5))
    done = services.arrival_call(arrival=done, by=clinician, revision=done.revision)
    done = services.arrival_start(arrival=done, by=clinician, revision=done.revision)
    services.arrival_finish(arrival=done, by=clinician, revision=done.revision)
    left = check_in(site=site, by=front_desk, name="Fay", now=at(6))
    services.arrival_mark_left(arrival=left, by=front_desk, revision=left.revision)
    return {
        name: type(a).objects.get(pk=a.pk)
        for name, a in {
            "urgent": urgent,
            "away": away,
            "called": called,
            "seen": seen,
            "done": done,
            "left": left,
        }.items()
    }


def test_board_rows_give_each_role_the_actions_it_may_take_in_every_state(
    site, front_desk, clinician, room, service
):
    q = build_queue(site, front_desk, clinician, room, service)
    snapshot = queue_snapshot(site=site)
    team = Rows(board_live_html(snapshot, board_permissions(clinician, site))).rows
    desk = Rows(board_live_html(snapshot, board_permissions(front_desk, site))).rows

    def actions(rows, key):
        return [(url, css) for url, _rev, css, _focus in rows[q[key].pk]["actions"]]

    u, a, c, s = q["urgent"], q["away"], q["called"], q["seen"]
    assert actions(team, "urgent") == [
        (act(u, "call"), "primary"),
        (act(u, "step-out"), "secondary"),
        (act(u, "left"), "secondary"),
    ]
    assert actions(desk, "urgent") == [
        (act(u, "step-out"), "secondary"),
        (act(u, "left"), "secondary"),
    ]
    back = [(act(a, "back"), "primary"), (act(a, "left"), "secondary"), (act(a, "undo"), "link")]
    assert actions(team, "away") == actions(desk, "away") == back
    assert actions(team, "called") == [
        (act(c, "start"), "primary"),
        (act(c, "call"), "secondary"),
        (act(c, "step-out"), "secondary"),
        (act(c, "left"), "secondary"),
        (act(c, "undo"), "link"),
    ]
    assert actions(desk, "called") == [
        (act(c, "step-out"), "secondary"),
        (act(c, "left"), "secondary"),
    ]
    assert actions(team, "seen") == [
        (reverse("visits:visit_for_arrival", args=[s.pk]), "button secondary"),
        (reverse("queues:hand_off", args=[s.pk]), "button secondary"),
        (act(s, "done"), "primary"),
        (act(s, "undo"), "link"),
    ]
    assert actions(desk, "seen") == []
    assert actions(team, "done") == [(act(q["done"], "undo"), "link")]
    assert actions(desk, "done") == []
    assert actions(team, "left") == actions(desk, "left") == [(act(q["left"], "undo"), "link")]
    # Each button carries the revision it was made from, and a key that keeps focus on it.
    for row in team.values():
        for url, revision, _css, focus in row["actions"]:
            if revision is not None:
                arrival_id, action = re.fullmatch(r"/queue/arrivals/(\d+)/([a-z-]+)/", url).groups()
                assert focus == f"{arrival_id}-{action}"
                assert int(revision) == type(q["urgent"]).objects.get(pk=arrival_id).revision


def test_board_rows_show_names_markers_waits_and_rooms_escaped(
    site, front_desk, clinician, room, service
):
    q = build_queue(site, front_desk, clinician, room, service)
    snapshot = queue_snapshot(site=site, now=at(75))
    html = board_live_html(snapshot, board_permissions(clinician, site))
    rows = Rows(html).rows

    urgent = rows[q["urgent"].pk]
    assert urgent["class"] == {"urgent"}
    assert urgent["text"].startswith("K-1 Ana <b>Bold</b> (she/her) Wound care")
    assert 'Urgent: Chest "pain" & <dizzy>' in urgent["text"]
    assert "1 h 15" in urgent["text"] and "09:45" in urgent["text"]
    assert urgent["since"] == T0.isoformat()
    assert urgent["wait_class"] == "wait long"  # past the site's warning time
    assert "<b>" not in html and "<dizzy>" not in html  # escaped, never markup

    away = rows[q["away"].pk]
    assert away["class"] == {"stepped-out"}
    assert "Stepped out — keeps their place" in away["text"]
    assert "Not sure yet" in away["text"] and "none" not in away["text"]  # the — is labelled

    assert f"Called by {clinician.get_full_name()} to {room.name}" in rows[q["called"].pk]["text"]
    assert f"With {clinician.get_full_name()} (Nurse practitioner)" in rows[q["seen"].pk]["text"]
    assert rows[q["done"].pk]["text"].startswith("K-5 Eli Done")
    assert rows[q["left"].pk]["text"].startswith("K-6 Fay Left before being seen")
    assert "1 waiting · 1 stepped out" in html


def test_board_render_asks_the_database_nothing(site, front_desk, clinician, room, service):
    build_queue(site, front_desk, clinician, room, service)
    snapshot = queue_snapshot(site=site)
    perms = board_permissions(clinician, site)
    with CaptureQueriesContext(connection) as queries:
        first = board_live_html(snapshot, perms)
    assert len(queries) == 0
    # The same snapshot and permissions give the same HTML: one render serves every socket.
    assert board_live_html(snapshot, dict(perms)) == first


def test_board_queries_do_not_grow_with_the_number_waiting(client, site, front_desk, clinician):
    client.force_login(clinician)
    client.get(reverse("queues:board"))  # the session's first request writes more
    counts = {}
    for waiting in (1, 40):
        while queue_snapshot(site=site).waiting_count < waiting:
            check_in(site=site, by=front_desk, person=PersonFactory(site=site))
        for name in ("queues:board", "queues:board_live"):
            with CaptureQueriesContext(connection) as queries:
                assert client.get(reverse(name)).status_code == 200
            counts[name, waiting] = len(queries)
    assert counts["queues:board", 1] == counts["queues:board", 40]
    assert counts["queues:board_live", 1] == counts["queues:board_live", 40]


# --- built once per change, for pages and polling screens ---------------------------------------


def _people_read(queries) -> int:
    return sum('FROM "queue_arrival"' in q["sql"] for q in queries.captured_queries)


def test_pages_and_polls_at_one_version_share_one_build(client, site, front_desk, clinician):
    """The board page and the polling fallback build the fragment once per version and
    permission set; every later page or poll at that version is given it, and a change
    builds it again."""
    check_in(site=site, by=front_desk, name="Ana")
    client.force_login(clinician)
    with CaptureQueriesContext(connection) as first:
        page = client.get(reverse("queues:board")).content.decode()
    with CaptureQueriesContext(connection) as again:
        polled = client.get(reverse("queues:board_live")).json()

    assert _people_read(first) == 2  # those in line, those seen today
    assert _people_read(again) == 0
    assert polled["html"] in page

    check_in(site=site, by=front_desk, name="Ben")
    with CaptureQueriesContext(connection) as changed:
        after = client.get(reverse("queues:board_live")).json()

    assert _people_read(changed) == 2
    assert after["version"] == polled["version"] + 1
    assert "Ben" in after["html"] and "Ben" not in polled["html"]


def test_each_permission_set_gets_its_own_build(client, site, front_desk, clinician):
    check_in(site=site, by=front_desk, name="Ana")
    client.force_login(clinician)
    as_clinician = client.get(reverse("queues:board_live")).json()["html"]
    client.force_login(front_desk)
    as_desk = client.get(reverse("queues:board_live")).json()["html"]

    assert re.search(r'formaction="[^"]*/call/"', as_clinician)
    assert not re.search(r'formaction="[^"]*/call/"', as_desk)


def test_a_build_is_given_out_for_a_short_while_only(
    client, site, front_desk, clinician, monkeypatch
):
    """Its wait labels are worked out when it is built: after BUILT_SECONDS it is built again,
    at the same version, with the labels of the moment."""
    from queues import board

    arrived = timezone.now().replace(microsecond=0)
    check_in(site=site, by=front_desk, name="Ana", now=arrived)
    client.force_login(clinician)
    monkeypatch.setattr(board.timezone, "now", lambda: arrived + timedelta(minutes=4))
    early = client.get(reverse("queues:board_live")).json()
    monkeypatch.setattr(
        board.timezone, "now", lambda: arrived + timedelta(minutes=6, seconds=board.BUILT_SECONDS)
    )
    later = client.get(reverse("queues:board_live")).json()

    assert later["version"] == early["version"]
    assert ">4 min<" in early["html"]
    assert ">6 min<" in later["html"]


def test_a_build_is_shared_across_a_round_twenty_seconds_of_the_clock(
    client, site, front_desk, clinician, monkeypatch
):
    """How old a build is counts, not which 20-second slot of the clock it fell in: a page and
    a poll a moment apart share it when a round 20 seconds falls between them."""
    from queues import board

    check_in(site=site, by=front_desk, name="Ana")
    client.force_login(clinician)
    whole = int(timezone.now().timestamp()) // board.BUILT_SECONDS * board.BUILT_SECONDS
    edge = datetime.fromtimestamp(whole + board.BUILT_SECONDS, tz=UTC)
    monkeypatch.setattr(board.timezone, "now", lambda: edge - timedelta(milliseconds=100))
    client.get(reverse("queues:board"))
    monkeypatch.setattr(board.timezone, "now", lambda: edge + timedelta(milliseconds=100))
    with CaptureQueriesContext(connection) as polled:
        client.get(reverse("queues:board_live"))

    assert _people_read(polled) == 0


def test_a_change_to_the_sites_settings_is_seen_at_once(client, site, front_desk, clinician):
    arrived = timezone.now() - timedelta(minutes=30)
    check_in(site=site, by=front_desk, name="Ana", now=arrived)
    client.force_login(clinician)
    site.wait_warning_minutes = 60
    site.save(update_fields=["wait_warning_minutes"])
    before = client.get(reverse("queues:board_live")).json()["html"]
    site.wait_warning_minutes = 20
    site.save(update_fields=["wait_warning_minutes"])
    after = client.get(reverse("queues:board_live")).json()["html"]

    assert 'class="wait long"' not in before
    assert 'class="wait long"' in after


# --- rows kept from the last build ----------------------------------------------------------------

_OTHER_STATE = {
    "waiting": "stepped_out",
    "stepped_out": "waiting",
    "called": "with_staff",
    "with_staff": "called",
    "done": "left",
    "left": "done",
}


def _changed(row, field: str):
    """`row` with another value for `field`, of the right kind."""
    import dataclasses

    from queues.selectors import PersonRef

    value = getattr(row, field)
    if field == "state":
        other = _OTHER_STATE[value]
    elif field == "person":
        other = PersonRef(pk=value.pk + 1000, name=value.name + "x", pronouns="they/them")
    elif field == "staff_discipline":
        other = "physician" if value != "physician" else "nurse"
    elif isinstance(value, bool):
        other = not value
    elif isinstance(value, int):
        other = value + 1000
    elif isinstance(value, str):
        other = value + " x"
    elif isinstance(value, datetime):
        other = value - timedelta(minutes=7, seconds=3)
    elif value is None and field.endswith("_at"):
        other = at(50)
    else:  # staff_id of someone waiting
        other = 4242
    return dataclasses.replace(row, **{field: other})


def test_a_row_kept_from_the_last_build_is_the_row_written_afresh(
    site, front_desk, clinician, room, service
):
    """Every value a row shows is part of what decides whether it can be kept: change any one
    of them and the board written with the last build's rows is the board written afresh."""
    import dataclasses

    from queues.board import _RowWriter, board_rows
    from queues.selectors import QueueRow

    build_queue(site, front_desk, clinician, room, service)
    snapshot = queue_snapshot(site=site, now=at(30))
    perms = board_permissions(clinician, site)
    board_rows(snapshot, perms)  # the last build
    tables = ("waiting", "in_progress", "finished")
    fields = [f.name for f in dataclasses.fields(QueueRow) if f.name != "site_id"]
    checked = 0
    for table in tables:
        for i, row in enumerate(getattr(snapshot, table)):
            for field in fields:
                rows = list(getattr(snapshot, table))
                rows[i] = _changed(row, field)
                changed = dataclasses.replace(snapshot, **{table: rows})
                kept = board_rows(changed, perms)
                fresh = _RowWriter(changed, perms).rows()
                assert kept == fresh, (table, field)
                board_rows(snapshot, perms)  # back to the last build
                checked += 1
    assert checked == len(fields) * 6  # two rows in each table
    # Minutes later only the waits are written again, and they are right too.
    later = dataclasses.replace(snapshot, now=at(34))
    assert board_rows(later, perms) == _RowWriter(later, perms).rows()
