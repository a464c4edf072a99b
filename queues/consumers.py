"""Websocket consumers for staff boards and waiting-room displays.

They only read. Every change goes through a POST and a service; the socket carries the
resulting snapshots. Authorisation happens before a socket joins a group.
"""

import json
import logging

from asgiref.sync import async_to_sync
from channels.generic.websocket import JsonWebsocketConsumer
from django.contrib.auth import (
    BACKEND_SESSION_KEY,
    HASH_SESSION_KEY,
    SESSION_KEY,
    get_user_model,
)
from django.template.loader import render_to_string
from django.utils.crypto import constant_time_compare

from clinic.models import Site
from clinic.sites import can
from queues import realtime
from queues.selectors import display_snapshot, queue_snapshot, queue_version

logger = logging.getLogger(__name__)

CLOSE_FORBIDDEN = 4403
# The session ended (signed out, signed out everywhere, password or roles changed): the page
# shows the sign-in or the screen lock instead of reloading.
CLOSE_SESSION_ENDED = 4401


class _QueueSocket(JsonWebsocketConsumer):
    """Shared parts: tolerant frame parsing, version tracking, re-joining the group on sync."""

    group: str | None = None
    sent_version = -1
    # How a socket that is no longer allowed is closed (still_allowed may say why).
    close_code = CLOSE_FORBIDDEN

    def receive(self, text_data=None, bytes_data=None, **kwargs):
        # Malformed frames are ignored, never fatal: a buggy or hostile client cannot crash us.
        try:
            content = json.loads(text_data or "")
        except (TypeError, ValueError, RecursionError):  # RecursionError: absurdly deep nesting
            return
        if isinstance(content, dict):
            self.receive_json(content)

    def receive_json(self, content, **kwargs):
        if content.get("type") != "sync":
            return
        if not self.still_allowed():
            self.close(code=self.close_code)
            return
        # Re-joining is idempotent and repairs membership lost when Redis restarted.
        self.join_group()
        known = content.get("version")
        if not isinstance(known, int) or known != queue_version(self.site.pk):
            self.send_snapshot()

    def queue_changed(self, event):
        if event.get("version", 0) <= self.sent_version:
            return  # an earlier snapshot already included this change
        if not self.still_allowed():
            self.close(code=self.close_code)
            return
        self.send_snapshot()

    def join_group(self):
        async_to_sync(self.channel_layer.group_add)(self.group, self.channel_name)

    def disconnect(self, code):
        if self.group:
            try:
                async_to_sync(self.channel_layer.group_discard)(self.group, self.channel_name)
            except Exception:
                logger.info("Could not leave %s on disconnect", self.group, exc_info=True)

    def still_allowed(self) -> bool:
        raise NotImplementedError

    def send_snapshot(self):
        raise NotImplementedError


class BoardConsumer(_QueueSocket):
    """/ws/queue/<site>/ — the live queue for signed-in staff of that site."""

    def connect(self):
        user = self.scope.get("user")
        slug = self.scope["url_route"]["kwargs"]["site"]
        self.site = Site.objects.filter(slug=slug, is_active=True).first()
        if user is None or not can(user, "queue.view_queue", self.site):
            self.close(code=CLOSE_FORBIDDEN)
            return
        self.user = user
        self.group = realtime.staff_group(self.site.pk)
        self.join_group()
        # Ending the session or every session of the account closes this socket at once.
        self.account_groups = [realtime.user_group(user.pk)]
        session_key = self.scope["session"].session_key
        if session_key:
            self.account_groups.append(realtime.session_group(session_key))
        for group in self.account_groups:
            async_to_sync(self.channel_layer.group_add)(group, self.channel_name)
        self.accept()
        self.send_snapshot()

    def session_ended(self, event):
        self.close(code=CLOSE_SESSION_ENDED)

    def disconnect(self, code):
        super().disconnect(code)
        for group in getattr(self, "account_groups", ()):
            try:
                async_to_sync(self.channel_layer.group_discard)(group, self.channel_name)
            except Exception:
                logger.info("Could not leave %s on disconnect", group, exc_info=True)

    def still_allowed(self) -> bool:
        """The session still exists and its user still works here with the same role. A
        session that has ended (signed out, expired after the idle time, password changed)
        closes with 4401, so the page shows the screen lock; a lost role with 4403."""
        self.close_code = CLOSE_SESSION_ENDED
        session = self.scope.get("session")
        if session is None:
            return False
        session_key = session.session_key
        if not session_key or not session.exists(session_key):
            return False
        fresh = session.__class__(session_key)
        if str(fresh.get(SESSION_KEY)) != str(self.user.pk) or not fresh.get(BACKEND_SESSION_KEY):
            return False
        # scope["user"] is Channels' lazy wrapper, whose type has no manager: ask the model.
        user = get_user_model().objects.filter(pk=self.user.pk).first()
        if user is None or not constant_time_compare(
            fresh.get(HASH_SESSION_KEY, ""), user.get_session_auth_hash()
        ):
            return False
        self.user = user
        self.close_code = CLOSE_FORBIDDEN
        return can(user, "queue.view_queue", self.site)

    def send_snapshot(self):
        snapshot = queue_snapshot(site=self.site)
        html = render_to_string(
            "queues/_board_live.html",
            {"snapshot": snapshot, "perms_here": board_permissions(self.user, self.site)},
        )
        self.sent_version = snapshot.version
        self.send_json({"type": "snapshot", "version": snapshot.version, "html": html})


class DisplayConsumer(_QueueSocket):
    """/ws/display/<token>/ — the waiting-room TV: ticket codes and rooms only."""

    def connect(self):
        self.token = self.scope["url_route"]["kwargs"]["token"]
        self.site = Site.objects.filter(display_token=self.token, is_active=True).first()
        if self.site is None:
            self.close(code=CLOSE_FORBIDDEN)
            return
        self.group = realtime.display_group(self.site.pk)
        self.join_group()
        self.accept()
        self.send_snapshot()

    def still_allowed(self) -> bool:
        # A rotated link disconnects every screen that still uses the old one.
        return Site.objects.filter(
            pk=self.site.pk, display_token=self.token, is_active=True
        ).exists()

    def send_snapshot(self):
        snapshot = display_snapshot(site=self.site)
        html = render_to_string("queues/_display_live.html", {"display": snapshot})
        self.sent_version = snapshot.version
        self.send_json({"type": "snapshot", "version": snapshot.version, "html": html})


def board_permissions(user, site) -> dict[str, bool]:
    return {
        "call": can(user, "queue.call_arrival", site),
        "presence": can(user, "queue.mark_presence", site),
        "close_day": can(user, "queue.close_day", site),
        "check_in": can(user, "queue.check_in", site),
    }
