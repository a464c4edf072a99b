"""The admin, scoped like the product.

Who gets in: an active account that is a superuser (the installation's operators, who set up
sites and their first director) or that directs at least one site; `is_staff` plays no part.
Signing in and out goes through the product's own pages (`/login/`, with its throttling and
second factor, and `/logout/`); the admin has no login form of its own. Anonymous visitors are
sent to `/login/?next=…`; signed-in accounts without access get 403.

What a director sees and changes: every ModelAdmin here derives from `ScopedAdmin` and shows
and changes only objects at the sites where the user's roles grant the model's permission
(`clinic.roles.ROLE_PERMISSIONS`, e.g. clinic.change_site for a director), among the sites
they direct. Superusers see every site. A ModelAdmin registered by another app that does not
derive from `ScopedAdmin` (Django's own groups, anything added later) is for superusers only.
"""

from dataclasses import dataclass
from functools import update_wrapper

from django.contrib import admin
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpResponseRedirect
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache

from clinic.accounts import session_track, sessions_end
from clinic.models import Site
from clinic.sites import directed_sites

_CACHE = "_threshold_admin_scope"


def admin_access(request) -> bool:
    """An active superuser, or an active account directing at least one site."""
    user = request.user
    if not (user.is_authenticated and user.is_active):
        return False
    cache = request.__dict__.setdefault(_CACHE, {})
    if "access" not in cache:
        cache["access"] = user.is_superuser or directed_sites(user).exists()
    return cache["access"]


@dataclass(frozen=True)
class Scope:
    """The sites where a permission holds for the request's user (every site: superusers)."""

    everywhere: bool
    site_ids: frozenset[int]

    def __bool__(self) -> bool:
        return self.everywhere or bool(self.site_ids)

    def allows(self, site_id) -> bool:
        return self.everywhere or site_id in self.site_ids

    def filter(self, queryset: QuerySet, lookup: str) -> QuerySet:
        """`queryset` limited to rows whose `lookup` (a path to a Site) is in scope."""
        if self.everywhere:
            return queryset
        return queryset.filter(**{f"{lookup}__in": self.site_ids})

    def sites(self) -> QuerySet:
        return self.filter(Site.objects.all(), "pk")


def scope(request, perm: str) -> Scope:
    """Where `perm` ("app_label.codename") holds for the request's user in the admin: among the
    sites they direct, those where a role they hold there grants it. Cached per request."""
    user = request.user
    if not admin_access(request):
        return Scope(False, frozenset())
    if user.is_superuser:
        return Scope(True, frozenset())
    cache = request.__dict__.setdefault(_CACHE, {})
    if perm not in cache:
        app_label, codename = perm.split(".")
        granted = Site.objects.filter(
            memberships__user=user,
            memberships__roles__permissions__codename=codename,
            memberships__roles__permissions__content_type__app_label=app_label,
        )
        ids = directed_sites(user).filter(pk__in=granted).values_list("pk", flat=True)
        cache[perm] = Scope(False, frozenset(ids))
    return cache[perm]


class ScopedAdmin:
    """For ModelAdmins and inlines of objects that belong to a site.

    `site_lookup` is the path from the model to its Site ("pk" for Site itself). Permissions
    come from `scope()`; an object outside the user's scope is 404 on every view.
    """

    site_lookup = "site"

    def scope(self, request, action: str) -> Scope:
        return scope(request, f"{self.opts.app_label}.{action}_{self.opts.model_name}")

    def get_queryset(self, request):
        return self.scope(request, "view").filter(super().get_queryset(request), self.site_lookup)

    def in_scope(self, scope: Scope, obj) -> bool:
        """Whether `obj` (of this admin's model, or the parent object for an inline) is at a
        site in `scope`."""
        if isinstance(obj, Site):
            return scope.allows(obj.pk)
        return scope.allows(getattr(obj, f"{self.site_lookup}_id"))

    def allowed(self, request, action: str, obj=None) -> bool:
        found = self.scope(request, action)
        return bool(found) if obj is None else self.in_scope(found, obj)

    def has_module_permission(self, request):
        return bool(self.scope(request, "view"))

    def has_view_permission(self, request, obj=None):
        return self.allowed(request, "view", obj) or self.allowed(request, "change", obj)

    def has_change_permission(self, request, obj=None):
        return self.allowed(request, "change", obj)

    def has_delete_permission(self, request, obj=None):
        return self.allowed(request, "delete", obj)

    def _get_obj_does_not_exist_redirect(self, request, opts, object_id):
        # Django answers an unknown id with a redirect and "doesn't exist. Perhaps it was
        # deleted?"; here an object of another site is simply not found.
        raise Http404


class ScopedModelAdmin(ScopedAdmin, admin.ModelAdmin):
    def has_add_permission(self, request):
        return self.allowed(request, "add")


class ScopedInline(ScopedAdmin):
    """Inline permissions are asked with the parent object (a Site, or an account)."""

    def has_add_permission(self, request, obj):
        return self.allowed(request, "add", obj)


class OperatorOnly:
    """A ModelAdmin that is not scoped to sites: superusers only."""

    def _operator(self, request) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_module_permission(self, request):
        return self._operator(request) and super().has_module_permission(request)

    def has_view_permission(self, request, obj=None):
        return self._operator(request) and super().has_view_permission(request, obj)

    def has_add_permission(self, request, *args):
        return self._operator(request) and super().has_add_permission(request, *args)

    def has_change_permission(self, request, obj=None):
        return self._operator(request) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._operator(request) and super().has_delete_permission(request, obj)


class ThresholdAdminSite(admin.AdminSite):
    site_header = _("Threshold administration")
    site_title = _("Threshold administration")
    index_title = _("Sites and staff")
    # Directors have three pages here; the sidebar would only narrow the membership tables.
    enable_nav_sidebar = False

    def register(self, model_or_iterable, admin_class=None, **options):
        admin_class = admin_class or admin.ModelAdmin
        if not issubclass(admin_class, (ScopedAdmin, OperatorOnly)):
            admin_class = type(
                admin_class.__name__,
                (OperatorOnly, admin_class),
                {"__module__": admin_class.__module__},
            )
        super().register(model_or_iterable, admin_class, **options)

    def has_permission(self, request):
        return admin_access(request)

    def admin_view(self, view, cacheable=False):
        inner = super().admin_view(view, cacheable)

        def guarded(request, *args, **kwargs):
            logout = request.path == reverse("admin:logout", current_app=self.name)
            if not logout and not self.has_permission(request):
                if request.user.is_authenticated:
                    raise PermissionDenied
                return redirect_to_login(request.get_full_path())
            return inner(request, *args, **kwargs)

        return update_wrapper(guarded, inner)

    @method_decorator(never_cache)
    def login(self, request, extra_context=None):
        """No login form here: the product's sign-in page, then back to where they were."""
        index = reverse("admin:index", current_app=self.name)
        wanted = request.GET.get(REDIRECT_FIELD_NAME) or index
        if not url_has_allowed_host_and_scheme(
            wanted, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            wanted = index
        if not request.user.is_authenticated:
            return redirect_to_login(wanted)
        if not self.has_permission(request):
            raise PermissionDenied
        return HttpResponseRedirect(wanted)

    def logout(self, request, extra_context=None):
        """Signing out is the product's: 307 keeps the method and the CSRF token."""
        return HttpResponseRedirect(reverse("logout"), status=307)

    def password_change(self, request, extra_context=None):
        """One's own password: a change ends every other session of the account (this page's
        session gets a new key from Django, which is kept track of first)."""
        response = super().password_change(request, extra_context)
        if request.method == "POST" and isinstance(response, HttpResponseRedirect):
            session_track(request=request, user=request.user)
            sessions_end(user=request.user, keep=request.session.session_key)
        return response
