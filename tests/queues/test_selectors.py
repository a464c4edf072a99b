"""Queue reads: the staff snapshot, the waiting-room display, people search, last action."""

import dataclasses
import json
from datetime import UTC, datetime, timedelta

from clinic import roles
from clinic.models import Discipline
from queues import services
from queues.models import EventKind, State
from queues.selectors import (
    DisplayCall,
    DisplaySnapshot,
    display_snapshot,
    last_action,
    people_search,
    queue_snapshot,
    queue_version,
)
from tests.factories import PersonFactory, RoomFactory, check_in, grant

T0 = datetime(2025, 1, 15, 15, 0, tzinfo=UTC)  # 09:00 in America/Chicago


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def names(arrivals) -> list[str]:
    return [a.person.name for a in arrivals]


# --- staff snapshot -----------------------------------------------------------------------------


def test_queue_snapshot_carries_the_current_queue_version(site, front_desk, clinician):
    assert queue_snapshot(site=site).version == 0

    check_in(site=site, by=front_desk, name="Ana")
    check_in(site=site, by=front_desk, name="Ben")
    services.arrival_call_next(site=site, by=clinician)

    snapshot = queue_snapshot(site=site)
    assert snapshot.version == 3 == queue_version(site.pk)


def test_queue_snapshot_lists_the_line_in_order_and_who_is_with_staff(
    site, room, front_desk, clinician, second_clinician
):
    ana = check_in(site=site, by=front_desk, name="Ana", now=at(0))
    check_in(site=site, by=front_desk, name="Ben", now=at(1))
    cy = check_in(site=site, by=front_desk, name="Cy", now=at(2))
    check_in(site=site, by=front_desk, name="Dee", now=at(3), urgent=True, urgent_reason="bleeding")
    eli = check_in(site=site, by=front_desk, name="Eli", now=at(4))
    services.arrival_step_out(arrival=ana, by=front_desk, revision=ana.revision, now=at(5))
    services.arrival_call(arrival=eli, by=clinician, revision=eli.revision, room=room, now=at(6))
    services.arrival_start(arrival=cy, by=second_clinician, revision=cy.revision, now=at(7))

    snapshot = queue_snapshot(site=site, now=at(10))

    assert names(snapshot.waiting) == ["Dee", "Ana", "Ben"]
    assert [a.state for a in snapshot.waiting] == [State.WAITING, State.STEPPED_OUT, State.WAITING]
    assert snapshot.waiting_count == 2
    assert names(snapshot.in_progress) == ["Eli", "Cy"]
    assert [(a.staff_id, a.state) for a in snapshot.in_progress] == [
        (clinician.pk, State.CALLED),
        (second_clinician.pk, State.WITH_STAFF),
    ]
    # Each row carries its staff member's discipline at this site.
    assert [a.staff_discipline for a in snapshot.in_progress] == [
        clinician.memberships.get(site=site).discipline,
        second_clinician.memberships.get(site=site).discipline,
    ]
    assert snapshot.in_progress[0].staff_discipline == Discipline.NURSE_PRACTITIONER
    assert snapshot.finished == []


def test_each_row_gives_the_staff_members_discipline_at_that_site(
    site, other_site, front_desk, clinician
):
    """Someone who is a nurse practitioner here and a physician elsewhere is a nurse
    practitioner on this site's board, and nobody else's discipline is asked for."""
    grant(clinician, other_site, roles.CLINICIAN, discipline=Discipline.PHYSICIAN)
    seen = check_in(site=site, by=front_desk, name="Ana")
    services.arrival_start(arrival=seen, by=clinician, revision=seen.revision)
    check_in(site=site, by=front_desk, name="Ben")

    snapshot = queue_snapshot(site=site)

    assert [(a.person.name, a.staff_discipline) for a in snapshot.in_progress] == [
        ("Ana", Discipline.NURSE_PRACTITIONER)
    ]
    assert [(a.person.name, a.staff_discipline) for a in snapshot.waiting] == [("Ben", "")]


def test_queue_snapshot_shows_only_todays_finished_entries(site, front_desk, clinician):
    yesterday = datetime(2025, 1, 14, 18, 0, tzinfo=UTC)
    old = check_in(site=site, by=front_desk, name="Yesterday", now=yesterday)
    services.arrival_mark_left(arrival=old, by=front_desk, revision=old.revision, now=yesterday)
    left = check_in(site=site, by=front_desk, name="Left today", now=at(0))
    services.arrival_mark_left(arrival=left, by=front_desk, revision=left.revision, now=at(5))
    done = check_in(site=site, by=front_desk, name="Seen today", now=at(1))
    services.arrival_start(arrival=done, by=clinician, revision=done.revision, now=at(2))
    done.refresh_from_db()
    services.arrival_finish(arrival=done, by=clinician, revision=done.revision, now=at(20))

    snapshot = queue_snapshot(site=site, now=at(30))

    assert names(snapshot.finished) == ["Seen today", "Left today"]
    assert snapshot.waiting == [] and snapshot.in_progress == []


def test_queue_snapshot_never_includes_another_sites_arrivals(
    site, other_site, front_desk, other_site_clinician
):
    check_in(site=site, by=front_desk, name="Here")
    for name in ("There waiting", "There called", "There done"):
        check_in(site=other_site, by=other_site_clinician, name=name)
    services.arrival_call_next(site=other_site, by=other_site_clinician)
    third = services.arrival_call_next(site=other_site, by=other_site_clinician)
    services.arrival_start(arrival=third, by=other_site_clinician, revision=third.revision)
    third.refresh_from_db()
    services.arrival_finish(arrival=third, by=other_site_clinician, revision=third.revision)

    snapshot = queue_snapshot(site=site)

    everyone = snapshot.waiting + snapshot.in_progress + snapshot.finished
    assert names(everyone) == ["Here"]
    assert {a.site_id for a in everyone} == {site.pk}
    assert snapshot.version == 1


# --- waiting-room display -----------------------------------------------------------------------


def test_display_snapshot_holds_only_ticket_codes_and_room_names():
    assert [f.name for f in dataclasses.fields(DisplaySnapshot)] == [
        "version",
        "called",
        "waiting",
        "chime",  # the site's setting, nothing about a person
    ]
    assert DisplaySnapshot.__dataclass_fields__["chime"].type in (bool, "bool")
    # When the call was made: what the screen itself shows as it happens (and chimes by).
    assert [f.name for f in dataclasses.fields(DisplayCall)] == ["ticket", "room", "called_at"]


def test_the_display_never_shows_a_name_a_reason_or_a_service(
    site, service, room, front_desk, clinician
):
    check_in(
        site=site,
        by=front_desk,
        name="Marcus Avery",
        service=service,
        urgent=True,
        urgent_reason="chest pain",
        what_helps="has a dog called Pepper",
        pronouns="he/him",
    )
    check_in(site=site, by=front_desk, name="Juniper Oakes", service=service)
    check_in(site=site, by=front_desk, name="Rosalind Vega")
    services.arrival_call_next(site=site, by=clinician, room=room)

    snapshot = display_snapshot(site=site)

    assert [(c.ticket, c.room) for c in snapshot.called] == [("K-1", "Room 2")]
    assert snapshot.waiting == ("K-2", "K-3")
    shown = json.dumps(dataclasses.asdict(snapshot)) + repr(snapshot)
    for private in (
        "Marcus",
        "Avery",
        "Juniper",
        "Rosalind",
        "chest pain",
        "Pepper",
        "he/him",
        "Wound care",
        "Alex",
        clinician.username,
    ):
        assert private not in shown


def test_the_display_lists_waiting_codes_in_ticket_order_so_urgency_is_not_revealed(
    site, front_desk
):
    for minute in range(3):
        check_in(site=site, by=front_desk, now=at(minute))
    check_in(site=site, by=front_desk, now=at(3), urgent=True, urgent_reason="bleeding")

    assert [a.ticket for a in queue_snapshot(site=site).waiting] == ["K-4", "K-1", "K-2", "K-3"]
    assert display_snapshot(site=site).waiting == ("K-1", "K-2", "K-3", "K-4")


def test_the_display_orders_codes_by_number_not_by_spelling(site, front_desk):
    for minute in range(12):
        check_in(site=site, by=front_desk, now=at(minute))

    assert display_snapshot(site=site).waiting == tuple(f"K-{n}" for n in range(1, 13))


def test_the_display_shows_who_is_called_most_recent_first_and_where_to_go(
    site, room, front_desk, clinician, second_clinician
):
    for minute in range(4):
        check_in(site=site, by=front_desk, now=at(minute))
    services.arrival_call_next(site=site, by=clinician, room=room, now=at(10))
    services.arrival_call_next(site=site, by=second_clinician, now=at(11))
    started = services.arrival_call_next(site=site, by=clinician, room=room, now=at(12))
    services.arrival_start(arrival=started, by=clinician, revision=started.revision, now=at(13))

    snapshot = display_snapshot(site=site)

    assert snapshot.called == (
        DisplayCall(ticket="K-2", room="", called_at=int(at(11).timestamp() * 1000)),
        DisplayCall(ticket="K-1", room="Room 2", called_at=int(at(10).timestamp() * 1000)),
    )
    assert snapshot.waiting == ("K-4",)
    assert snapshot.version == queue_version(site.pk)


def test_the_display_never_shows_another_sites_codes(
    site, other_site, front_desk, other_site_clinician
):
    check_in(site=site, by=front_desk)
    check_in(site=other_site, by=other_site_clinician)
    check_in(site=other_site, by=other_site_clinician)
    services.arrival_call_next(
        site=other_site, by=other_site_clinician, room=RoomFactory(site=other_site)
    )

    snapshot = display_snapshot(site=site)

    assert snapshot.waiting == ("K-1",)
    assert snapshot.called == ()


# --- people search ------------------------------------------------------------------------------


def test_people_search_finds_people_at_this_site_only(site, other_site):
    PersonFactory(site=site, name="Marcus Avery")
    PersonFactory(site=other_site, name="Marcus Bell")

    assert [p.name for p in people_search(site=site, query="marcus")] == ["Marcus Avery"]


def test_people_search_matches_every_word_in_any_order(site):
    for name in ("Lee Ann Smith", "Ann Jones", "Lee Ward", "Annalee Ross"):
        PersonFactory(site=site, name=name)

    found = [p.name for p in people_search(site=site, query="  ann   LEE ")]

    assert sorted(found) == ["Annalee Ross", "Lee Ann Smith"]


def test_people_search_with_an_empty_query_finds_nobody(site):
    PersonFactory(site=site, name="Marcus")

    assert people_search(site=site, query="   ") == []
    assert people_search(site=site, query="") == []


def test_people_search_puts_whoever_was_here_last_first(site, front_desk):
    never = PersonFactory(site=site, name="Sam Never")
    long_ago = PersonFactory(site=site, name="Sam Long")
    recent = PersonFactory(site=site, name="Sam Recent")
    for person, when in ((recent, at(-60 * 24 * 400)), (long_ago, at(-60 * 24 * 500))):
        arrival = check_in(site=site, by=front_desk, person=person, now=when)
        services.arrival_mark_left(arrival=arrival, by=front_desk, revision=arrival.revision)
    check_in(site=site, by=front_desk, person=recent, now=at(0))

    found = people_search(site=site, query="sam")

    assert [p.name for p in found] == ["Sam Recent", "Sam Long", "Sam Never"]
    assert [p.last_here for p in found] == [at(0), at(-60 * 24 * 500), None]
    assert never in found


def test_people_search_returns_a_short_list(site):
    for n in range(30):
        PersonFactory(site=site, name=f"Alex {n}")

    assert len(people_search(site=site, query="alex")) == 8


# --- last action --------------------------------------------------------------------------------


def test_last_action_is_nothing_right_after_check_in(site, front_desk):
    arrival = check_in(site=site, by=front_desk, name="Ana")

    assert last_action(arrival) is None


def test_last_action_is_the_latest_action_not_yet_undone(site, front_desk, clinician):
    arrival = check_in(site=site, by=front_desk, name="Ana")
    services.arrival_call(arrival=arrival, by=clinician, revision=None)
    services.arrival_start(arrival=arrival, by=clinician, revision=None)

    assert last_action(arrival).kind == EventKind.STARTED

    services.arrival_undo(arrival=arrival, by=clinician, revision=None)
    assert last_action(arrival).kind == EventKind.CALLED

    services.arrival_undo(arrival=arrival, by=clinician, revision=None)
    assert last_action(arrival) is None


def test_someone_who_stepped_out_keeps_their_code_on_the_display(site, front_desk):
    first = check_in(site=site, by=front_desk, now=at(0))
    check_in(site=site, by=front_desk, now=at(1))
    services.arrival_step_out(arrival=first, by=front_desk, revision=first.revision, now=at(2))

    assert display_snapshot(site=site).waiting == ("K-1", "K-2")


def test_people_search_says_when_someone_is_here_now(site, front_desk):
    here = check_in(site=site, by=front_desk, name="Marcus Here", now=at(0))
    gone = check_in(site=site, by=front_desk, name="Marcus Gone", now=at(1))
    services.arrival_mark_left(arrival=gone, by=front_desk, revision=gone.revision, now=at(2))

    found = {p.name: p.here_now for p in people_search(site=site, query="marcus")}

    assert found == {"Marcus Here": here.ticket, "Marcus Gone": None}


def test_the_snapshots_queries_are_compiled_once_per_site_and_day(
    site, other_site, front_desk, monkeypatch
):
    """The rows' two queries are compiled once (per site, and day for those seen today); a
    later snapshot only runs them, and still reads what changed meanwhile."""
    from collections import OrderedDict

    from django.db.models.sql.compiler import SQLCompiler

    from queues import selectors

    # Compiled SQL is kept per process: an earlier test may have given a site these ids.
    monkeypatch.setattr(selectors, "_compiled", OrderedDict())
    check_in(site=site, by=front_desk, name="Ana")
    queue_snapshot(site=site)
    compiled = []
    original = SQLCompiler.as_sql
    monkeypatch.setattr(
        SQLCompiler, "as_sql", lambda self, *a, **k: compiled.append(1) or original(self, *a, **k)
    )
    check_in(site=site, by=front_desk, name="Ben")
    compiled.clear()

    snapshot = queue_snapshot(site=site)

    assert len(compiled) == 1  # the version only
    assert names(snapshot.waiting) == ["Ana", "Ben"]
    compiled.clear()
    queue_snapshot(site=other_site)
    assert len(compiled) == 5  # another site: its own (each query with its subquery)
