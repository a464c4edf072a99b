"""The screen lock's endpoints (static/js/lock.js): unlock, the activity ping, lock now.

They answer JSON, not pages: the locked page stays where it is, with everything typed in it.
"""

from django import forms
from django.contrib.auth import get_user_model, logout
from django.http import HttpResponse, JsonResponse
from django.middleware.csrf import get_token
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from clinic import idle, signin


class UnlockForm(forms.Form):
    token = forms.CharField(max_length=500)
    password = forms.CharField(max_length=4096, strip=False)
    code = forms.CharField(max_length=20, required=False)


def _refused(message: str, *, status: int = 401, **extra) -> JsonResponse:
    return JsonResponse({"ok": False, "error": message, **extra}, status=status)


@never_cache
@require_POST
def unlock(request):
    """Sign the page's own user in again, with their password (and code, where needed), and
    put back the site the page was on. Nobody else can unlock it."""
    form = UnlockForm(request.POST)
    owner = idle.unlock_token_read(form.data.get("token", ""))
    if owner is None:
        return _refused(_("This screen is too old to unlock. Please sign in again."), status=400)
    if not form.is_valid():
        return _refused(_("Please enter your password."), status=400)
    user_id, site_id = owner
    owner_user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
    user = owner_user and signin.credentials_check(
        request, username=owner_user.get_username(), password=form.cleaned_data["password"]
    )
    if not user or user.pk != user_id:
        return _refused(_("That password is not right. Please try again."))
    device = None
    if signin.second_factor_needed(user):
        code = form.cleaned_data["code"].strip()
        if not code:
            return _refused(_("Enter the code from your authenticator app."), second_factor=True)
        if signin.second_factor_device(user) is None:
            # Required, but no app set up yet: that happens on the sign-in page.
            return _refused(
                _("Your site now asks for a code from an app: please sign in again."),
                status=400,
            )
        device = signin.second_factor_verify(request, user, code)
        if device is None:
            return _refused(_("That code did not work. Please try again."), second_factor=True)
    # A new session key, always: also where the session the lock meant to end is still alive
    # (its "lock now" never arrived, or is still on its way): the key that sat behind a locked
    # screen is not the one that carries on, and a late end of it cannot end this sign-in.
    request.session.cycle_key()
    signin.sign_in(request, user, device)
    idle.session_restore(request, site_id=site_id)
    return JsonResponse({"ok": True, "csrf": get_token(request)})


@never_cache
@require_POST
def activity(request):
    """The person is at the page (typing, scrolling...): the middleware extends the session.
    Answers who is signed in, so another locked tab of the same person can open again."""
    if not request.user.is_authenticated:
        return JsonResponse({"signed_in": False}, status=401)
    return JsonResponse({"signed_in": True, "user": request.user.get_username()})


@never_cache
@require_POST
def lock(request):
    """The screen locked: end this session now, so that reloading the page or opening
    another one shows the sign-in page, not the people it was showing."""
    if request.user.is_authenticated:
        logout(request)
    return HttpResponse(status=204)
