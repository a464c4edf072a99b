"""The only code that talks to the channel layer.

Services call `queue_changed` as their last step; the hint goes out after commit and carries a
site id and a version, never anything about a person. Screens fetch what changed from the
database (the source of truth), so a lost hint costs a few seconds, never a person: every
screen also re-syncs on a timer and on reconnect.

A request never waits for the channel layer. A layer that talks over the network (Redis) can
hang: a Redis that accepts connections and never answers would hold each check-in until the
socket timed out, once per group. So hints for such a layer are handed to one background
sender per process, which gives each hint a few seconds and then drops it; when the sender is
that far behind, new hints are dropped at once. The in-memory layer (one process, development
and tests) cannot block and lives on the server's own event loop, so it is sent to inline.
"""

import asyncio
import atexit
import hashlib
import logging
import os
import queue
import threading
import time
from functools import partial

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.db import transaction

from queues import health

logger = logging.getLogger(__name__)

QUEUE_CHANGED = "queue.changed"
SESSION_ENDED = "session.ended"


def site_group(site_id: int) -> str:
    """The server processes that hold any of the site's screens, boards and TVs alike: one
    hint per change reaches each of them once."""
    return f"queue.site.{site_id}"


def user_group(user_id: int) -> str:
    """Every socket of one account, on every device: closed when its sessions end."""
    return f"account.{user_id}"


def session_group(session_key: str) -> str:
    """The sockets of one signed-in session: closed when it logs out. Named by a hash, so the
    session key itself never travels through the channel layer."""
    return "session." + hashlib.sha256(session_key.encode()).hexdigest()[:40]


def sockets_close(*, user_id: int | None = None, session_key: str | None = None) -> None:
    """After commit, close the live sockets of an account (all its sessions) or of one
    session: the screens then show the lock or the sign-in page."""
    groups = []
    if user_id is not None:
        groups.append(user_group(user_id))
    if session_key:
        groups.append(session_group(session_key))
    message = {"type": SESSION_ENDED}
    transaction.on_commit(partial(_send_groups, groups, message, "session end"), robust=True)


def queue_changed(*, site_id: int, version: int) -> None:
    transaction.on_commit(partial(_send, site_id, version), robust=True)


def _send(site_id: int, version: int) -> None:
    message = {"type": QUEUE_CHANGED, "site": site_id, "version": version}
    what = f"queue change (site {site_id}, version {version})"
    _send_groups([site_group(site_id)], message, what)


def _send_groups(groups: list[str], message: dict, what: str) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    if isinstance(layer, InMemoryChannelLayer):
        try:
            async_to_sync(_deliver)(layer, groups, message)
        except Exception:  # the change is saved; screens catch up on their next sync
            logger.warning("Could not broadcast %s", what, exc_info=True)
        else:
            health.broadcast_sent()
        return
    _sender().submit(groups, message, what)


async def _deliver(layer, groups: list[str], message: dict) -> None:
    await asyncio.gather(*(layer.group_send(group, message) for group in groups))


# How long one hint may take before it is given up, and how many may wait behind it. A hint
# older than this is of little use: screens re-sync on their own timer.
HINT_TIMEOUT_SECONDS = 2.0
HINT_BACKLOG = 100
# How long a process that is exiting (a deploy, docker stop) waits for the hints it holds.
HINT_FLUSH_AT_EXIT_SECONDS = 1.0
# The least time between two queue-change hints for one site from one process. A change after
# a quiet spell goes out at once; under a burst, the changes that come within this time of the
# last hint wait for it to pass and go out as one hint, at the newest version. Screens may skip
# versions that way, never the last one, and every process reads each hint (channels-redis:
# several Redis round trips each) a few dozen times a second at most, not once per check-in.
HINT_SPACING_SECONDS = 0.05


class _HintSender:
    """One thread with its own event loop, sending hints in order, each within a deadline.

    Nothing here holds a request: `submit` only puts the hint on a bounded queue. A hint that
    fails or times out is logged once (it names a site id and a version, nothing about a
    person); while the queue is full, new hints are dropped and that is logged once until the
    sender catches up.
    """

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.hints: queue.Queue = queue.Queue(maxsize=HINT_BACKLOG)
        self.dropping = False
        self.thread = threading.Thread(target=self._run, name="realtime-hints", daemon=True)
        self.thread.start()
        # A hint held back for the spacing (or still waiting) goes out before the process
        # ends, so the other processes' screens get the last changes made here.
        atexit.register(self.wait, HINT_FLUSH_AT_EXIT_SECONDS)

    def submit(self, groups: list[str], message: dict, what: str) -> None:
        try:
            self.hints.put_nowait((groups, message, what))
        except queue.Full:
            if not self.dropping:
                self.dropping = True
                logger.warning(
                    "Live-update hints are being dropped: the channel layer is not keeping up "
                    "(%d waiting). Screens catch up on their next sync.",
                    HINT_BACKLOG,
                )

    def wait(self, timeout: float) -> bool:
        """Wait until every hint submitted before this call was sent or given up."""
        done = threading.Event()
        try:
            self.hints.put(done, timeout=timeout)
        except queue.Full:
            return False
        return done.wait(timeout)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        held: dict[int, tuple] = {}  # site id -> the newest queue change waiting for its turn
        sent_at: dict[int, float] = {}  # site id -> when its last queue change went out
        while True:
            due = [sent_at[site] + HINT_SPACING_SECONDS for site in held]
            wait = max(0.0, min(due) - time.monotonic()) if due else None
            try:
                item = self.hints.get(timeout=wait)
            except queue.Empty:
                item = None
            marker = isinstance(item, threading.Event)
            if item is not None and not marker:
                site = _site_of(item)
                now = time.monotonic()
                if site is None:  # a session ended: its sockets close at once
                    self._send(loop, *item)
                elif site in held:
                    held[site] = max(held[site], item, key=_version_of)
                elif now - sent_at.get(site, float("-inf")) < HINT_SPACING_SECONDS:
                    held[site] = item
                else:
                    sent_at[site] = now
                    self._send(loop, *item)
            # The held hints whose time has come; before a marker, all of them.
            for site in list(held):
                now = time.monotonic()
                if marker or now >= sent_at[site] + HINT_SPACING_SECONDS:
                    sent_at[site] = now
                    self._send(loop, *held.pop(site))
            if self.dropping and self.hints.empty():
                self.dropping = False
                logger.info("Live-update hints are no longer dropped: the backlog has cleared.")
            if marker:
                item.set()

    def _send(self, loop, groups: list[str], message: dict, what: str) -> None:
        layer = get_channel_layer()
        try:
            loop.run_until_complete(
                asyncio.wait_for(_deliver(layer, groups, message), HINT_TIMEOUT_SECONDS)
            )
        except Exception:  # the change is saved; screens catch up on their next sync
            logger.warning("Could not broadcast %s", what, exc_info=True)
        else:
            health.broadcast_sent()  # for /healthz/live/


def _site_of(hint: tuple) -> int | None:
    """The site of a queue-change hint (None for any other)."""
    _groups, message, _what = hint
    return message["site"] if message.get("type") == QUEUE_CHANGED else None


def _version_of(hint: tuple) -> int:
    return hint[1]["version"]


_sender_instance: _HintSender | None = None
_sender_lock = threading.Lock()


def _sender() -> _HintSender:
    global _sender_instance
    with _sender_lock:
        # A forked worker inherits the object but not its thread: it starts its own.
        if _sender_instance is None or _sender_instance.pid != os.getpid():
            _sender_instance = _HintSender()
        return _sender_instance


def hints_wait(timeout: float = 10.0) -> bool:
    """Wait until the hints handed to the background sender so far were sent or given up
    (tests and benchmarks; nothing in a request waits for this). False if it took longer."""
    if _sender_instance is None or _sender_instance.pid != os.getpid():
        return True
    return _sender_instance.wait(timeout)
