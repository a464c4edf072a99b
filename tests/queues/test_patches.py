"""Send what changed: a board that holds version V gets a patch to the next version (the rows
added or changed, each table's order, the headings or sections that changed), and a full
snapshot only on connect, after a sync from another version, or when it missed one.

A screen is rebuilt from the frames as static/js/live.js rebuilds it (tests/queues/screens.py),
and after every step of a day's work it must show exactly what a fresh snapshot shows."""

import json
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone

from queues import services
from queues.board import board_live, board_live_html, board_patch, board_permissions
from queues.models import Arrival
from queues.selectors import queue_snapshot
from tests.factories import check_in
from tests.queues.screens import Screen, shown
from tests.queues.test_consumers import (
    PAGE,
    QUIET,
    TIMEOUT,
    board_path,
    connected,
    display_path,
    layer,  # noqa: F401  (fixture)
    run,
    socket,
    staff_headers,
)

pytestmark = pytest.mark.django_db(transaction=True)

a_check_in = database_sync_to_async(check_in)


async def next_frame(ws) -> dict:
    return await ws.receive_json_from(timeout=TIMEOUT)


def fresh_board(site, user) -> str:
    """What a board that has just connected (or reloaded) shows `user` now."""
    return board_live_html(queue_snapshot(site=site), board_permissions(user, site))


a_fresh_board = database_sync_to_async(fresh_board)


def test_the_parts_put_back_together_are_the_board_s_fragment(site, front_desk, clinician):
    for name in ("Marcus Lee", "Jo Banks"):
        check_in(site=site, by=front_desk, name=name)
    services.arrival_call_next(site=site, by=clinician)
    snapshot = queue_snapshot(site=site)
    perms = board_permissions(clinician, site)
    assert board_live(snapshot, perms).html == board_live_html(snapshot, perms)


def test_rows_whose_wait_label_alone_changed_are_not_sent(site, front_desk, clinician):
    people = [check_in(site=site, by=front_desk, name=f"Person {i}") for i in range(5)]
    perms = board_permissions(clinician, site)
    now = timezone.now()
    before = board_live(queue_snapshot(site=site, now=now), perms)
    an_hour_on = board_live(queue_snapshot(site=site, now=now + timedelta(minutes=61)), perms)
    assert an_hour_on.html != before.html  # "1 h 01" and the long-wait mark
    assert board_patch(before, an_hour_on) == {}

    late = check_in(site=site, by=front_desk, name="Marcus Lee")
    later = board_live(queue_snapshot(site=site, now=now + timedelta(minutes=62)), perms)
    patch = board_patch(before, later)
    assert patch["tables"] == {
        "waiting": {
            "order": [p.pk for p in [*people, late]],
            "rows": {late.pk: dict(later.rows.waiting)[late.pk]},
        }
    }


def test_a_check_in_reaches_an_open_board_as_a_patch_with_only_the_new_row(
    layer,  # noqa: F811
    site,
    front_desk,
    clinician,
):
    first = check_in(site=site, by=front_desk, name="Marcus Lee")
    headers = staff_headers(clinician)

    async def scenario():
        async with socket(board_path(site), headers) as ws:
            held = (await connected(ws))["version"]
            second = await a_check_in(site=site, by=front_desk, name="Jo Banks")
            patch = await next_frame(ws)
            assert patch["type"] == "patch"
            assert patch["from"] == held and patch["version"] > held
            assert "html" not in patch and "Marcus Lee" not in json.dumps(patch)
            assert patch["tables"] == {
                "waiting": {
                    "order": [first.pk, second.pk],
                    "rows": {str(second.pk): patch_row(patch, second.pk)},
                }
            }
            assert "Jo Banks" in patch_row(patch, second.pk)
            assert (
                set(patch["headings"]) == {"waiting"}
                and "2 waiting" in patch["headings"]["waiting"]
            )
            assert "sections" not in patch

    run(scenario)


def patch_row(patch, pk) -> str:
    return patch["tables"]["waiting"]["rows"][str(pk)]


def test_a_call_moves_the_row_from_waiting_to_called_and_only_that_row_is_sent(
    layer,  # noqa: F811
    site,
    front_desk,
    clinician,
    room,
):
    marcus = check_in(site=site, by=front_desk, name="Marcus Lee")
    jo = check_in(site=site, by=front_desk, name="Jo Banks")
    headers = staff_headers(clinician)

    async def scenario():
        async with socket(board_path(site), headers) as ws:
            screen = Screen()
            screen.take(await connected(ws))
            await database_sync_to_async(services.arrival_call_next)(
                site=site, by=clinician, room=room
            )
            patch = await next_frame(ws)
            assert patch["type"] == "patch"
            assert patch["tables"]["waiting"] == {"order": [jo.pk], "rows": {}}
            moved = patch["tables"]["in_progress"]
            assert moved["order"] == [marcus.pk] and list(moved["rows"]) == [str(marcus.pk)]
            assert "Room 2" in moved["rows"][str(marcus.pk)]
            # "Called and with staff" had no table: its section comes whole, without rows.
            assert set(patch["sections"]) == {"in_progress"}
            assert "Marcus Lee" not in patch["sections"]["in_progress"]
            assert screen.take(patch)
            assert screen.html == shown(await a_fresh_board(site, clinician))

    run(scenario)


def test_a_board_that_missed_a_version_gets_a_snapshot_after_its_sync(
    layer,  # noqa: F811
    site,
    front_desk,
    clinician,
):
    headers = staff_headers(clinician)

    async def scenario():
        async with socket(board_path(site), headers) as ws:
            screen = Screen()
            screen.take(await connected(ws))
            await a_check_in(site=site, by=front_desk, name="Marcus Lee")
            await next_frame(ws)  # lost on the way
            await a_check_in(site=site, by=front_desk, name="Jo Banks")
            patch = await next_frame(ws)
            assert patch["type"] == "patch"
            assert not screen.take(patch) and screen.wants_sync
            await ws.send_json_to({"type": "sync", "version": screen.version})
            snapshot = await next_frame(ws)
            assert snapshot["type"] == "snapshot" and snapshot["version"] == patch["version"]
            assert screen.take(snapshot)
            assert screen.html == shown(await a_fresh_board(site, clinician))
            assert await ws.receive_nothing(timeout=QUIET)

    run(scenario)


def test_a_board_reconnecting_gets_a_snapshot_then_patches(
    layer,  # noqa: F811
    site,
    front_desk,
    clinician,
):
    check_in(site=site, by=front_desk, name="Marcus Lee")
    headers = staff_headers(clinician)

    async def scenario():
        async with socket(board_path(site), headers) as ws:
            await connected(ws)
            await a_check_in(site=site, by=front_desk, name="Jo Banks")
            assert (await next_frame(ws))["type"] == "patch"
        async with socket(board_path(site), headers) as again:
            snapshot = await connected(again)
            assert "Jo Banks" in snapshot["html"]
            await a_check_in(site=site, by=front_desk, name="Sam Rivera")
            patch = await next_frame(again)
            assert patch["type"] == "patch" and patch["from"] == snapshot["version"]

    run(scenario)


# --- a day's work, step by step -----------------------------------------------------------------


def day_of_work(site, front_desk, clinician, room):
    """Each step changes the queue once; the names are the people it concerns."""
    people = {}

    def arrival(name):
        return Arrival.objects.get(pk=people[name].pk)

    def arrive(name, **kwargs):
        people[name] = check_in(site=site, by=front_desk, name=name, **kwargs)

    def act(service, name, **kwargs):
        return lambda: service(arrival=arrival(name), by=clinician, revision=None, **kwargs)

    return [
        lambda: arrive("Marcus Lee"),
        lambda: arrive("Jo Banks"),
        lambda: arrive("Sam Rivera", urgent=True, urgent_reason="Chest pain"),
        lambda: services.arrival_call_next(site=site, by=clinician, room=room),  # Sam
        act(services.arrival_start, "Sam Rivera"),
        act(services.arrival_step_out, "Marcus Lee"),
        act(services.arrival_come_back, "Marcus Lee"),
        act(services.arrival_finish, "Sam Rivera"),
        act(services.arrival_undo, "Sam Rivera"),
        act(services.arrival_finish, "Sam Rivera"),
        act(services.arrival_mark_left, "Jo Banks"),
        act(services.arrival_call, "Marcus Lee", room=room),
        act(services.arrival_mark_left, "Marcus Lee"),
        act(services.arrival_undo, "Marcus Lee"),
        act(services.arrival_start, "Marcus Lee"),
        act(services.arrival_finish, "Marcus Lee"),
    ]


def test_every_patch_in_turn_leaves_each_board_as_a_fresh_snapshot_would(
    layer,  # noqa: F811
    site,
    front_desk,
    clinician,
    room,
):
    steps = day_of_work(site, front_desk, clinician, room)
    boards = {"desk": front_desk, "team": clinician}
    desk_headers, team_headers = staff_headers(front_desk), staff_headers(clinician)

    async def scenario():
        async with (
            socket(board_path(site), desk_headers) as desk,
            socket(board_path(site), team_headers) as team,
        ):
            sockets = {"desk": desk, "team": team}
            screens = {name: Screen() for name in boards}
            for name, ws in sockets.items():
                screens[name].take(await connected(ws))
            for step in steps:
                await database_sync_to_async(step)()
                for name, ws in sockets.items():
                    frame = await next_frame(ws)
                    assert frame["type"] == "patch", frame
                    assert screens[name].take(frame)
                    assert screens[name].html == shown(await a_fresh_board(site, boards[name]))

    run(scenario)


# --- size at real volume ------------------------------------------------------------------------


def test_with_300_waiting_one_check_in_sends_a_few_kilobytes_not_the_whole_board(
    layer,  # noqa: F811
    site,
    front_desk,
    clinician,
):
    for i in range(300):
        check_in(site=site, by=front_desk, name=f"Person Number {i}")
    headers = staff_headers(clinician)

    async def scenario():
        async with socket(board_path(site), headers) as ws:
            accepted, _ = await ws.connect(timeout=TIMEOUT)
            assert accepted
            snapshot = await ws.receive_from(timeout=TIMEOUT)
            await a_check_in(site=site, by=front_desk, name="Marcus Lee")
            patch = await ws.receive_from(timeout=TIMEOUT)
            assert json.loads(patch)["type"] == "patch"
            assert len(snapshot.encode()) > 100_000
            assert len(patch.encode()) < 5_000
            screen = Screen()
            screen.take(json.loads(snapshot))
            assert screen.take(json.loads(patch))
            assert screen.html == shown(await a_fresh_board(site, clinician))

    run(scenario)


def test_the_waiting_room_display_keeps_getting_whole_snapshots(layer, site, front_desk):  # noqa: F811
    async def scenario():
        async with socket(display_path(site.display_token), PAGE) as tv:
            first = await connected(tv)
            await a_check_in(site=site, by=front_desk, name="Marcus Lee")
            frame = await next_frame(tv)
            assert frame["type"] == "snapshot" and frame["version"] > first["version"]
            assert "Marcus" not in frame["html"]

    run(scenario)
