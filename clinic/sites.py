"""Which site a staff member is acting for, and the one permission check everything uses.

Roles are held per site (Membership.roles). `can(user, perm, site)` is true only when a role
the user holds *at that site* grants `perm`: a role at another site, a global group, a
permission given to the account directly and `is_superuser` count for nothing.
"""

from functools import wraps

from django.contrib.auth.models import Permission
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.db.models import Aggregate, CharField, F, Func, Min, Value

from clinic import roles
from clinic.models import Membership, Site

SESSION_SITE_KEY = "threshold_site_id"


def _is_staff_user(user) -> bool:
    return user is not None and user.is_authenticated and user.is_active


def user_sites(user):
    """The active sites where the user holds a role, by name; each annotated with `joined`,
    the id of the user's membership there (to find the one they were given first)."""
    if not _is_staff_user(user):
        return Site.objects.none()
    return _sites_of(user.pk)


def _sites_of(user_id: int):
    return (
        Site.objects.filter(
            memberships__user_id=user_id, memberships__roles__isnull=False, is_active=True
        )
        .annotate(joined=Min("memberships__id"))
        .order_by("name")
    )


def current_site(request) -> Site | None:
    """The site chosen in this session, else the user's home site: the one where they were
    first given a membership (not the first by name: a director later added to other sites
    keeps landing where they work)."""
    return _chosen(request, list(user_sites(request.user)))


def _chosen(request, sites: list[Site]) -> Site | None:
    if not sites:
        return None
    wanted = request.session.get(SESSION_SITE_KEY)
    for site in sites:
        if site.pk == wanted:
            return site
    return min(sites, key=lambda site: site.joined)


def can(user, perm: str, site: Site | None) -> bool:
    """True when a role the user holds at `site` grants `perm` (e.g. "queue.call_arrival").

    One query. No superuser shortcut: an account acts at a site only through its roles there.
    """
    if site is None or not _is_staff_user(user):
        return False
    app_label, codename = perm.split(".")
    return Membership.objects.filter(
        user=user,
        site=site,
        site__is_active=True,
        roles__permissions__codename=codename,
        roles__permissions__content_type__app_label=app_label,
    ).exists()


def request_site_perms(request) -> frozenset[str]:
    """site_perms for the request's user at request.site, asked once per request (the page
    and its navigation both need them; site_permission_required has them already)."""
    held = getattr(request, "_site_perms", None)
    if held is None:
        held = request._site_perms = site_perms(request.user, getattr(request, "site", None))
    return held


def site_perms(user, site: Site | None) -> frozenset[str]:
    """Every permission ("app_label.codename") the user's roles at `site` grant, in one query:
    for pages that ask many questions at once (the navigation)."""
    if site is None or not _is_staff_user(user):
        return frozenset()
    rows = (
        Permission.objects.filter(
            group__memberships__user=user,
            group__memberships__site=site,
            group__memberships__site__is_active=True,
        )
        .values_list("content_type__app_label", "codename")
        .distinct()
    )
    return frozenset(f"{app_label}.{codename}" for app_label, codename in rows)


def roles_at(user, site: Site | None) -> frozenset[str]:
    """The names of the roles the user holds at `site`."""
    if site is None or not _is_staff_user(user):
        return frozenset()
    return frozenset(
        Membership.objects.filter(user=user, site=site, site__is_active=True).values_list(
            "roles__name", flat=True
        )
    ) - {None}


def staff_who_can(perm: str, site: Site):
    """The active accounts whose roles at `site` grant `perm` (e.g. who may take a person
    over in a hand-off)."""
    from django.contrib.auth import get_user_model

    app_label, codename = perm.split(".")
    return (
        get_user_model()
        .objects.filter(
            is_active=True,
            memberships__site=site,
            memberships__roles__permissions__codename=codename,
            memberships__roles__permissions__content_type__app_label=app_label,
        )
        .distinct()
    )


def directed_sites(user):
    """The sites (active or not) where the user holds the director role: the ones whose
    settings and staff they manage, in the admin and in the product."""
    if not _is_staff_user(user):
        return Site.objects.none()
    return Site.objects.filter(
        memberships__user=user, memberships__roles__name=roles.DIRECTOR
    ).distinct()


class _JoinedDistinct(Aggregate):
    """The distinct values of a text expression, joined by commas."""

    function = "STRING_AGG"
    template = "%(function)s(DISTINCT %(expressions)s, ',')"
    output_field = CharField()

    def as_sqlite(self, compiler, connection, **extra_context):
        return super().as_sql(
            compiler,
            connection,
            function="GROUP_CONCAT",
            template="%(function)s(DISTINCT %(expressions)s)",
            **extra_context,
        )


def _sites_with_perms_query(user_id: int):
    """The query of sites_with_perms, for the account `user_id`."""
    perm = "memberships__roles__permissions__"
    return _sites_of(user_id).annotate(
        # `||` on both databases: NULL (a role that grants nothing) stays NULL, and the
        # aggregate leaves it out.
        granted=_JoinedDistinct(
            Func(
                F(f"{perm}content_type__app_label"),
                Value("."),
                F(f"{perm}codename"),
                template="(%(expressions)s)",
                arg_joiner=" || ",
                output_field=CharField(),
            )
        )
    )


# The query compiled once per database vendor, with this stand-in for the account's id: the
# ORM took about 2 ms to compile it, on every request to every staff page.
_ANY_USER = -7_919_347_211
_compiled: dict[str, tuple[str, tuple]] = {}


def sites_with_perms(user) -> list[Site]:
    """user_sites, each with `perms`: every permission ("app_label.codename") the user's roles
    there grant. One query, for every request a page is checked for."""
    if not _is_staff_user(user):
        return []
    compiled = _compiled.get(connection.vendor)
    if compiled is None:
        query = _sites_with_perms_query(_ANY_USER).query
        compiled = _compiled[connection.vendor] = query.sql_with_params()
    sql, params = compiled
    sites = list(Site.objects.raw(sql, [user.pk if p == _ANY_USER else p for p in params]))
    for site in sites:
        site.perms = frozenset(site.granted.split(",")) if site.granted else frozenset()
    return sites


def site_permission_required(*perms: str):
    """View decorator: sets request.site, or 403 unless a role the user holds at the current
    site grants one of `perms` (login page for anonymous users).

    One query: the user's sites, each with what their roles there grant (`sites_with_perms`).
    They are kept as request.user_sites for the page's site menu, and the permissions at the
    current site for the page and its navigation (request_site_perms)."""

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            sites = sites_with_perms(request.user)
            site = _chosen(request, sites)
            if site is None or not any(perm in site.perms for perm in perms):
                raise PermissionDenied
            request.site, request.user_sites = site, sites
            request._site_perms = site.perms
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


class SitePerms:
    """What the templates' `perms` means here: `{% if perms.visits.record_visit %}` is true
    only through a role at the current site (Django's own `perms` asks the account's global
    permissions, which grant nothing in this project)."""

    def __init__(self, held: frozenset[str]):
        self.held = held

    def __getitem__(self, app_label: str):
        return _AppPerms(self.held, app_label)

    def __contains__(self, perm: str) -> bool:
        if "." in perm:
            return perm in self.held
        return any(p.startswith(perm + ".") for p in self.held)

    def __bool__(self) -> bool:
        return bool(self.held)

    def __iter__(self):
        raise TypeError("SitePerms is not iterable.")


class _AppPerms:
    def __init__(self, held: frozenset[str], app_label: str):
        self.held, self.app_label = held, app_label

    def __getitem__(self, codename: str) -> bool:
        return f"{self.app_label}.{codename}" in self.held

    def __bool__(self) -> bool:
        return any(p.startswith(self.app_label + ".") for p in self.held)

    def __iter__(self):
        raise TypeError("Permissions are not iterable.")
