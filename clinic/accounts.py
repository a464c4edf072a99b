"""Staff accounts' sessions: kept track of so that they can all be ended at once.

Every sign-in records its session (`session_track`, from the `user_logged_in` signal, so every
way of signing in is covered). `sessions_end` ends them: the session rows are deleted, so the
next request of any of those browsers is anonymous, and their live sockets are closed at once
through the channel layer. It runs on "sign out everywhere", on a password set by anyone, and
when a role or a membership is taken away or the account is deactivated. Signing out closes
the sockets of that one session.
"""

from importlib import import_module

from django.conf import settings
from django.contrib.sessions.models import Session
from django.db import transaction
from django.utils import timezone

from clinic.models import StaffSession
from queues import realtime


def _store(session_key: str):
    return import_module(settings.SESSION_ENGINE).SessionStore(session_key=session_key)


def session_track(*, request, user) -> None:
    """Remember that `user` is signed in with this request's session (after login, or after a
    password change gave the session a new key). Forgets their sessions that have expired."""
    key = request.session.session_key
    if not key:
        return
    with transaction.atomic():
        live = Session.objects.filter(expire_date__gt=timezone.now()).values("session_key")
        StaffSession.objects.filter(user=user).exclude(session_key__in=live).exclude(
            session_key=key
        ).delete()
        StaffSession.objects.update_or_create(
            session_key=key,
            defaults={
                "user": user,
                "user_agent": request.headers.get("user-agent", "")[:200],
            },
        )


def session_forget(*, request) -> None:
    """On sign-out: forget this session and close its sockets (its other data is flushed by
    Django's logout)."""
    key = request.session.session_key
    if not key:
        return
    StaffSession.objects.filter(session_key=key).delete()
    realtime.sockets_close(session_key=key)


def sessions_end(*, user, keep=None) -> int:
    """End every session of `user` except `keep` (a session key: the page that asked, e.g. after
    changing one's own password). Returns how many ended. Their sockets close at once."""
    with transaction.atomic():
        rows = StaffSession.objects.select_for_update().filter(user=user)
        if keep:
            rows = rows.exclude(session_key=keep)
        keys = list(rows.values_list("session_key", flat=True))
        for key in keys:
            _store(key).delete()
            realtime.sockets_close(session_key=key)
        rows.delete()
        if not keep:
            # Also sockets of sessions begun before sessions were tracked.
            realtime.sockets_close(user_id=user.pk)
    return len(keys)
