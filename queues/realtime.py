"""The only code that talks to the channel layer.

Services call `queue_changed` as their last step; the hint goes out after commit and carries a
site id and a version, never anything about a person. Screens fetch what changed from the
database (the source of truth), so a lost hint costs a few seconds, never a person: every
screen also re-syncs on a timer and on reconnect.
"""

import hashlib
import logging
from functools import partial

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)

QUEUE_CHANGED = "queue.changed"
SESSION_ENDED = "session.ended"


def staff_group(site_id: int) -> str:
    return f"queue.staff.{site_id}"


def display_group(site_id: int) -> str:
    return f"queue.display.{site_id}"


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
    _send_groups([staff_group(site_id), display_group(site_id)], message, what)


def _send_groups(groups: list[str], message: dict, what: str) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    for group in groups:
        try:
            async_to_sync(layer.group_send)(group, message)
        except Exception:  # the change is saved; screens catch up on their next sync
            logger.warning("Could not broadcast %s to %s", what, group, exc_info=True)
