import zoneinfo

from django import template
from django.utils import formats, timezone
from django.utils.translation import gettext, ngettext

register = template.Library()


@register.filter
def minutes_waiting(since, now) -> int:
    if not since or not now:
        return 0
    return max(0, int((now - since).total_seconds() // 60))


@register.simple_tag
def wait_label(since, now) -> str:
    minutes = minutes_waiting(since, now)
    if minutes < 60:
        return ngettext("%(m)d min", "%(m)d min", minutes) % {"m": minutes}
    return ngettext("%(h)d h %(m)02d", "%(h)d h %(m)02d", minutes // 60) % {
        "h": minutes // 60,
        "m": minutes % 60,
    }


@register.simple_tag
def board_rows(snapshot, perms):
    """The board's rows, written by queues/board.py (a template loop cost too much per row)."""
    from queues.board import board_rows as write_rows  # queues.board uses this module

    return write_rows(snapshot, perms)


@register.filter
def get_item(mapping, key):
    return mapping.get(key, "") if mapping else ""


@register.filter
def days_ago(value, tz_name: str = "") -> str:
    """A past moment as a day people say: today, yesterday, 6 days ago, or the date."""
    if not value:
        return ""
    tz = zoneinfo.ZoneInfo(tz_name) if tz_name else timezone.get_current_timezone()
    days = (timezone.localdate(timezone.now(), tz) - timezone.localdate(value, tz)).days
    if days <= 0:
        return gettext("today")
    if days == 1:
        return gettext("yesterday")
    if days < 60:
        return ngettext("%(d)d day ago", "%(d)d days ago", days) % {"d": days}
    return formats.date_format(timezone.localdate(value, tz), "j M Y")
