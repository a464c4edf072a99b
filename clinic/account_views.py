"""Your own account: change your password, sign out everywhere, your authenticator app."""

from django.contrib import messages
from django.contrib.auth import logout, update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import PasswordChangeForm
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from clinic import signin
from clinic.accounts import session_track, sessions_end
from clinic.login_views import CodeForm
from clinic.models import StaffSession
from clinic.throttling import lockout_response


def _page(request, *, password_form=None, code_form=None, status=200):
    user = request.user
    device = signin.second_factor_device(user)
    context = {
        "password_form": password_form or PasswordChangeForm(user),
        "device": device,
        "required": signin.second_factor_required(user),
        "sessions": StaffSession.objects.filter(user=user).order_by("-started_at"),
        "this_session": request.session.session_key,
    }
    if code_form is not None or request.GET.get("set-up") == "1":
        setup = signin.setup_device(user)
        context |= {
            "code_form": code_form or CodeForm(),
            "qr_svg": signin.setup_qr_svg(setup),
            "secret": signin.setup_secret(setup),
        }
    return render(request, "clinic/account.html", context, status=status)


@never_cache
@require_GET
@login_required
def account(request):
    return _page(request)


@sensitive_post_parameters("old_password", "new_password1", "new_password2")
@require_http_methods(["POST"])
@login_required
def password_change(request):
    form = PasswordChangeForm(request.user, request.POST)
    if not form.is_valid():
        return _page(request, password_form=form, status=400)
    user = form.save()
    # This page stays signed in (with a new session key); every other session ends now.
    update_session_auth_hash(request, user)
    sessions_end(user=user, keep=request.session.session_key)
    session_track(request=request, user=user)
    messages.success(request, _("Your password is changed. Every other device was signed out."))
    return redirect("account")


@require_POST
@login_required
def sign_out_everywhere(request):
    user = request.user
    sessions_end(user=user)
    logout(request)
    messages.success(request, _("You are signed out on every device, this one too."))
    return redirect("login")


@sensitive_post_parameters("otp_token")
@require_POST
@login_required
def second_factor_set_up(request):
    """Set up (or replace) your authenticator app: it counts once a code from it is right."""
    if not signin.may_try(request, request.user):
        return lockout_response(request)
    form = CodeForm(request.POST)
    if form.is_valid():
        device = signin.setup_confirm(request, request.user, form.cleaned_data["otp_token"])
        if device is not None:
            signin.sign_in(request, request.user, device)
            messages.success(request, _("Your authenticator app is set up."))
            return redirect("account")
        form.add_error("otp_token", _("That code did not work. Codes change every 30 seconds."))
    return _page(request, code_form=form, status=400)


@sensitive_post_parameters("password")
@require_POST
@login_required
def second_factor_remove(request):
    """Turn your second factor off (with your password), unless a site requires it of you."""
    if signin.second_factor_required(request.user):
        messages.error(request, _("A site you work at requires a second factor of you."))
        return redirect("account")
    user = signin.credentials_check(
        request, username=request.user.get_username(), password=request.POST.get("password", "")
    )
    if user is None or user.pk != request.user.pk:
        messages.error(request, _("That password is not right; nothing was changed."))
        return redirect("account")
    signin.second_factor_remove(user)
    messages.success(request, _("Your second factor is off."))
    return redirect("account")
