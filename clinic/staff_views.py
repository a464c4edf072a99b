"""The staff page: a director manages who works at the current site.

Only a director of the current site (clinic.change_membership through the director role there)
opens these pages: everyone else gets 403, a superuser as such included. An account that does
not work at the current site is 404. Every change is a POST to a service in clinic/staff.py,
which decides whose account the director may change; ids in URLs, never names.
"""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from clinic import staff
from clinic.models import Membership
from clinic.signin import second_factor_device, second_factor_required
from clinic.sites import site_permission_required
from clinic.staff_forms import MembershipForm, StaffCreationForm, StaffPasswordForm
from clinic.throttling import locked_out_usernames

app_name = "staff"

MANAGE = "clinic.change_membership"


def director_required(view):
    return site_permission_required(MANAGE)(never_cache(view))


def _membership_or_404(request, pk: int) -> Membership:
    return get_object_or_404(
        Membership.objects.select_related("user", "site"), site=request.site, user_id=pk
    )


def _name(account) -> str:
    return account.get_full_name() or account.get_username()


@require_GET
@director_required
def staff_list(request):
    rows = staff.staff_rows(site=request.site)
    return render(request, "clinic/staff_list.html", {"rows": rows})


@require_http_methods(["GET", "POST"])
@director_required
def staff_new(request):
    form = StaffCreationForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            membership = staff.staff_create(
                by=request.user,
                site=request.site,
                username=data["username"],
                password=data["password1"],
                first_name=data["first_name"],
                last_name=data["last_name"],
                discipline=data["discipline"],
                roles=data["roles"],
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, _("Added %(name)s.") % {"name": _name(membership.user)})
            return redirect("staff:member", pk=membership.user_id)
    status = 400 if form.errors else 200
    return render(request, "clinic/staff_new.html", {"form": form}, status=status)


@require_GET
@director_required
def staff_member(request, pk: int):
    return _member_page(request, _membership_or_404(request, pk))


@require_POST
@director_required
def staff_roles(request, pk: int):
    membership = _membership_or_404(request, pk)
    form = MembershipForm(request.POST)
    if form.is_valid():
        try:
            staff.membership_set_roles(
                by=request.user,
                membership=membership,
                keep_session=request.session.session_key,
                **form.cleaned_data,
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(
                request, _("Saved the roles of %(name)s.") % {"name": _name(membership.user)}
            )
            return redirect("staff:member", pk=pk)
    return _member_page(request, membership, roles_form=form, status=400)


@require_POST
@director_required
def staff_password(request, pk: int):
    membership = _membership_or_404(request, pk)
    form = StaffPasswordForm(membership.user, request.POST)
    if form.is_valid():
        try:
            staff.staff_set_password(
                by=request.user,
                account=membership.user,
                password=form.cleaned_data["new_password1"],
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(
                request,
                _("New password set for %(name)s. They were signed out everywhere.")
                % {"name": _name(membership.user)},
            )
            return redirect("staff:member", pk=pk)
    return _member_page(request, membership, password_form=form, status=400)


@require_POST
@director_required
def staff_remove(request, pk: int):
    membership = _membership_or_404(request, pk)
    try:
        staff.membership_remove(
            by=request.user, membership=membership, keep_session=request.session.session_key
        )
    except ValidationError as error:
        return _member_page(request, membership, refusal=error, status=400)
    messages.success(
        request,
        _("%(name)s no longer works at %(site)s.")
        % {"name": _name(membership.user), "site": request.site},
    )
    return redirect("staff:list")


@require_POST
@director_required
def staff_active(request, pk: int):
    membership = _membership_or_404(request, pk)
    active = request.POST.get("active") == "1"
    try:
        staff.staff_set_active(by=request.user, account=membership.user, active=active)
    except ValidationError as error:
        return _member_page(request, membership, refusal=error, status=400)
    if active:
        done = _("%(name)s can sign in again.")
    else:
        done = _("%(name)s is deactivated and was signed out everywhere.")
    messages.success(request, done % {"name": _name(membership.user)})
    return redirect("staff:member", pk=pk)


@require_POST
@director_required
def staff_unlock(request, pk: int):
    membership = _membership_or_404(request, pk)
    try:
        staff.staff_unlock(by=request.user, account=membership.user, site=request.site)
    except ValidationError as error:
        return _member_page(request, membership, refusal=error, status=400)
    messages.success(
        request, _("%(name)s can try to sign in again.") % {"name": _name(membership.user)}
    )
    if request.POST.get("from") == "list":
        return redirect("staff:list")
    return redirect("staff:member", pk=pk)


@require_POST
@director_required
def staff_second_factor_reset(request, pk: int):
    membership = _membership_or_404(request, pk)
    try:
        staff.staff_second_factor_reset(by=request.user, account=membership.user)
    except ValidationError as error:
        return _member_page(request, membership, refusal=error, status=400)
    messages.success(
        request,
        _(
            "%(name)s's authenticator app is forgotten and they were signed out everywhere; "
            "they set up a new one when they next sign in."
        )
        % {"name": _name(membership.user)},
    )
    return redirect("staff:member", pk=pk)


def _member_page(
    request, membership, *, roles_form=None, password_form=None, refusal=None, status=200
):
    account, by = membership.user, request.user
    context = {
        "membership": membership,
        "account": account,
        "name": _name(account),
        "roles_form": roles_form
        or MembershipForm.for_membership(membership, roles=staff.role_names(membership)),
        "password_form": password_form or StaffPasswordForm(account),
        "refusal": refusal,
        "locked_out": bool(locked_out_usernames([account.get_username()])),
        "second_factor": second_factor_device(account) is not None,
        "second_factor_required": second_factor_required(account),
        **staff.member_actions(by=by, membership=membership),
    }
    return render(request, "clinic/staff_member.html", context, status=status)


urlpatterns = [
    path("", staff_list, name="list"),
    path("new/", staff_new, name="new"),
    path("<int:pk>/", staff_member, name="member"),
    path("<int:pk>/roles/", staff_roles, name="roles"),
    path("<int:pk>/password/", staff_password, name="password"),
    path("<int:pk>/remove/", staff_remove, name="remove"),
    path("<int:pk>/active/", staff_active, name="active"),
    path("<int:pk>/unlock/", staff_unlock, name="unlock"),
    path(
        "<int:pk>/second-factor/reset/",
        staff_second_factor_reset,
        name="second_factor_reset",
    ),
]
