"""Websocket consumers for staff boards and waiting-room displays.

They only read. Every change goes through a POST and a service; the socket carries the
resulting snapshots and patches. Authorisation happens before a socket joins a group.

Work is done per change, not per socket (docs: STYLE, "Consumers"). Each server process keeps a
`_Hub` of the sockets it holds, by site; the process, not each socket, is in the site's group,
so a hint (a site id and a version) reaches it once. The hub then does the work for all of that
site's sockets, under one lock per site: it checks, in a constant number of queries, that every
socket may still see the site (sessions live and unexpired, passwords unchanged, roles still
held; for the TV, its link still current), builds the snapshot once and renders it once per
permission set, then hands the rendered text to every socket. Hints that arrive while a build
runs wait for it and are then usually already covered (the build reads the newest version): a
burst is coalesced, and the last version is always built. Under a rush, building a site's
screens takes at most LIVE_BUILD_SHARE of a process's time (a build of a long queue is followed
by a longer pause), so that check-ins keep the server; a change after a quiet spell, or on a
short queue, is built at once.

A board that holds the version built before gets a patch to the new one, not the whole board
(`queues.board.board_patch`, computed once per permission set): the rows added or changed,
keyed by arrival, each changed table's order, and the headings or sections that changed; rows
whose wait label alone changed are not sent (the page ticks those). A socket that connects,
syncs from another version or missed a version gets a full snapshot, as does the TV (its
snapshot is a few hundred bytes). With 300 waiting a check-in sends each board about 3 KB
instead of 300 KB.

Ending a session, a password change, a removed role or membership close that account's or
session's sockets at once through their groups (clinic/accounts.py); the same checks also run
on every change and every LIVE_RECHECK_SECONDS for quiet sockets, so an expired session stops
receiving within that time.

Each socket sends through a bounded queue drained by its own task: a socket that cannot keep
up is closed (its page reconnects and gets a snapshot) instead of holding the others back.
Database work runs on one thread per process whose connection is kept between builds.
"""

import asyncio
import json
import logging
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from asgiref.sync import sync_to_async
from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.sessions.models import Session
from django.db import Error as DatabaseError
from django.db import connection
from django.template.loader import render_to_string
from django.utils import timezone, translation

from clinic.models import Membership, Site
from clinic.sites import site_perms
from queues import realtime
from queues.board import BOARD_PERMISSIONS, board_live, board_patch, board_permissions_of
from queues.selectors import display_snapshot, queue_snapshot, queue_version

logger = logging.getLogger(__name__)

CLOSE_FORBIDDEN = 4403
# The session ended (signed out, signed out everywhere, password or roles changed): the page
# shows the sign-in or the screen lock instead of reloading.
CLOSE_SESSION_ENDED = 4401
# The socket fell behind (its send queue filled): the page reconnects and gets a snapshot.
CLOSE_TOO_SLOW = 1013

BOARD = "board"
DISPLAY = "display"
VIEW_QUEUE = "queue.view_queue"
# A built snapshot is reused for a socket that connects or re-syncs at the same version only
# while this fresh (its wait labels are rendered at build time).
REUSE_SECONDS = 10.0


# --- rendering (one function per fragment; the polling views render the same) -----------------


def display_fragment(snapshot) -> str:
    return render_to_string("queues/_display_live.html", {"display": snapshot})


def _perms_key(perms: dict[str, bool]) -> tuple[bool, ...]:
    return tuple(perms[name] for name in BOARD_PERMISSIONS)


def _perms_dict(key: tuple[bool, ...]) -> dict[str, bool]:
    return dict(zip(BOARD_PERMISSIONS, key, strict=True))


# --- database work, on one reused thread and connection per process ----------------------------

_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="live-db")


def _with_connection(fn, *args):
    """Run `fn` on the kept connection; a connection the server dropped is opened again once."""
    try:
        return fn(*args)
    except DatabaseError:
        if connection.in_atomic_block:
            raise
        connection.close()
        return fn(*args)


async def _db(fn, *args):
    return await sync_to_async(_with_connection, thread_sensitive=False, executor=_executor)(
        fn, *args
    )


def _close_connection() -> None:
    connection.close()


@dataclass
class Built:
    version: int
    at: float
    texts: dict = field(default_factory=dict)  # permission key (None for the TV) -> snapshot
    boards: dict = field(default_factory=dict)  # permission key -> LiveBoard, to patch from
    patches: dict = field(default_factory=dict)  # (from version, permission key) -> patch

    def patch_from(self, base: "Built", key) -> str | None:
        """The patch frame from `base` to this build for `key`, computed once; None when a
        patch cannot be made (`base` did not build `key`, or is not older)."""
        if base.version >= self.version or key not in base.boards or key not in self.boards:
            return None
        cached = (base.version, key)
        if cached not in self.patches:
            patch = board_patch(base.boards[key], self.boards[key])
            self.patches[cached] = json.dumps(
                {"type": "patch", "from": base.version, "version": self.version, **patch}
            )
        return self.patches[cached]


def _build(kind: str, site_id: int, keys: set) -> Built | None:
    """One snapshot of the site, rendered once per permission key. None: the site is gone."""
    site = Site.objects.filter(pk=site_id, is_active=True).first()
    if site is None:
        return None
    with translation.override(settings.LANGUAGE_CODE):
        if kind == DISPLAY:
            snapshot = display_snapshot(site=site)
            texts = {None: _frame(snapshot.version, display_fragment(snapshot))}
            boards = {}
        else:
            snapshot = queue_snapshot(site=site)
            boards = {key: board_live(snapshot, _perms_dict(key)) for key in keys}
            texts = {key: _frame(snapshot.version, board.html) for key, board in boards.items()}
    return Built(version=snapshot.version, at=time.monotonic(), texts=texts, boards=boards)


def _frame(version: int, html: str) -> str:
    return json.dumps({"type": "snapshot", "version": version, "html": html})


SESSION_MODEL_ENGINES = (
    "django.contrib.sessions.backends.db",
    "django.contrib.sessions.backends.cached_db",
)


def _live_sessions(keys: set[str]) -> set[str]:
    if not keys:
        return set()
    if settings.SESSION_ENGINE in SESSION_MODEL_ENGINES:
        return set(
            Session.objects.filter(
                session_key__in=keys, expire_date__gt=timezone.now()
            ).values_list("session_key", flat=True)
        )
    from importlib import import_module

    store = import_module(settings.SESSION_ENGINE).SessionStore
    return {key for key in keys if store(session_key=key).load()}


def _gate(kind: str, site_id: int, holders: list[tuple]) -> list[int | None]:
    """For each socket (its identity tuple), None if it may still see the site, else the code
    to close it with. A constant number of queries, however many sockets there are."""
    if kind == DISPLAY:
        row = Site.objects.filter(pk=site_id, is_active=True).values_list("display_token").first()
        current = row[0] if row else None
        return [None if token == current else CLOSE_FORBIDDEN for (token,) in holders]
    live = _live_sessions({key for key, _, _ in holders})
    user_ids = {user_id for _, user_id, _ in holders}
    hashes = {
        user.pk: user.get_session_auth_hash()
        for user in get_user_model().objects.filter(pk__in=user_ids, is_active=True)
    }
    app_label, codename = VIEW_QUEUE.split(".")
    allowed = set(
        Membership.objects.filter(
            user_id__in=user_ids,
            site_id=site_id,
            site__is_active=True,
            roles__permissions__codename=codename,
            roles__permissions__content_type__app_label=app_label,
        ).values_list("user_id", flat=True)
    )
    codes = []
    for key, user_id, session_hash in holders:
        if key not in live or hashes.get(user_id) != session_hash:
            codes.append(CLOSE_SESSION_ENDED)
        elif user_id not in allowed:
            codes.append(CLOSE_FORBIDDEN)
        else:
            codes.append(None)
    return codes


def _authorise_board(user, slug: str, session) -> tuple | None:
    """(site, permission key, session key, session's password hash) or None: refused."""
    site = Site.objects.filter(slug=slug, is_active=True).first()
    if site is None or user is None or not user.is_authenticated:
        return None
    granted = site_perms(user, site)
    if VIEW_QUEUE not in granted:
        return None
    perms = board_permissions_of(granted)
    key = session.session_key if session is not None else None
    if not key or str(session.get(SESSION_KEY)) != str(user.pk):
        return None
    return site, _perms_key(perms), key, session.get(HASH_SESSION_KEY, "")


def _display_site(token: str) -> Site | None:
    return Site.objects.filter(display_token=token, is_active=True).first()


# --- the sockets one process holds --------------------------------------------------------------


class _Hub:
    """The sockets of one event loop (one server process), by kind and site.

    The process, not each socket, is in the site's group: a change's hint reaches the process
    once, however many of the site's screens it holds (the sockets are only in their account's
    and session's groups, to be closed)."""

    def __init__(self) -> None:
        self.sockets: dict[tuple, set] = {}
        self.locks: dict[tuple, asyncio.Lock] = {}
        self.built: dict[tuple, Built] = {}
        self.done: dict[tuple, int] = {}
        self.last_build: dict[tuple, tuple[float, float]] = {}  # (ended, took)
        self.rechecker: asyncio.Task | None = None
        self.groups: dict[tuple, str] = {}  # hub key -> the group the process is in for it
        self.channel: str | None = None  # the process's own channel, in those groups
        self.listener: asyncio.Task | None = None
        self.subscribing = asyncio.Lock()
        self.tasks: set[asyncio.Task] = set()

    def add(self, socket) -> None:
        self.sockets.setdefault(socket.hub_key, set()).add(socket)
        if self.rechecker is None:
            self.rechecker = asyncio.create_task(self._recheck_forever())

    async def remove(self, socket) -> None:
        held = self.sockets.get(socket.hub_key)
        if held is None:
            return
        held.discard(socket)
        if not held:
            del self.sockets[socket.hub_key]
            for table in (self.built, self.done, self.locks, self.last_build):
                table.pop(socket.hub_key, None)
            await self._leave(socket.hub_key)
        if not self.sockets:
            rechecker, self.rechecker = self.rechecker, None
            listener, self.listener = self.listener, None
            await _stopped(rechecker)
            await _stopped(listener)
            # No screens left: give the kept connection back.
            await _db(_close_connection)

    # --- the process in the sites' groups ---------------------------------------------------

    async def subscribe(self, hub_key, group: str) -> None:
        """Put the process in `group` for `hub_key` (again: that repairs a membership Redis
        lost when it restarted), and make sure it listens."""
        layer = get_channel_layer()
        if layer is None:
            return
        async with self.subscribing:
            if self.channel is None:
                self.channel = await layer.new_channel()
            self.groups[hub_key] = group
            await layer.group_add(group, self.channel)
            if self.listener is None or self.listener.done():
                self.listener = asyncio.create_task(self._listen(layer))

    async def _leave(self, hub_key) -> None:
        async with self.subscribing:  # not between another screen's joining and its note
            group = self.groups.pop(hub_key, None)
            if group in self.groups.values():
                return  # the site's other kind of screen (boards, TVs) is still held here
            layer = get_channel_layer()
            if group is None or layer is None or self.channel is None:
                return
            try:
                await layer.group_discard(group, self.channel)
            except Exception:
                logger.info("Could not leave %s", group, exc_info=True)

    async def _listen(self, layer) -> None:
        """Each hint once per process: the site's boards and display are brought up to date
        (each build and send runs on its own, so that hints keep being read meanwhile)."""
        while asyncio.current_task() is self.listener:  # a replaced reader stops
            try:
                message = await layer.receive(self.channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning(
                    "Could not read live-update hints; screens catch up on their next sync",
                    exc_info=True,
                )
                await asyncio.sleep(1)
                continue
            site_id, version = message.get("site"), message.get("version")
            if message.get("type") != realtime.QUEUE_CHANGED or not isinstance(version, int):
                continue
            for kind in (BOARD, DISPLAY):
                if (kind, site_id) in self.sockets:
                    task = asyncio.create_task(self.changed((kind, site_id), version))
                    self.tasks.add(task)
                    task.add_done_callback(self.tasks.discard)

    def _lock(self, hub_key) -> asyncio.Lock:
        return self.locks.setdefault(hub_key, asyncio.Lock())

    async def changed(self, hub_key, version: int | None = None, force=None) -> None:
        """Check and bring every socket of this site up to date (once per version)."""
        async with self._lock(hub_key):
            if force is None and version is not None and self.done.get(hub_key, -1) >= version:
                return  # another socket's hint already built this version or a newer one
            if force is None:
                # Under a burst, building takes at most LIVE_BUILD_SHARE of the time: after a
                # build that took d, the next waits until (1 / share - 1) * d has passed. The
                # hints that come meanwhile wait here, and the next build covers them all.
                ended, took = self.last_build.get(hub_key, (0.0, 0.0))
                rest = ended + took * (1 / settings.LIVE_BUILD_SHARE - 1) - time.monotonic()
                if rest > 0:
                    await asyncio.sleep(rest)
            sockets = list(self.sockets.get(hub_key, ()))
            if not sockets:
                return
            started = time.monotonic()
            sockets = await self._admit(hub_key, sockets)
            base = self.built.get(hub_key)
            built = await self._build(hub_key, {s.perms_key for s in sockets}, version or 0)
            self.last_build[hub_key] = (time.monotonic(), time.monotonic() - started)
            if built is None:
                for s in sockets:
                    s.drop(CLOSE_FORBIDDEN)
                return
            self.done[hub_key] = built.version
        for s in sockets:
            if s is not force and base is not None and s.sent_version == base.version:
                patch = built.patch_from(base, s.perms_key)
                if patch is not None:
                    s.push(built.version, patch)
                    continue
            s.push(built.version, built.texts[s.perms_key], force=s is force)

    async def welcome(self, socket) -> None:
        """The snapshot a newly connected socket starts from."""
        async with self._lock(socket.hub_key):
            version = await _db(queue_version, socket.site_id)
            built = await self._build(socket.hub_key, {socket.perms_key}, version)
        if built is None:
            socket.drop(CLOSE_FORBIDDEN)
        else:
            socket.push(built.version, built.texts[socket.perms_key], force=True)

    async def _admit(self, hub_key, sockets: list) -> list:
        codes = await _db(_gate, hub_key[0], hub_key[1], [s.identity for s in sockets])
        admitted = []
        for s, code in zip(sockets, codes, strict=True):
            if code is None:
                admitted.append(s)
            else:
                s.drop(code)
        return admitted

    async def _build(self, hub_key, keys: set, at_least: int) -> Built | None:
        """A build at `at_least` or newer holding `keys`: the kept one if fresh enough."""
        kept = self.built.get(hub_key)
        if (
            kept is not None
            and kept.version >= at_least
            and keys <= kept.texts.keys()
            and time.monotonic() - kept.at < REUSE_SECONDS
        ):
            return kept
        wanted = set(keys)
        if kept is not None and kept.version >= at_least:
            wanted |= kept.texts.keys()
        built = await _db(_build, hub_key[0], hub_key[1], wanted)
        if built is not None:
            self.built[hub_key] = built
        return built

    async def _recheck_forever(self) -> None:
        """Quiet sockets too lose access within LIVE_RECHECK_SECONDS (an expired session), and
        the process is put in its groups again (in case Redis restarted and forgot them)."""
        while asyncio.current_task() is self.rechecker:  # a stopped one ends
            await asyncio.sleep(settings.LIVE_RECHECK_SECONDS)
            for hub_key in list(self.sockets):
                try:
                    group = self.groups.get(hub_key)
                    if group is not None:
                        await self.subscribe(hub_key, group)
                    async with self._lock(hub_key):
                        sockets = list(self.sockets.get(hub_key, ()))
                        if sockets:
                            await self._admit(hub_key, sockets)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    logger.warning("Could not re-check the live sockets", exc_info=True)


async def _stopped(task: asyncio.Task | None) -> None:
    """Cancel `task` and wait until it has ended. On Python 3.11 redis-py can swallow the
    cancellation of a pending Redis call (tests/queues/test_consumers.py says more), so it is
    cancelled again until it ends: a task left running would keep the event loop from ever
    closing."""
    if task is asyncio.current_task():
        return  # ends on its own: its loop sees it was replaced
    while task is not None and not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=0.5)


_hubs: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Hub]" = weakref.WeakKeyDictionary()


def hub() -> _Hub:
    loop = asyncio.get_running_loop()
    found = _hubs.get(loop)
    if found is None:
        found = _hubs[loop] = _Hub()
    return found


# --- the consumers ------------------------------------------------------------------------------


class _QueueSocket(AsyncWebsocketConsumer):
    """Shared parts: tolerant frame parsing, the send queue, re-joining the group on sync."""

    kind = BOARD
    group: str | None = None
    site_id: int | None = None
    perms_key = None
    sent_version = -1
    registered = False
    writer: asyncio.Task | None = None
    dropping = False
    closing: asyncio.Task | None = None

    @property
    def hub_key(self) -> tuple:
        return (self.kind, self.site_id)

    async def dispatch(self, message):
        """Channels' dispatch, less its `aclose_old_connections()` before every message: a hop
        to a thread for each message and each socket (50 screens, 50 hops a change) to tidy
        connections these sockets never use. They reach the database only through `_db`, on
        the live-db thread, which keeps its own connection; channels' session and user lookups
        at connect tidy theirs themselves (database_sync_to_async)."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        # Malformed frames are ignored, never fatal: a buggy or hostile client cannot crash us.
        try:
            content = json.loads(text_data or "")
        except (TypeError, ValueError, RecursionError):  # RecursionError: absurdly deep nesting
            return
        if isinstance(content, dict) and content.get("type") == "sync" and self.registered:
            await self.sync(content.get("version"))

    async def sync(self, known) -> None:
        # Joining again is idempotent and repairs membership lost when Redis restarted.
        await hub().subscribe(self.hub_key, self.group)
        current = await _db(queue_version, self.site_id)
        if not isinstance(known, int) or isinstance(known, bool) or known != current:
            await hub().changed(self.hub_key, current, force=self)

    async def start(self) -> None:
        """Accepted and authorised: start sending, join the hub, send the first snapshot."""
        self.outbox: asyncio.Queue = asyncio.Queue(maxsize=settings.LIVE_SEND_BACKLOG)
        await hub().subscribe(self.hub_key, self.group)
        await self.accept()
        self.writer = asyncio.create_task(self._write())
        hub().add(self)
        self.registered = True
        await hub().welcome(self)

    def push(self, version: int, text: str, *, force: bool = False) -> None:
        """Queue a snapshot for this socket; never waits for it to be sent."""
        if self.dropping or (version <= self.sent_version and not force):
            return
        try:
            self.outbox.put_nowait(text)
        except asyncio.QueueFull:
            logger.info("Closing a live socket that fell behind (site %s)", self.site_id)
            self.drop(CLOSE_TOO_SLOW)
            return
        self.sent_version = max(self.sent_version, version)

    def drop(self, code: int) -> None:
        """Close this socket without waiting for it (it may be the slow one)."""
        if self.dropping:
            return
        self.dropping = True
        self.closing = asyncio.create_task(self._close(code))

    async def _close(self, code: int) -> None:
        if self.writer is not None:
            self.writer.cancel()
        try:
            await asyncio.wait_for(self.close(code=code), settings.LIVE_SEND_TIMEOUT_SECONDS)
        except TimeoutError:
            logger.info("A live socket did not take its close in time (site %s)", self.site_id)

    async def _write(self) -> None:
        while True:
            text = await self.outbox.get()
            try:
                await asyncio.wait_for(
                    self.send(text_data=text), settings.LIVE_SEND_TIMEOUT_SECONDS
                )
            except TimeoutError:
                self.drop(CLOSE_TOO_SLOW)
                return

    async def disconnect(self, code):
        if self.writer is not None:
            self.writer.cancel()
        if self.registered:
            self.registered = False
            await hub().remove(self)
        for group in self.groups_joined():
            try:
                await self.channel_layer.group_discard(group, self.channel_name)
            except Exception:
                logger.info("Could not leave %s on disconnect", group, exc_info=True)

    def groups_joined(self) -> list[str]:
        """The groups this socket itself is in (the site's group is the process's: _Hub)."""
        return []


class BoardConsumer(_QueueSocket):
    """/ws/queue/<site>/ — the live queue for signed-in staff of that site."""

    kind = BOARD

    async def connect(self):
        slug = self.scope["url_route"]["kwargs"]["site"]
        found = await _db(_authorise_board, self.scope.get("user"), slug, self.scope.get("session"))
        if found is None:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        site, self.perms_key, session_key, session_hash = found
        self.site_id = site.pk
        self.user_id = self.scope["user"].pk
        self.identity = (session_key, self.user_id, session_hash)
        self.group = realtime.site_group(site.pk)
        # Ending the session or every session of the account closes this socket at once.
        self.account_groups = [
            realtime.user_group(self.user_id),
            realtime.session_group(session_key),
        ]
        for group in self.account_groups:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.start()

    async def session_ended(self, event):
        self.drop(CLOSE_SESSION_ENDED)

    def groups_joined(self) -> list[str]:
        return [*super().groups_joined(), *getattr(self, "account_groups", ())]


class DisplayConsumer(_QueueSocket):
    """/ws/display/<token>/ — the waiting-room TV: ticket codes and rooms only."""

    kind = DISPLAY

    async def connect(self):
        token = self.scope["url_route"]["kwargs"]["token"]
        site = await _db(_display_site, token)
        if site is None:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.site_id = site.pk
        # A rotated link disconnects every screen that still uses the old one (the rotation
        # bumps the version, and every change checks the link first).
        self.identity = (token,)
        self.group = realtime.site_group(site.pk)
        await self.start()
