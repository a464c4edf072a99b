"""Work per change, not per screen: one build per change for all the sockets a process holds,
access that ends closes sockets at once without a query per message, and a socket that cannot
keep up is dropped instead of holding the others back."""

import asyncio
import contextlib
import functools
import itertools
import threading
import time

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.db.backends.utils import CursorWrapper
from django.test import Client
from django.urls import reverse

from clinic import staff
from clinic.asgi import application
from clinic.models import Membership
from queues import consumers
from queues.consumers import CLOSE_FORBIDDEN, CLOSE_SESSION_ENDED, CLOSE_TOO_SLOW
from queues.selectors import queue_version
from tests.factories import check_in
from tests.queues.test_consumers import (
    DISCONNECT_TIMEOUT,
    PAGE,
    QUIET,
    board_path,
    closed_with,
    connected,
    display_path,
    layer,  # noqa: F401  (fixture)
    next_snapshot,
    run,
    socket,
    staff_headers,
)

pytestmark = pytest.mark.django_db(transaction=True)

a_check_in = database_sync_to_async(check_in)


class _Counter:
    """Counts something any thread does while a test runs (`count`, `reset()`)."""

    def __init__(self, monkeypatch):
        self.count = 0
        self.lock = threading.Lock()
        self.install(monkeypatch)

    def install(self, monkeypatch) -> None:
        raise NotImplementedError

    def add(self) -> None:
        with self.lock:
            self.count += 1

    def reset(self) -> None:
        with self.lock:
            self.count = 0


class QueryCounter(_Counter):
    """Every query any thread runs (the consumers query on their own thread)."""

    def install(self, monkeypatch) -> None:
        for name in ("_execute", "_executemany"):
            original = getattr(CursorWrapper, name)

            def counted(cursor, *args, _original=original, **kwargs):
                self.add()
                return _original(cursor, *args, **kwargs)

            monkeypatch.setattr(CursorWrapper, name, counted)


class HopCounter(_Counter):
    """Every time code is handed to a thread (sync_to_async)."""

    def install(self, monkeypatch) -> None:
        from asgiref.sync import SyncToAsync

        original = SyncToAsync.__call__

        async def counted(hop, *args, **kwargs):
            self.add()
            return await original(hop, *args, **kwargs)

        monkeypatch.setattr(SyncToAsync, "__call__", counted)


class HintCounter(_Counter):
    """Every change hint the channel layer hands this process (the sockets' reads included)."""

    def install(self, monkeypatch) -> None:
        from channels.layers import get_channel_layer

        kind = type(get_channel_layer())
        original = kind.receive

        async def counted(channel_layer, channel):
            message = await original(channel_layer, channel)
            if message.get("type") == "queue.changed":
                self.add()
            return message

        monkeypatch.setattr(kind, "receive", counted)


@contextlib.asynccontextmanager
async def sockets(n: int, path: str, headers):
    async with contextlib.AsyncExitStack() as stack:
        opened = [await stack.enter_async_context(socket(path, headers)) for _ in range(n)]
        yield opened


def counted_for_one_change(counter, monkeypatch, site, front_desk, clinician, n: int) -> int:
    """What `counter` counts while one change (a check-in, after another one) reaches `n`
    boards. It counts from before the first socket opens, so that nothing already under way
    escapes it, and is reset once the boards hold the first change."""
    headers = staff_headers(clinician)
    result = {}

    async def scenario():
        counting = counter(monkeypatch)
        async with sockets(n, board_path(site), headers) as boards:
            for ws in boards:
                await connected(ws)
            await a_check_in(site=site, by=front_desk, name=f"Warm Up {n}")
            for ws in boards:
                await next_snapshot(ws)
            counting.reset()
            await a_check_in(site=site, by=front_desk, name=f"Marcus Lee {n}")
            versions = {(await next_snapshot(ws))["version"] for ws in boards}
            result["count"] = counting.count
            assert len(versions) == 1
        monkeypatch.undo()

    run(scenario)
    return result["count"]


@pytest.mark.parametrize(
    ("counter", "per_process"),
    [(QueryCounter, None), (HopCounter, None), (HintCounter, 1)],
    ids=["queries", "thread-hand-offs", "hints-received"],
)
def test_one_change_costs_the_same_for_one_board_as_for_twenty(
    layer,  # noqa: F811
    monkeypatch,
    site,
    front_desk,
    clinician,
    counter,
    per_process,
):
    """The database's queries, the hand-offs to threads and the hints the process receives:
    none of them grows with the number of boards (the process, not each socket, is in the
    site's group, so it receives one hint)."""
    one = counted_for_one_change(counter, monkeypatch, site, front_desk, clinician, 1)
    twenty = counted_for_one_change(counter, monkeypatch, site, front_desk, clinician, 20)
    assert twenty == one
    if per_process is not None:
        assert one == per_process


def test_one_change_costs_the_same_queries_for_one_display_as_for_twenty(
    layer,  # noqa: F811
    monkeypatch,
    site,
    front_desk,
):
    counts = []

    async def scenario(n):
        async with sockets(n, display_path(site.display_token), PAGE) as tvs:
            for tv in tvs:
                await connected(tv)
            await a_check_in(site=site, by=front_desk, name=f"Warm Up {n}")
            for tv in tvs:
                await next_snapshot(tv)
            counter = QueryCounter(monkeypatch)
            await a_check_in(site=site, by=front_desk, name=f"Marcus Lee {n}")
            for tv in tvs:
                await next_snapshot(tv)
            counts.append(counter.count)
            monkeypatch.undo()

    for n in (1, 20):
        run(functools.partial(scenario, n))
    assert counts[0] == counts[1]


def test_a_process_holding_a_sites_boards_and_tvs_receives_one_hint_per_change(
    layer,  # noqa: F811
    monkeypatch,
    site,
    front_desk,
    clinician,
):
    """Boards and TVs share the site's group: one hint per change reaches the process, and the
    process stays in the group while either kind is still open."""
    headers = staff_headers(clinician)

    async def scenario():
        hints = HintCounter(monkeypatch)
        async with socket(display_path(site.display_token), PAGE) as tv:
            await connected(tv)
            async with socket(board_path(site), headers) as board:
                await connected(board)
                hints.reset()
                await a_check_in(site=site, by=front_desk, name="Marcus Lee")
                version = await database_sync_to_async(queue_version)(site.pk)
                assert (await next_snapshot(board))["version"] == version
                assert (await next_snapshot(tv))["version"] == version
                assert hints.count == 1
            # The board has gone; the TV still gets the next change.
            await a_check_in(site=site, by=front_desk, name="Ana Ruiz")
            version = await database_sync_to_async(queue_version)(site.pk)
            assert (await next_snapshot(tv))["version"] == version
        monkeypatch.undo()

    run(scenario)


def test_a_burst_of_changes_ends_with_every_board_at_the_last_version(
    layer,  # noqa: F811
    site,
    front_desk,
    clinician,
):
    headers = staff_headers(clinician)

    async def scenario():
        async with sockets(5, board_path(site), headers) as boards:
            for ws in boards:
                await connected(ws)
            names = [f"Person {i}" for i in range(8)]
            await asyncio.gather(*(a_check_in(site=site, by=front_desk, name=n) for n in names))
            last = await database_sync_to_async(queue_version)(site.pk)
            for ws in boards:
                seen = []
                while not seen or seen[-1]["version"] < last:
                    seen.append(await next_snapshot(ws))
                versions = [s["version"] for s in seen]
                # Never older than what came before; may skip versions; ends at the last one.
                assert versions == sorted(set(versions))
                assert all(n in seen[-1]["html"] for n in names)

    run(scenario)


def test_a_rush_of_changes_shares_builds_and_ends_at_the_last_version(
    layer,  # noqa: F811
    monkeypatch,
    settings,
    site,
    front_desk,
    clinician,
):
    # Each build is made to take at least 50 ms and is followed by a pause 49 times as long
    # (at least 2.45 s), so that the rush below falls within the pause however slow the machine.
    settings.LIVE_BUILD_SHARE = 0.02
    builds = []
    build = consumers._build

    def counted(*args):
        builds.append(args)
        time.sleep(0.05)
        return build(*args)

    headers = staff_headers(clinician)

    async def reach(boards, last):
        for ws in boards:
            version = -1
            while version < last:
                version = (await next_snapshot(ws))["version"]
            assert version == last

    async def scenario():
        async with sockets(3, board_path(site), headers) as boards:
            for ws in boards:
                await connected(ws)
            monkeypatch.setattr(consumers, "_build", counted)
            # A change after a quiet spell is built at once, once for all three boards.
            await a_check_in(site=site, by=front_desk, name="Person 0")
            await reach(boards, await database_sync_to_async(queue_version)(site.pk))
            assert len(builds) == 1
            for i in range(1, 10):  # a rush: nine check-ins, well within the pause
                await a_check_in(site=site, by=front_desk, name=f"Person {i}")
            await reach(boards, await database_sync_to_async(queue_version)(site.pk))

    run(scenario)
    # The nine changes of the rush wait for the pause and share one build (two at most).
    assert 2 <= len(builds) <= 3


# --- access ending closes sockets at once -------------------------------------------------------


def test_locking_the_screen_closes_that_sessions_board_at_once(layer, site, clinician):  # noqa: F811
    client = Client()
    client.force_login(clinician)
    cookie = client.cookies["sessionid"].value
    headers = [*PAGE, (b"cookie", f"sessionid={cookie}".encode())]

    async def scenario():
        async with socket(board_path(site), headers) as ws:
            await connected(ws)
            response = await database_sync_to_async(client.post)(reverse("session_lock"))
            assert response.status_code == 204
            assert await closed_with(ws) == CLOSE_SESSION_ENDED

    run(scenario)


def test_a_password_set_by_a_director_closes_the_accounts_boards_at_once(
    layer,  # noqa: F811
    site,
    clinician,
    director,
):
    headers = staff_headers(clinician)

    async def scenario():
        async with socket(board_path(site), headers) as ws:
            await connected(ws)
            await database_sync_to_async(staff.staff_set_password)(
                by=director, account=clinician, password="a brand new passphrase 9"
            )
            assert await closed_with(ws) == CLOSE_SESSION_ENDED

    run(scenario)


@pytest.mark.parametrize("how", ["membership", "role"])
def test_taking_someone_off_the_site_closes_their_boards_at_once(
    layer,  # noqa: F811
    site,
    clinician,
    front_desk,
    director,
    how,
):
    headers = staff_headers(clinician)
    colleague = staff_headers(front_desk)
    membership = Membership.objects.get(user=clinician, site=site)

    def take_away():
        if how == "membership":
            staff.membership_remove(by=director, membership=membership)
        else:
            staff.membership_set_roles(by=director, membership=membership, roles=[])

    async def scenario():
        async with (
            socket(board_path(site), headers) as ws,
            socket(board_path(site), colleague) as other,
        ):
            await connected(ws)
            await connected(other)
            await database_sync_to_async(take_away)()
            assert await closed_with(ws) in (CLOSE_SESSION_ENDED, CLOSE_FORBIDDEN)
            assert await other.receive_nothing(timeout=QUIET)

    run(scenario)


# --- a socket that cannot keep up ---------------------------------------------------------------


def stalling(app, stalled: asyncio.Event):
    """The application behind a connection that stops taking frames once `stalled` is set
    (a phone in a lift): its sends never complete."""

    async def wrapped(scope, receive, send):
        async def slow_send(message):
            if message["type"] == "websocket.send" and stalled.is_set():
                await asyncio.Event().wait()
            await send(message)

        return await app(scope, receive, slow_send)

    return wrapped


def test_a_board_that_cannot_keep_up_is_dropped_and_the_others_keep_getting_changes(
    layer,  # noqa: F811
    settings,
    site,
    front_desk,
    clinician,
):
    settings.LIVE_SEND_BACKLOG = 2
    headers = staff_headers(clinician)
    counter = itertools.count()

    async def scenario():
        stalled = asyncio.Event()
        slow = WebsocketCommunicator(stalling(application, stalled), board_path(site), headers)
        try:
            async with socket(board_path(site), headers) as fast:
                await connected(slow)
                await connected(fast)
                stalled.set()
                for _ in range(6):
                    await a_check_in(site=site, by=front_desk, name=f"Person {next(counter)}")
                    await next_snapshot(fast)  # one at a time: every change reaches it
                assert await closed_with(slow) == CLOSE_TOO_SLOW
                await a_check_in(site=site, by=front_desk, name="Marcus Lee")
                assert "Marcus Lee" in (await next_snapshot(fast))["html"]
        finally:
            await slow.disconnect(timeout=DISCONNECT_TIMEOUT)

    run(scenario)
