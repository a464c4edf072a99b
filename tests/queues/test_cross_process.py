"""Live updates across processes, through Redis, and what happens when Redis is not there.

A real server (`python -m clinic.serve`) runs in another process on the test database and the
test's Redis; a real websocket client connects to it as a signed-in staff member (or as the
waiting-room TV). The change is made through the services in *this* process, whose channel
layer points at the same Redis, as a second web worker would.
"""

import contextlib
import json
import logging
import socket
import threading
import time
import uuid

import pytest
import redis
from channels.layers import channel_layers, get_channel_layer
from channels_redis.core import RedisChannelLayer
from django.contrib.sessions.models import Session
from django.db import connection
from django.urls import reverse
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from clinic.settings import redis_channel_layer
from queues import realtime, services
from queues.models import Arrival, State
from tests.conftest import session_cookie_for, start_asgi_server, stop_asgi_server
from tests.factories import check_in
from tests.queues.test_consumers import screen_takes

TIMEOUT = 10  # seconds; generous, only ever reached when something is broken
QUIET = 1  # how long "nothing arrives" is watched for
NO_REDIS = "redis://127.0.0.1:1/0"  # nothing listens on port 1


# --- plumbing -----------------------------------------------------------------------------------


def flush_redis(url: str) -> None:
    """Empty the test's own Redis database (never pass a URL that others use)."""
    with redis.Redis.from_url(url) as client:
        client.flushdb()


def use_channel_layer(settings, url: str) -> None:
    settings.CHANNEL_LAYERS = {"default": redis_channel_layer(url)}
    channel_layers.backends.clear()  # never reuse a layer (or its connections) from another test
    assert isinstance(get_channel_layer(), RedisChannelLayer)


@pytest.fixture
def shared_redis(settings):
    """This process's channel layer on the test Redis, starting from an empty database."""
    flush_redis(settings.TEST_REDIS_URL)
    use_channel_layer(settings, settings.TEST_REDIS_URL)
    yield settings.TEST_REDIS_URL
    channel_layers.backends.clear()


@pytest.fixture
def other_process(transactional_db, tmp_path, shared_redis):
    """A second ASGI server process on the same database and the same Redis."""
    server = start_asgi_server(tmp_path, redis_url=shared_redis)
    yield server
    stop_asgi_server(server)


def open_socket(server, path: str, user=None):
    headers = {}
    if user is not None:
        cookie = session_cookie_for(user)
        headers["Cookie"] = f"{cookie['name']}={cookie['value']}"
    return connect(
        server.ws_url + path,
        origin=server.url,  # the page's own origin, port included
        additional_headers=headers,
        open_timeout=TIMEOUT,
        close_timeout=TIMEOUT,
    )


def next_snapshot(ws) -> dict:
    """The next frame; a patch comes with "html", the whole board as the page shows it then."""
    return screen_takes(ws, json.loads(ws.recv(timeout=TIMEOUT)))


def nothing_arrives(ws) -> bool:
    with contextlib.suppress(TimeoutError):
        ws.recv(timeout=QUIET)
        return False
    return True


# --- through Redis, across processes ------------------------------------------------------------


@pytest.mark.redis
def test_a_check_in_here_reaches_a_board_served_by_another_process(
    other_process, site, front_desk, clinician, room
):
    with open_socket(other_process, f"/ws/queue/{site.slug}/", clinician) as board:
        first = next_snapshot(board)
        assert "Marcus Lee" not in first["html"]

        check_in(site=site, by=front_desk, name="Marcus Lee")
        after_check_in = next_snapshot(board)
        assert after_check_in["version"] > first["version"]
        assert "Marcus Lee" in after_check_in["html"]

        services.arrival_call_next(site=site, by=clinician, room=room)
        after_call = next_snapshot(board)
        assert after_call["version"] > after_check_in["version"]
        assert "Room 2" in after_call["html"]


@pytest.mark.redis
def test_a_display_served_by_another_process_gets_the_code_not_the_name(
    other_process, site, front_desk, clinician, room
):
    with open_socket(other_process, f"/ws/display/{site.display_token}/") as tv:
        first = next_snapshot(tv)

        check_in(site=site, by=front_desk, name="Marcus Lee", urgent=True, urgent_reason="Fever")
        after_check_in = next_snapshot(tv)
        assert after_check_in["version"] > first["version"]
        assert "K-1" in after_check_in["html"]

        services.arrival_call_next(site=site, by=clinician, room=room)
        after_call = next_snapshot(tv)
        assert "K-1" in after_call["html"]
        assert "Room 2" in after_call["html"]
        for html in (after_check_in["html"], after_call["html"]):
            assert "Marcus Lee" not in html
            assert "Fever" not in html


@pytest.mark.redis
def test_a_quiet_board_on_redis_stays_connected_and_still_gets_changes(
    other_process, site, front_desk, clinician
):
    # channels-redis waits for messages in blocking reads of a few seconds; an idle socket must
    # outlive several of them (redis-py 8's default read timeout used to cut them off).
    with open_socket(other_process, f"/ws/queue/{site.slug}/", clinician) as board:
        next_snapshot(board)
        time.sleep(RedisChannelLayer.brpop_timeout + 3)
        check_in(site=site, by=front_desk, name="Marcus Lee")
        assert "Marcus Lee" in next_snapshot(board)["html"]


@pytest.mark.redis
def test_screens_catch_up_when_redis_comes_back_empty(
    other_process, shared_redis, site, front_desk, clinician
):
    with (
        open_socket(other_process, f"/ws/queue/{site.slug}/", clinician) as board,
        open_socket(other_process, f"/ws/display/{site.display_token}/") as tv,
    ):
        board_version = next_snapshot(board)["version"]
        tv_version = next_snapshot(tv)["version"]

        # A Redis restart without persistence forgets which sockets are in which group.
        flush_redis(shared_redis)
        check_in(site=site, by=front_desk, name="Marcus Lee")
        assert nothing_arrives(board)  # the hint was lost: nobody is in the group any more
        assert nothing_arrives(tv)

        # Each screen syncs on a timer; the sync both catches up and re-joins the group.
        board.send(json.dumps({"type": "sync", "version": board_version}))
        caught_up = next_snapshot(board)
        assert caught_up["version"] > board_version
        assert "Marcus Lee" in caught_up["html"]
        tv.send(json.dumps({"type": "sync", "version": tv_version}))
        assert "K-1" in next_snapshot(tv)["html"]

        check_in(site=site, by=front_desk, name="Jo Banks")
        later = next_snapshot(board)
        assert later["version"] > caught_up["version"]
        assert "Jo Banks" in later["html"]
        assert "K-2" in next_snapshot(tv)["html"]


@pytest.mark.redis
def test_a_signed_out_user_on_another_process_is_closed_at_the_next_change(
    other_process, site, front_desk, clinician
):
    with open_socket(other_process, f"/ws/queue/{site.slug}/", clinician) as board:
        next_snapshot(board)
        Session.objects.all().delete()
        check_in(site=site, by=front_desk, name="Marcus Lee")
        with pytest.raises(ConnectionClosed) as closed:
            board.recv(timeout=TIMEOUT)
        assert closed.value.rcvd.code == 4401  # the session ended: the page locks


# --- without Redis ------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_check_in_and_call_are_saved_when_redis_is_down(
    settings, caplog, site, front_desk, clinician, room
):
    use_channel_layer(settings, NO_REDIS)
    caplog.set_level(logging.WARNING, logger="queues.realtime")
    try:
        arrival = check_in(site=site, by=front_desk, name="Marcus Lee")
        assert realtime.hints_wait(TIMEOUT)  # hints go out in the background
        after_check_in = len(caplog.records)
        called = services.arrival_call_next(site=site, by=clinician, room=room)
        assert realtime.hints_wait(TIMEOUT)
    finally:
        channel_layers.backends.clear()

    assert called.pk == arrival.pk
    saved = Arrival.objects.get(pk=arrival.pk)
    assert saved.state == State.CALLED
    assert saved.room == room
    assert list(saved.events.values_list("kind", flat=True).order_by("pk")) == [
        "checked_in",
        "called",
    ]
    # Each failed broadcast is logged (and nothing worse than a warning).
    assert after_check_in >= 1
    assert len(caplog.records) > after_check_in
    assert {r.name for r in caplog.records} == {"queues.realtime"}
    assert {r.levelno for r in caplog.records} == {logging.WARNING}
    assert all("Could not broadcast" in r.getMessage() for r in caplog.records)


@pytest.mark.django_db(transaction=True)
def test_check_in_and_call_pages_work_when_redis_is_down(
    settings, caplog, client, site, front_desk, clinician
):
    use_channel_layer(settings, NO_REDIS)
    caplog.set_level(logging.WARNING, logger="queues.realtime")
    try:
        client.force_login(front_desk)
        response = client.post(
            reverse("queues:check_in"), {"nonce": str(uuid.uuid4()), "name": "Marcus Lee"}
        )
        assert response.status_code == 302
        client.force_login(clinician)
        response = client.post(reverse("queues:call_next"))
        assert response.status_code == 302
        assert realtime.hints_wait(TIMEOUT)
    finally:
        channel_layers.backends.clear()

    saved = Arrival.objects.get(person__name="Marcus Lee")
    assert saved.state == State.CALLED
    assert saved.staff == clinician
    assert caplog.records


# --- a Redis that hangs -------------------------------------------------------------------------


@contextlib.contextmanager
def silent_redis():
    """A server that accepts connections and reads what it is sent, but never answers: a hung
    Redis (a refused connection fails fast; this one waits out every timeout)."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def serve():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            accepted.append(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0"
    finally:
        stop.set()
        thread.join(5)
        listener.close()
        for conn in accepted:
            conn.close()


def answered_within(seconds: float, action):
    """Run `action` (a request) in a thread; its result, or None if it had not answered in
    `seconds`. The old broadcast waited Redis's socket timeout once per group (30 s)."""
    outcome = {}

    def run():
        try:
            outcome["result"] = action()
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    return None if thread.is_alive() else outcome.get("result")


@pytest.mark.django_db(transaction=True)
def test_check_in_and_call_answer_in_normal_time_when_redis_hangs(
    settings, caplog, client, site, front_desk, clinician
):
    caplog.set_level(logging.INFO, logger="queues.realtime")
    with silent_redis() as url:
        use_channel_layer(settings, url)
        try:
            client.force_login(front_desk)
            checked_in = answered_within(
                TIMEOUT,
                lambda: client.post(
                    reverse("queues:check_in"), {"nonce": str(uuid.uuid4()), "name": "Marcus Lee"}
                ),
            )
            assert checked_in is not None, "check-in waited for the hung Redis"
            assert checked_in.status_code == 302
            client.force_login(clinician)
            called = answered_within(TIMEOUT, lambda: client.post(reverse("queues:call_next")))
            assert called is not None, "call waited for the hung Redis"
            assert called.status_code == 302
            # The hints are given up in the background, each logged once.
            assert realtime.hints_wait(60)
        finally:
            channel_layers.backends.clear()

    saved = Arrival.objects.get(person__name="Marcus Lee")
    assert (saved.state, saved.staff) == (State.CALLED, clinician)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert all(r.getMessage().startswith("Could not broadcast queue change") for r in warnings)
    assert not any("Marcus" in r.getMessage() for r in caplog.records)


# --- a server stopping --------------------------------------------------------------------------


@pytest.mark.redis
def test_a_server_stopped_with_open_screens_exits_and_they_carry_on_at_the_other_one(
    transactional_db, tmp_path, shared_redis, other_process, site, front_desk, clinician
):
    # SIGTERM (docker stop, a deploy) with screens open: the server closes them as "going
    # away / restarting" and exits well within docker's 10 seconds; the page reconnects to the
    # other process and its first snapshot holds every change made in between.
    stopping = start_asgi_server(tmp_path, redis_url=shared_redis)
    try:
        with contextlib.ExitStack() as stack:
            board = stack.enter_context(open_socket(stopping, f"/ws/queue/{site.slug}/", clinician))
            tv = stack.enter_context(open_socket(stopping, f"/ws/display/{site.display_token}/"))
            asked = stop_with_screens_open(stopping, board, tv)
        check_in(site=site, by=front_desk, name="Marcus Lee")
        realtime.hints_wait()
        # Within 10 seconds of being asked (docker stop's wait before it kills).
        stopping.process.wait(timeout=max(0.0, asked + 10 - time.monotonic()))
    finally:
        stop_asgi_server(stopping)
    with open_socket(other_process, f"/ws/queue/{site.slug}/", clinician) as again:
        assert "Marcus Lee" in next_snapshot(again)["html"]
    with open_socket(other_process, f"/ws/display/{site.display_token}/") as again:
        assert "K-1" in next_snapshot(again)["html"]


def stop_with_screens_open(server, board, tv) -> float:
    """SIGTERM the server while `board` and `tv` are open; both are closed by it. Returns when
    it was asked to stop."""
    next_snapshot(board)
    next_snapshot(tv)
    asked = time.monotonic()
    server.process.terminate()
    for ws in (board, tv):
        with pytest.raises(ConnectionClosed):
            while True:
                ws.recv(timeout=TIMEOUT)
    return asked


def silent_socket(server, path: str, user) -> socket.socket:
    """A websocket opened by hand that then never reads nor answers again (a phone that went
    out of reach): the server's close handshake with it can never finish."""
    cookie = session_cookie_for(user)
    port = int(server.url.rsplit(":", 1)[1])
    raw = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    raw.sendall(
        (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            f"Sec-WebSocket-Version: 13\r\nOrigin: {server.url}\r\n"
            f"Cookie: {cookie['name']}={cookie['value']}\r\n\r\n"
        ).encode()
    )
    assert raw.recv(12) == b"HTTP/1.1 101"
    return raw


@pytest.mark.redis
def test_a_server_stops_in_time_even_when_screens_never_answer_its_close(
    transactional_db, tmp_path, shared_redis, site, clinician
):
    stopping = start_asgi_server(tmp_path, redis_url=shared_redis)
    with contextlib.ExitStack() as stack:
        try:
            for _ in range(3):
                stack.callback(silent_socket(stopping, f"/ws/queue/{site.slug}/", clinician).close)
            stopping.process.terminate()
            stopping.process.wait(timeout=10)
        finally:
            stop_asgi_server(stopping)
