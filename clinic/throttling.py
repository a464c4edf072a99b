"""Login throttling (django-axes), the lockout log, and a director's unlock.

django-axes counts failed sign-ins per account and address together (settings.AXES_*): after
a few failures that account is locked *from that address* for a cool-off, so someone guessing
at one account from the clinic's shared address never locks the front desk out. Every lockout
is written to the lockout log (`LockoutEvent`), which the privacy officer reads; a director can
unlock an account that works at a site they direct, and that is logged too.
"""

import logging

from axes.models import AccessAttempt
from axes.signals import user_locked_out
from axes.utils import reset
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.dispatch import receiver
from django.http import JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _

from clinic.models import LockoutEvent
from clinic.sites import can

logger = logging.getLogger(__name__)

UNLOCK_PERM = "clinic.change_membership"  # a director's: manage who works at the site


def client_ip(request) -> str | None:
    """The address failures are counted against. Only REMOTE_ADDR: the ASGI server sets it
    from X-Forwarded-For for requests from the trusted proxy alone."""
    return request.META.get("REMOTE_ADDR") or None


def cooloff_minutes() -> int:
    return int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)


def lockout_message() -> str:
    return _(
        "Too many failed sign-ins for this account from this device. Try again in "
        "%(minutes)d minutes, or ask a director of your site to unlock it."
    ) % {"minutes": cooloff_minutes()}


def lockout_response(request, original_response=None, credentials=None):
    """What a locked-out sign-in gets: the sign-in page (or, for the screen lock's unlock, a
    JSON answer) saying so, with 429."""
    message = lockout_message()
    if "application/json" in request.headers.get("accept", ""):
        return JsonResponse({"ok": False, "locked": True, "error": message}, status=429)
    from clinic.login_views import blank_sign_in_form

    return render(
        request,
        "registration/login.html",
        {"form": blank_sign_in_form(request), "locked_message": message},
        status=429,
    )


@receiver(user_locked_out, dispatch_uid="clinic.lockout_record")
def _on_locked_out(sender, request=None, username=None, ip_address=None, **kwargs):
    lockout_record(username=username or "", ip_address=ip_address)


def lockout_record(*, username: str, ip_address: str | None) -> LockoutEvent | None:
    """Write a lockout to the log, once per lockout: further tries while it lasts extend it
    (django-axes) but add no row."""
    user = get_user_model().objects.filter(username=username).first() if username else None
    since = timezone.now() - settings.AXES_COOLOFF_TIME
    with transaction.atomic():
        last = (
            LockoutEvent.objects.filter(user=user, at__gte=since)
            .filter(ip_address=ip_address)
            .order_by("-at", "-pk")
            .first()
        )
        if last is not None and last.kind == LockoutEvent.Kind.LOCKED:
            return None
        event = LockoutEvent.objects.create(
            kind=LockoutEvent.Kind.LOCKED, user=user, ip_address=ip_address
        )
    logger.warning(
        "Sign-in locked after repeated failures: account %s from %s",
        user.pk if user else "(no such account)",
        ip_address,
    )
    return event


def locked_out_usernames(usernames) -> set[str]:
    """Which of these usernames are locked from at least one address right now."""
    since = timezone.now() - settings.AXES_COOLOFF_TIME
    return set(
        AccessAttempt.objects.filter(
            username__in=list(usernames),
            failures_since_start__gte=settings.AXES_FAILURE_LIMIT,
            attempt_time__gte=since,
        ).values_list("username", flat=True)
    )


def account_unlock(*, user, by, site) -> LockoutEvent:
    """Let `user` try to sign in again from every address. Only a director of `site`, for an
    account that works there. Logged."""
    if not can(by, UNLOCK_PERM, site) or not user.memberships.filter(site=site).exists():
        raise ValidationError(
            _("Only a director of a site this person works at can unlock their account."),
            code="not_allowed",
        )
    with transaction.atomic():
        reset(username=user.get_username())
        return LockoutEvent.objects.create(kind=LockoutEvent.Kind.UNLOCKED, user=user, by=by)


def lockouts_for(site):
    """The lockout log as the privacy officer of `site` reads it: lockouts and unlocks of the
    accounts that work there, and lockouts of names that match no account (which belong to
    no site)."""
    works_here = get_user_model().objects.filter(memberships__site=site).values("pk")
    return (
        LockoutEvent.objects.filter(Q(user__in=works_here) | Q(user__isnull=True))
        .select_related("user", "by")
        .order_by("-at", "-pk")
    )
