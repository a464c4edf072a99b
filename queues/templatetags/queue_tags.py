from django import template
from django.utils.translation import ngettext

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


@register.filter
def get_item(mapping, key):
    return mapping.get(key, "") if mapping else ""
