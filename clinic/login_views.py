"""Sign in: the password, then (for accounts that use or must use one) a code from an
authenticator app, or setting one up. Every sign-in of the product and the admin comes here.

Between the two steps nobody is signed in: the session only remembers, for a few minutes, whose
password was right. Failures at either step count for the throttling (clinic/throttling.py).
"""

import time

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import LoginView
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters

from clinic import signin
from clinic.throttling import lockout_response

PENDING = "threshold_sign_in_pending"
PENDING_SECONDS = 5 * 60


class SignInForm(AuthenticationForm):
    """Django's form, whose clean() goes through authenticate() and so through the throttling.
    A locked-out try says so instead of "wrong password" (the lockout page replaces it)."""


def blank_sign_in_form(request):
    return SignInForm(request)


class CodeForm(forms.Form):
    otp_token = forms.CharField(
        label=gettext_lazy("Code from your authenticator app"),
        max_length=10,
        widget=forms.TextInput(
            attrs={
                "autocomplete": "one-time-code",
                "inputmode": "numeric",
                "pattern": "[0-9 ]*",
                "autofocus": True,
            }
        ),
    )


class SignInView(LoginView):
    form_class = SignInForm
    template_name = "registration/login.html"
    redirect_authenticated_user = False

    def form_valid(self, form):
        user = form.get_user()
        if signin.second_factor_needed(user):
            self.request.session[PENDING] = {
                "user": user.pk,
                "at": time.time(),
                "next": self.get_success_url(),
            }
            return redirect("login_code")
        signin.sign_in(self.request, user)
        return redirect(self.get_success_url())


def _pending_user(request):
    pending = request.session.get(PENDING)
    if not isinstance(pending, dict) or time.time() - pending.get("at", 0) > PENDING_SECONDS:
        request.session.pop(PENDING, None)
        return None, None
    user = get_user_model().objects.filter(pk=pending.get("user"), is_active=True).first()
    return user, pending


@method_decorator([sensitive_post_parameters("otp_token"), csrf_protect, never_cache], "dispatch")
class SignInCodeView(View):
    """The second step: a code from the app, or, when the site requires one and the account
    has none yet, setting the app up (shown as a QR code and as text)."""

    def dispatch(self, request, *args, **kwargs):
        self.user, self.pending = _pending_user(request)
        if self.user is None:
            return redirect("login")
        self.device = signin.second_factor_device(self.user)
        return super().dispatch(request, *args, **kwargs)

    def get(self, request):
        return self.render(CodeForm())

    def post(self, request):
        form = CodeForm(request.POST)
        if not signin.may_try(request, self.user):
            return lockout_response(request)
        if form.is_valid():
            token = form.cleaned_data["otp_token"]
            if self.device is not None:
                device = signin.second_factor_verify(request, self.user, token)
            else:
                device = signin.setup_confirm(request, self.user, token)
            if device is not None:
                request.session.pop(PENDING, None)
                signin.sign_in(request, self.user, device)
                return redirect(self.pending.get("next") or reverse("home"))
            if not signin.may_try(request, self.user):
                return lockout_response(request)
            form.add_error("otp_token", _("That code did not work. Codes change every 30 seconds."))
        return self.render(form, status=400)

    def render(self, form, status=200):
        context = {"form": form, "setting_up": self.device is None, "staff": self.user}
        if self.device is None:
            device = signin.setup_device(self.user)
            context |= {
                "qr_svg": signin.setup_qr_svg(device),
                "secret": signin.setup_secret(device),
            }
        return render(self.request, "registration/login_code.html", context, status=status)
