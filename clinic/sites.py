"""Which site a staff member is acting for, and the one permission check views use."""

from functools import wraps

from django.contrib.auth.models import Permission
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.db.models import Min, Q

from clinic.models import Site

SESSION_SITE_KEY = "threshold_site_id"


def user_sites(user):
    """The active sites where the user has a membership, by name; each annotated with
    `joined`, the id of the user's (first) membership there."""
    if not user.is_authenticated or not user.is_active:
        return Site.objects.none()
    return (
        Site.objects.filter(memberships__user=user, is_active=True)
        .annotate(joined=Min("memberships__id"))
        .order_by("name")
    )


def current_site(request) -> Site | None:
    """The site chosen in this session, else the user's home site: the one where they were
    first given a membership (not the first by name: a director later added to other sites
    keeps landing where they work)."""
    sites = list(user_sites(request.user))
    if not sites:
        return None
    wanted = request.session.get(SESSION_SITE_KEY)
    for site in sites:
        if site.pk == wanted:
            return site
    return min(sites, key=lambda site: site.joined)


def can(user, perm: str, site: Site | None) -> bool:
    """True when the user holds `perm` through a role *and* works at `site`.

    Superusers pass Django's has_perm for everything; they still need a membership, so no
    account sees a site's people without belonging to that site.
    """
    if site is None or not user.is_authenticated or not user.is_active:
        return False
    if not user.has_perm(perm):
        return False
    return user.memberships.filter(site=site, site__is_active=True).exists()


def holds_role(user, perm: str, site: Site | None) -> bool:
    """Like `can`, but the permission must come through a role (or be granted directly):
    `is_superuser` counts for nothing. For the consent gate's people, where no account may act
    just for being a superuser (RELEASES.md)."""
    if site is None or user is None or not user.is_authenticated or not user.is_active:
        return False
    app_label, codename = perm.split(".")
    held = (
        Permission.objects.filter(content_type__app_label=app_label, codename=codename)
        .filter(Q(group__user=user) | Q(user=user))
        .exists()
    )
    return held and user.memberships.filter(site=site, site__is_active=True).exists()


def role_required(*perms: str):
    """View decorator: sets request.site, or 403 unless the user holds one of `perms` through a
    role at the current site (login page for anonymous users). No superuser shortcut."""

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            site = current_site(request)
            if not any(holds_role(request.user, perm, site) for perm in perms):
                raise PermissionDenied
            request.site = site
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def site_permission_required(perm: str):
    """View decorator: sets request.site or answers 403 (login page for anonymous users)."""

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            site = current_site(request)
            if not can(request.user, perm, site):
                raise PermissionDenied
            request.site = site
            return view(request, *args, **kwargs)

        return wrapped

    return decorator
