"""The only code that talks to the channel layer.

Services call `queue_changed` as their last step; the hint goes out after commit and carries a
site id and a version, never anything about a person. Screens fetch what changed from the
database (the source of truth), so a lost hint costs a few seconds, never a person: every
screen also re-syncs on a timer and on reconnect.
"""

import logging
from functools import partial

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)

QUEUE_CHANGED = "queue.changed"


def staff_group(site_id: int) -> str:
    return f"queue.staff.{site_id}"


def display_group(site_id: int) -> str:
    return f"queue.display.{site_id}"


def queue_changed(*, site_id: int, version: int) -> None:
    transaction.on_commit(partial(_send, site_id, version), robust=True)


def _send(site_id: int, version: int) -> None:
    message = {"type": QUEUE_CHANGED, "site": site_id, "version": version}
    layer = get_channel_layer()
    if layer is None:
        return
    for group in (staff_group(site_id), display_group(site_id)):
        try:
            async_to_sync(layer.group_send)(group, message)
        except Exception:  # the change is saved; screens catch up on their next sync
            logger.warning(
                "Could not broadcast queue change (site %s, version %s) to %s",
                site_id,
                version,
                group,
                exc_info=True,
            )
