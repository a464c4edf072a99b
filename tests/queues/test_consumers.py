"""The websocket layer through the whole ASGI stack: origin check, session auth, consumers.

Each test drives `clinic.asgi.application` with a `WebsocketCommunicator`, so the Origin
validator and the session/auth middleware are part of what is tested. The key cases run on the
in-memory channel layer and again on real channels-redis (the `layer` fixture).

Async bodies run through asgiref's `async_to_sync` instead of pytest-asyncio: it is one fewer
plugin, and it is how Channels itself runs sync consumers, so the ORM work done inside the
coroutine (`database_sync_to_async`) lands on the test's own thread and database connection.
"""

import contextlib
import json
from datetime import timedelta

import pytest
import redis
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import InMemoryChannelLayer, channel_layers, get_channel_layer
from channels.testing import WebsocketCommunicator
from channels_redis.core import RedisChannelLayer
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.utils import timezone

from clinic.asgi import application
from clinic.models import Membership, Site
from clinic.settings import redis_channel_layer
from queues import services
from queues.consumers import CLOSE_FORBIDDEN, CLOSE_SESSION_ENDED
from queues.selectors import queue_version
from tests.conftest import session_cookie_for
from tests.factories import check_in
from tests.queues.screens import Screen

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = b"http://127.0.0.1"
HOST = b"127.0.0.1"
# What a page served from http://127.0.0.1 sends when it opens a socket (no one signed in).
PAGE = [(b"origin", ORIGIN), (b"host", HOST)]
TIMEOUT = 10  # seconds; generous, only ever reached when something is broken
QUIET = 0.5  # how long "nothing arrives" is watched for
# Leaving takes milliseconds. On Python 3.11, redis-py's connection setup can swallow the
# cancellation of a consumer's pending Redis read (asyncio.wait_for), so the consumer lingers
# until cancelled again; the communicator does that when this wait runs out.
DISCONNECT_TIMEOUT = 3
LAYER_CLASSES = {"memory": InMemoryChannelLayer, "redis": RedisChannelLayer}


# --- plumbing -----------------------------------------------------------------------------------


def flush_redis(url: str) -> None:
    """Empty the test's own Redis database (never pass a URL that others use)."""
    with redis.Redis.from_url(url) as client:
        client.flushdb()


def run(scenario):
    """Run an async test body to completion on a fresh event loop."""
    async_to_sync(scenario)()


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def layer(request, settings):
    """The channel layer every consumer and the realtime module use in this test."""
    if request.param == "redis":
        settings.CHANNEL_LAYERS = {"default": redis_channel_layer(settings.TEST_REDIS_URL)}
        # Our own Redis database: start every test without groups left over from the last.
        flush_redis(settings.TEST_REDIS_URL)
    else:
        settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    # Layers are cached per process (and a Redis one holds connections of a closed loop):
    # make sure this test builds its own.
    channel_layers.backends.clear()
    assert isinstance(get_channel_layer(), LAYER_CLASSES[request.param])
    yield request.param
    channel_layers.backends.clear()


def staff_headers(user, *, origin=ORIGIN) -> list[tuple[bytes, bytes]]:
    cookie = session_cookie_for(user)
    return [
        (b"origin", origin),
        (b"host", HOST),
        (b"cookie", f"{cookie['name']}={cookie['value']}".encode()),
    ]


def session_key(headers) -> str:
    cookie = dict(headers)[b"cookie"].decode()
    return cookie.split("=", 1)[1]


def board_path(site) -> str:
    return f"/ws/queue/{site.slug}/"


def display_path(token: str) -> str:
    return f"/ws/display/{token}/"


@contextlib.asynccontextmanager
async def socket(path, headers):
    communicator = WebsocketCommunicator(application, path, headers=headers)
    try:
        yield communicator
    finally:
        await communicator.disconnect(timeout=DISCONNECT_TIMEOUT)


async def connected(communicator) -> dict:
    """Connect, insist on being accepted, and return the snapshot sent on connect."""
    accepted, _ = await communicator.connect(timeout=TIMEOUT)
    assert accepted
    return await next_snapshot(communicator)


async def refused(communicator) -> int:
    accepted, code = await communicator.connect(timeout=TIMEOUT)
    assert not accepted
    return code


async def next_snapshot(communicator) -> dict:
    """The next frame; a patch comes with "html", the whole board as the page shows it then."""
    return screen_takes(communicator, await communicator.receive_json_from(timeout=TIMEOUT))


def screen_takes(holder, message: dict) -> dict:
    """`message`, after the screen of `holder` (a socket) took it (tests/queues/screens.py)."""
    assert message["type"] in ("snapshot", "patch")
    assert isinstance(message["version"], int)
    if not hasattr(holder, "screen"):
        holder.screen = Screen()
    taken = holder.screen.take(message)
    if message["type"] == "patch":
        assert taken, "a patch from a version the screen does not hold"
        return {**message, "html": holder.screen.html}
    return message


async def closed_with(communicator) -> int:
    message = await communicator.receive_output(timeout=TIMEOUT)
    assert message["type"] == "websocket.close"
    return message.get("code")


# Services and ORM calls made from inside a coroutine.
a_check_in = database_sync_to_async(check_in)
a_call_next = database_sync_to_async(services.arrival_call_next)
a_rotate = database_sync_to_async(services.site_rotate_display_token)
a_version = database_sync_to_async(queue_version)


# --- who may connect ----------------------------------------------------------------------------


def test_anonymous_socket_is_refused(layer, site):
    async def scenario():
        async with socket(board_path(site), PAGE) as ws:
            assert await refused(ws) == CLOSE_FORBIDDEN

    run(scenario)


def test_staff_of_another_site_are_refused(layer, site, other_site_clinician):
    headers = staff_headers(other_site_clinician)

    async def scenario():
        async with socket(board_path(site), headers) as ws:
            assert await refused(ws) == CLOSE_FORBIDDEN

    run(scenario)


def test_director_without_queue_access_is_refused(layer, site, director):
    headers = staff_headers(director)

    async def scenario():
        async with socket(board_path(site), headers) as ws:
            assert await refused(ws) == CLOSE_FORBIDDEN

    run(scenario)


def test_unknown_or_inactive_site_is_refused(site, clinician):
    Site.objects.filter(pk=site.pk).update(is_active=False)
    headers = staff_headers(clinician)

    async def scenario():
        async with socket("/ws/queue/nowhere/", headers) as ws:
            assert await refused(ws) == CLOSE_FORBIDDEN
        async with socket(board_path(site), headers) as ws:
            assert await refused(ws) == CLOSE_FORBIDDEN

    run(scenario)


@pytest.mark.parametrize("persona", ["front_desk", "clinician"])
def test_care_team_gets_a_versioned_snapshot_on_connect(request, layer, site, persona):
    user = request.getfixturevalue(persona)
    check_in(site=site, by=user, name="Marcus Lee")
    headers = staff_headers(user)

    async def scenario():
        async with socket(board_path(site), headers) as ws:
            snapshot = await connected(ws)
            assert snapshot["version"] == await a_version(site.pk)
            assert snapshot["version"] >= 1
            assert "Marcus Lee" in snapshot["html"]

    run(scenario)


@pytest.mark.parametrize(
    "origin",
    [
        b"http://evil.example",
        b"http://127.0.0.1.evil.example",
        b"http://127.0.0.1:8001",
        b"https://127.0.0.1",
        b"http://127.0.0.1/path",
        b"null",
        None,
    ],
    ids=[
        "other-host",
        "lookalike-host",
        "other-port",
        "other-scheme",
        "with-path",
        "null",
        "missing",
    ],
)
def test_socket_from_a_foreign_origin_is_refused_even_when_signed_in(site, clinician, origin):
    headers = [h for h in staff_headers(clinician) if h[0] != b"origin"]
    if origin is not None:
        headers.append((b"origin", origin))

    async def scenario():
        async with socket(board_path(site), headers) as ws:
            await refused(ws)
        async with socket(display_path(site.display_token), headers) as ws:
            await refused(ws)

    run(scenario)


def test_a_socket_from_the_page_s_own_origin_or_a_trusted_one_is_accepted(
    settings, site, clinician
):
    settings.CSRF_TRUSTED_ORIGINS = ["https://clinic.example.org"]
    served_on_a_port = [(b"origin", b"http://127.0.0.1:8443"), (b"host", b"127.0.0.1:8443")]
    behind_a_proxy = [(b"origin", b"https://clinic.example.org"), (b"host", HOST)]

    async def scenario():
        for headers in (PAGE, served_on_a_port, behind_a_proxy):
            async with socket(display_path(site.display_token), headers) as ws:
                await connected(ws)

    run(scenario)


def test_wrong_display_token_is_refused(layer, site):
    async def scenario():
        async with socket(display_path("not-the-token"), PAGE) as ws:
            assert await refused(ws) == CLOSE_FORBIDDEN
        async with socket(display_path(site.display_token + "x"), PAGE) as ws:
            assert await refused(ws) == CLOSE_FORBIDDEN

    run(scenario)


# --- what arrives -------------------------------------------------------------------------------


def test_a_check_in_and_a_call_reach_an_open_board_as_newer_snapshots(
    layer, site, front_desk, clinician, room
):
    headers = staff_headers(clinician)

    async def scenario():
        async with socket(board_path(site), headers) as ws:
            first = await connected(ws)
            assert "Marcus Lee" not in first["html"]

            await a_check_in(site=site, by=front_desk, name="Marcus Lee")
            after_check_in = await next_snapshot(ws)
            assert after_check_in["version"] > first["version"]
            assert "Marcus Lee" in after_check_in["html"]

            await a_call_next(site=site, by=clinician, room=room)
            after_call = await next_snapshot(ws)
            assert after_call["version"] > after_check_in["version"]
            assert "Room 2" in after_call["html"]

    run(scenario)


def test_every_open_board_at_the_site_gets_the_change(layer, site, front_desk, clinician):
    desk_headers, clinician_headers = staff_headers(front_desk), staff_headers(clinician)

    async def scenario():
        async with (
            socket(board_path(site), desk_headers) as desk,
            socket(board_path(site), clinician_headers) as room_screen,
        ):
            await connected(desk)
            await connected(room_screen)
            await a_check_in(site=site, by=front_desk, name="Jo Banks")
            assert "Jo Banks" in (await next_snapshot(desk))["html"]
            assert "Jo Banks" in (await next_snapshot(room_screen))["html"]

    run(scenario)


def test_a_change_at_one_site_never_reaches_another_sites_board(
    layer, site, other_site, front_desk, other_site_clinician
):
    headers = staff_headers(other_site_clinician)
    hillside_desk = other_site_clinician

    async def scenario():
        async with socket(board_path(other_site), headers) as ws:
            await connected(ws)
            await a_check_in(site=site, by=front_desk, name="Marcus Lee")
            assert await ws.receive_nothing(timeout=QUIET)
            await a_check_in(site=other_site, by=hillside_desk, name="Ada Hill")
            snapshot = await next_snapshot(ws)
            assert "Ada Hill" in snapshot["html"]
            assert "Marcus Lee" not in snapshot["html"]

    run(scenario)


def test_display_gets_ticket_codes_and_rooms_never_names_or_reasons(
    layer, site, front_desk, clinician, service, room
):
    check_in(site=site, by=front_desk, name="Marcus Lee", urgent=True, urgent_reason="Chest pain")
    secrets_on_file = ["Marcus Lee", "Chest pain", "Priya Ng", "Has a dog", "Wound care", "Alex"]

    def assert_public(html):
        for secret in secrets_on_file:
            assert secret not in html

    async def scenario():
        # The waiting-room TV has no staff login: the link's token is its only credential.
        async with socket(display_path(site.display_token), PAGE) as tv:
            first = await connected(tv)
            assert "K-1" in first["html"]
            assert_public(first["html"])

            await a_check_in(
                site=site,
                by=front_desk,
                name="Priya Ng",
                what_helps="Has a dog",
                service=service,
                urgent=True,
                urgent_reason="Chest pain",
            )
            after_check_in = await next_snapshot(tv)
            assert after_check_in["version"] > first["version"]
            assert "K-1" in after_check_in["html"]
            assert "K-2" in after_check_in["html"]
            assert_public(after_check_in["html"])

            await a_call_next(site=site, by=clinician, room=room)
            after_call = await next_snapshot(tv)
            assert "K-1" in after_call["html"]
            assert "Room 2" in after_call["html"]
            assert_public(after_call["html"])

    run(scenario)


def test_rotating_the_display_link_closes_open_displays(layer, site):
    old_token = site.display_token

    async def scenario():
        async with socket(display_path(old_token), PAGE) as tv:
            await connected(tv)
            await a_rotate(site=site)
            assert await closed_with(tv) == CLOSE_FORBIDDEN
        assert site.display_token != old_token
        async with socket(display_path(old_token), PAGE) as tv:
            assert await refused(tv) == CLOSE_FORBIDDEN
        async with socket(display_path(site.display_token), PAGE) as tv:
            await connected(tv)

    run(scenario)


def test_rotating_the_display_link_leaves_staff_boards_open(layer, site, clinician):
    headers = staff_headers(clinician)

    async def scenario():
        async with socket(board_path(site), headers) as ws:
            first = await connected(ws)
            await a_rotate(site=site)
            assert (await next_snapshot(ws))["version"] > first["version"]

    run(scenario)


# --- what the client may send -------------------------------------------------------------------


MALFORMED_FRAMES = [
    {"text": "this is not json"},
    {"text": "{"},
    {"text": ""},
    {"text": "[1, 2, 3]"},
    {"text": '"sync"'},
    {"text": "42"},
    {"text": "null"},
    # Nested deep enough to exhaust the JSON parser's recursion limit, within the size cap.
    {"text": "[" * 1024},
    {"text": '{"type": 7}'},
    {"text": '{"type": "call_next", "version": 1}'},
    {"bytes": b"\x00\xff\xfe binary"},
    {"bytes": json.dumps({"type": "sync", "version": -5}).encode()},
]


async def send_frames(communicator, frames):
    # Raw ASGI messages: the communicator's helpers refuse an empty frame, a browser does not.
    for frame in frames:
        await communicator.send_input({"type": "websocket.receive", **frame})


def test_malformed_frames_are_ignored_and_the_board_keeps_working(
    layer, site, front_desk, clinician
):
    headers = staff_headers(clinician)

    async def scenario():
        async with socket(board_path(site), headers) as ws:
            first = await connected(ws)
            await send_frames(ws, MALFORMED_FRAMES)
            assert await ws.receive_nothing(timeout=QUIET)

            await a_check_in(site=site, by=front_desk, name="Marcus Lee")
            snapshot = await next_snapshot(ws)
            assert snapshot["version"] > first["version"]
            assert "Marcus Lee" in snapshot["html"]

    run(scenario)


def test_malformed_frames_are_ignored_by_the_display(layer, site, front_desk):
    async def scenario():
        async with socket(display_path(site.display_token), PAGE) as tv:
            first = await connected(tv)
            await send_frames(tv, MALFORMED_FRAMES)
            assert await tv.receive_nothing(timeout=QUIET)

            await a_check_in(site=site, by=front_desk, name="Marcus Lee")
            assert (await next_snapshot(tv))["version"] > first["version"]

    run(scenario)


@pytest.mark.parametrize("kind", ["text", "bytes"])
def test_a_frame_larger_than_a_screen_ever_sends_closes_the_socket(layer, site, clinician, kind):
    # A screen only sends {"type": "sync", "version": n}; clinic/edge.py caps every message
    # whatever server is in front (clinic/serve.py also caps it in uvicorn).
    headers = staff_headers(clinician)
    big = {"text": "x" * 1025} if kind == "text" else {"bytes": b"x" * 1025}
    accented = {"text": "é" * 513}  # 1,026 bytes in UTF-8: bytes are counted, not characters

    async def scenario():
        for frame in (big, accented):
            async with socket(board_path(site), headers) as ws:
                await connected(ws)
                await send_frames(ws, [frame])
                assert await closed_with(ws) == 1009

    run(scenario)


@pytest.mark.parametrize("version", ["x", None, 1.5, [1], {"v": 1}])
def test_sync_with_a_garbled_version_is_answered_with_a_fresh_snapshot(
    layer, site, front_desk, clinician, version
):
    # A client that cannot say which version it holds is treated as holding none: it gets the
    # current snapshot, never an error and never a closed socket.
    check_in(site=site, by=front_desk, name="Marcus Lee")
    headers = staff_headers(clinician)

    async def scenario():
        async with socket(board_path(site), headers) as ws:
            first = await connected(ws)
            await ws.send_json_to({"type": "sync", "version": version})
            again = await next_snapshot(ws)
            assert again["version"] == first["version"]
            assert "Marcus Lee" in again["html"]

            await a_check_in(site=site, by=front_desk, name="Jo Banks")
            assert "Jo Banks" in (await next_snapshot(ws))["html"]

    run(scenario)


def test_sync_at_the_current_version_gets_no_reply_and_a_stale_one_gets_a_snapshot(
    layer, site, front_desk, clinician
):
    check_in(site=site, by=front_desk, name="Marcus Lee")
    check_in(site=site, by=front_desk, name="Jo Banks")
    headers = staff_headers(clinician)

    async def scenario():
        async with socket(board_path(site), headers) as ws:
            current = (await connected(ws))["version"]
            await ws.send_json_to({"type": "sync", "version": current})
            assert await ws.receive_nothing(timeout=QUIET)

            await ws.send_json_to({"type": "sync", "version": current - 1})
            stale = await next_snapshot(ws)
            assert stale["version"] == current
            assert "Jo Banks" in stale["html"]

    run(scenario)


def test_display_sync_at_the_current_version_gets_no_reply_and_a_stale_one_gets_a_snapshot(
    layer, site, front_desk
):
    check_in(site=site, by=front_desk, name="Marcus Lee")

    async def scenario():
        async with socket(display_path(site.display_token), PAGE) as tv:
            current = (await connected(tv))["version"]
            await tv.send_json_to({"type": "sync", "version": current})
            assert await tv.receive_nothing(timeout=QUIET)
            await tv.send_json_to({"type": "sync", "version": 0})
            assert (await next_snapshot(tv))["version"] == current

    run(scenario)


# --- losing access while connected --------------------------------------------------------------


@pytest.fixture
def quick_recheck(settings):
    """Each process re-checks its quiet sockets every LIVE_RECHECK_SECONDS; quicker here."""
    settings.LIVE_RECHECK_SECONDS = 0.2


def test_a_quiet_board_whose_session_was_deleted_is_closed_as_session_ended(
    layer, site, clinician, quick_recheck
):
    # No change and no sync needed: the process's own re-check finds it.
    headers = staff_headers(clinician)

    async def scenario():
        async with socket(board_path(site), headers) as ws:
            await connected(ws)
            # Signing out deletes the session, wherever that happens.
            await database_sync_to_async(SessionStore(session_key(headers)).delete)()
            assert await closed_with(ws) == CLOSE_SESSION_ENDED

    run(scenario)


def test_signed_out_user_gets_no_further_changes(layer, site, front_desk, clinician):
    headers = staff_headers(clinician)

    async def scenario():
        async with socket(board_path(site), headers) as ws:
            await connected(ws)
            await database_sync_to_async(SessionStore(session_key(headers)).delete)()
            await a_check_in(site=site, by=front_desk, name="Marcus Lee")
            assert await closed_with(ws) == CLOSE_SESSION_ENDED

    run(scenario)


def test_a_quiet_board_whose_password_changed_is_closed_as_session_ended(
    layer, site, clinician, quick_recheck
):
    headers = staff_headers(clinician)

    def change_password():
        clinician.set_password("a new passphrase for alex")
        clinician.save()

    async def scenario():
        async with socket(board_path(site), headers) as ws:
            await connected(ws)
            await database_sync_to_async(change_password)()
            assert await closed_with(ws) == CLOSE_SESSION_ENDED

    run(scenario)


def expire(headers) -> None:
    """The session's idle time ran out (its row stays until the nightly clear-up)."""
    Session.objects.filter(session_key=session_key(headers)).update(
        expire_date=timezone.now() - timedelta(seconds=1)
    )


def test_a_quiet_board_whose_session_expired_is_closed_as_ended_within_the_recheck_time(
    layer, site, clinician, quick_recheck
):
    # Nothing changes and nobody syncs: the process's re-check (10 s by default) closes it.
    headers = staff_headers(clinician)

    async def scenario():
        async with socket(board_path(site), headers) as ws:
            await connected(ws)
            await database_sync_to_async(expire)(headers)
            assert await closed_with(ws) == CLOSE_SESSION_ENDED

    run(scenario)


def test_a_session_expired_after_its_idle_time_gets_no_further_changes(
    layer, site, front_desk, clinician
):
    headers = staff_headers(clinician)

    async def scenario():
        async with socket(board_path(site), headers) as ws:
            await connected(ws)
            await database_sync_to_async(expire)(headers)
            await a_check_in(site=site, by=front_desk, name="Marcus Lee")
            # The close, never a snapshot with the new name in it.
            assert await closed_with(ws) == CLOSE_SESSION_ENDED

    run(scenario)


def test_a_session_extended_by_its_person_stays_open(layer, site, clinician):
    headers = staff_headers(clinician)

    async def scenario():
        async with socket(board_path(site), headers) as ws:
            current = (await connected(ws))["version"]
            await database_sync_to_async(
                Session.objects.filter(session_key=session_key(headers)).update
            )(expire_date=timezone.now() + timedelta(seconds=30))
            await ws.send_json_to({"type": "sync", "version": current})
            assert await ws.receive_nothing(timeout=QUIET)

    run(scenario)


def test_staff_removed_from_the_site_are_closed_at_the_next_change(
    layer, site, front_desk, clinician
):
    headers = staff_headers(clinician)

    async def scenario():
        async with socket(board_path(site), headers) as ws:
            await connected(ws)
            await database_sync_to_async(
                Membership.objects.filter(user=clinician, site=site).delete
            )()
            await a_check_in(site=site, by=front_desk, name="Marcus Lee")
            assert await closed_with(ws) == CLOSE_FORBIDDEN

    run(scenario)
