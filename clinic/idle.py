"""The screen lock's server half: a signed-in session lasts only as long as its person is idle.

Every request the person made (a page, a form, the page's activity ping) sets the session to
expire after their idle time at the current site: the shortest of the roles they hold there
(settings.IDLE_MINUTES, or IDLE_SECONDS for tests and demos). Requests a page makes by itself
(the board's polling fallback) say so with the `X-Threshold-Background: 1` header and extend
nothing, so a screen left alone is signed out on the server even while it keeps polling.
However active, a sign-in still ends SESSION_COOKIE_AGE after it began.

The browser half is static/js/lock.js: it hides the page before the server lets go, and the
unlock (clinic/lock_views.py) signs the same person in again without losing the page.
"""

import time

from django.conf import settings
from django.contrib.auth import logout
from django.core import signing
from django.utils.functional import cached_property

from clinic.sites import SESSION_SITE_KEY, current_site, roles_at, user_sites

BACKGROUND_HEADER = "X-Threshold-Background"
# [user id, the site chosen in the session (None: their home site), idle seconds there]
SESSION_IDLE_KEY = "threshold_idle"
# When this sign-in began (seconds since the epoch): SESSION_COOKIE_AGE counts from here.
SESSION_SIGNED_IN_KEY = "threshold_signed_in"
# Until when the session was last written to last (seconds since the epoch): session_extend.
SESSION_UNTIL_KEY = "threshold_until"
_UNLOCK_SALT = "clinic.idle.unlock"


def idle_limits() -> dict[str, int]:
    """Seconds of idleness each role allows."""
    override = settings.IDLE_SECONDS
    return {role: override or minutes * 60 for role, minutes in settings.IDLE_MINUTES.items()}


def idle_seconds(user, site) -> int:
    """How long `user` may be idle at `site`: the shortest of the roles they hold there; the
    shortest of all when they hold none there (nothing to go on, so the strictest)."""
    limits = idle_limits()
    return min(
        (limits[role] for role in roles_at(user, site) if role in limits),
        default=min(limits.values()),
    )


def is_background(request) -> bool:
    # A browser's report of a Content-Security-Policy violation (clinic/csp.py) is sent by the
    # browser itself, never by the person.
    return (
        request.headers.get(BACKGROUND_HEADER) == "1"
        or request.content_type == "application/csp-report"
    )


def session_idle_seconds(request) -> int:
    """The signed-in user's idle time at the site this session is for. Worked out at sign-in
    and after a site switch, then kept in the session (no query on other requests)."""
    marker = [request.user.pk, request.session.get(SESSION_SITE_KEY)]
    kept = request.session.get(SESSION_IDLE_KEY)
    if isinstance(kept, list) and kept[:2] == marker and isinstance(kept[-1], int):
        return kept[-1]
    seconds = idle_seconds(request.user, current_site(request))
    request.session[SESSION_IDLE_KEY] = [*marker, seconds]
    return seconds


def session_signed_in(request) -> None:
    """At every sign-in (the user_logged_in signal): the longest sign-in counts from now, and
    the idle time is worked out afresh (roles may have changed since the last one)."""
    request.session[SESSION_SIGNED_IN_KEY] = int(time.time())
    request.session.pop(SESSION_IDLE_KEY, None)


def session_slack(idle: int) -> int:
    """How much longer than the idle time a session may be kept, so that it need not be
    written again on every request: a tenth of the idle time, at most a minute."""
    return min(60, idle // 10)


def session_extend(request) -> None:
    """The person did something: the session now ends no sooner than their idle time from now
    (and never later than SESSION_COOKIE_AGE after the sign-in).

    It is written with a little slack (`session_slack`) and written again only once less than
    the idle time is left, or when the idle time got shorter: not on every request. So the
    server ends an idle session between its idle time and that plus the slack; the screen
    itself locks at the idle time (static/js/lock.js), which nothing here delays."""
    session = request.session
    now = time.time()
    signed_in = session.setdefault(SESSION_SIGNED_IN_KEY, int(now))
    left = signed_in + settings.SESSION_COOKIE_AGE - now
    idle = session_idle_seconds(request)
    wanted = max(1, min(idle, left))
    until = session.get(SESSION_UNTIL_KEY)
    slack = session_slack(idle)
    if (
        not session.modified
        and isinstance(until, int | float)
        and wanted <= until - now <= wanted + slack
    ):
        return
    seconds = max(1, int(min(idle + slack, left)))
    session.set_expiry(seconds)
    # What the session now lasts until at the least (it is saved a moment after this).
    session[SESSION_UNTIL_KEY] = int(now) + seconds


def _sign_in_too_old(request) -> bool:
    signed_in = request.session.get(SESSION_SIGNED_IN_KEY)
    return isinstance(signed_in, int) and time.time() > signed_in + settings.SESSION_COOKIE_AGE


class IdleSessionMiddleware:
    """Sessions expire after their person's idle time; only the person's own requests extend
    them. Also gives templates `request.screen_lock` (what lock.js needs)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.user.is_authenticated and _sign_in_too_old(request):
            logout(request)
        request.screen_lock = ScreenLock(request)
        response = self.get_response(request)
        if not is_background(request) and request.user.is_authenticated:
            session_extend(request)
        return response


class ScreenLock:
    """What a signed-in page hands lock.js: the idle time, and a signed note of whose page
    it is and which site it was for (so that only that person can unlock it, and the unlock
    can put the site back). Their room needs no note: it is kept in the database
    (queues.models.StaffRoom)."""

    def __init__(self, request):
        self.request = request

    @cached_property
    def idle_seconds(self) -> int:
        return session_idle_seconds(self.request)

    @property
    def csrf_cookie_name(self) -> str:
        return settings.CSRF_COOKIE_NAME

    @cached_property
    def token(self) -> str:
        session = self.request.session
        return unlock_token(user_id=self.request.user.pk, site_id=session.get(SESSION_SITE_KEY))


def unlock_token(*, user_id: int, site_id: int | None) -> str:
    return signing.dumps([user_id, site_id], salt=_UNLOCK_SALT, compress=False)


def unlock_token_read(token: str) -> tuple[int, int | None] | None:
    """(user id, site id) from a page's token, or None when it is forged, broken or older than
    the longest sign-in. A page made before rooms moved to the database carries a room id
    too, ignored: that page still unlocks."""
    try:
        value = signing.loads(token, salt=_UNLOCK_SALT, max_age=settings.SESSION_COOKIE_AGE)
    except signing.BadSignature:
        return None
    if not (isinstance(value, list) and len(value) in (2, 3) and isinstance(value[0], int)):
        return None
    user_id, site_id = value[:2]
    return user_id, site_id if isinstance(site_id, int) else None


def session_restore(request, *, site_id: int | None) -> None:
    """After an unlock: the site the page was on, where the user still holds a role there.
    No site noted: the page was for their home site, which the new session starts on."""
    if site_id is None:
        return
    site = user_sites(request.user).filter(pk=site_id).first()
    if site is not None:
        request.session[SESSION_SITE_KEY] = site.pk
