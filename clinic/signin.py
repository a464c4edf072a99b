"""Signing in, shared by the sign-in page and the screen lock's unlock.

Both ask `credentials_check` (Django's `authenticate`, so django-axes counts every failure and
refuses a locked-out account and address), then, for an account that uses or must use a
second factor, `second_factor_verify`; only then does `sign_in` start the session.

The second factor is a TOTP code from an authenticator app (django-otp). A site can require it
of its directors and privacy officers (`Site.require_second_factor`); anyone else may turn it
on for their own account. Wrong codes count as failed sign-ins for the throttling too.
"""

import base64

import segno
from axes.handlers.proxy import AxesProxyHandler
from django.contrib.auth import authenticate as django_authenticate
from django.contrib.auth import login
from django.contrib.auth.signals import user_login_failed
from django.db import transaction
from django_otp import login as otp_login
from django_otp import match_token
from django_otp.plugins.otp_totp.models import TOTPDevice

from clinic import roles
from clinic.models import Membership

MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"
DEVICE_NAME = "Authenticator app"


def credentials_check(request, *, username: str, password: str):
    """The active account with these credentials, or None (a failure the throttling counts)."""
    user = django_authenticate(request, username=username, password=password)
    if user is None or not user.is_active:
        return None
    return user


def second_factor_required(user) -> bool:
    """Whether a site where `user` is a director or privacy officer requires a second factor."""
    return Membership.objects.filter(
        user=user,
        site__is_active=True,
        site__require_second_factor=True,
        roles__name__in=roles.SECOND_FACTOR_ROLES,
    ).exists()


def second_factor_device(user) -> TOTPDevice | None:
    """The user's confirmed authenticator app, if they set one up."""
    return TOTPDevice.objects.filter(user=user, confirmed=True).order_by("pk").first()


def second_factor_needed(user) -> bool:
    """Whether signing in as `user` also needs a code: they use an app, or must."""
    return second_factor_device(user) is not None or second_factor_required(user)


def may_try(request, user) -> bool:
    """False while the throttling has this account locked from this address."""
    return AxesProxyHandler.is_allowed(request, {"username": user.get_username()})


def second_factor_verify(request, user, token: str):
    """The confirmed device that accepts `token`, or None. A wrong code counts as a failed
    sign-in for the throttling (and django-otp slows each device down after failures)."""
    token = (token or "").replace(" ", "").strip()
    device = match_token(user, token) if token.isdigit() else None
    if device is None or not device.confirmed:
        user_login_failed.send(
            sender=__name__, credentials={"username": user.get_username()}, request=request
        )
        return None
    return device


def sign_in(request, user, device=None) -> None:
    """Start a session for `user`, who passed every check above (`device`: the second factor
    they used, which marks the session as verified)."""
    login(request, user, backend=getattr(user, "backend", None) or MODEL_BACKEND)
    if device is not None:
        otp_login(request, device)


# --- setting up an authenticator app ----------------------------------------------------------


def setup_device(user) -> TOTPDevice:
    """The app being set up for `user` (not yet confirmed): made on first use and kept until
    confirmed, so a reload shows the same QR code."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("pk").first()
    return device or TOTPDevice.objects.create(user=user, name=DEVICE_NAME, confirmed=False)


def setup_confirm(request, user, token: str) -> TOTPDevice | None:
    """Confirm the app being set up with a code from it; it then replaces any earlier app."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("pk").first()
    token = (token or "").replace(" ", "").strip()
    if device is None or not token.isdigit() or not device.verify_token(token):
        user_login_failed.send(
            sender=__name__, credentials={"username": user.get_username()}, request=request
        )
        return None
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
        device.confirmed = True
        device.save(update_fields=["confirmed"])
    return device


def setup_qr_svg(device: TOTPDevice) -> str:
    """The otpauth:// link as an inline SVG QR code (drawn here; nothing fetched elsewhere)."""
    return segno.make(device.config_url, error="m").svg_inline(
        scale=5, border=2, title="QR code", dark="#000", light="#fff"
    )


def setup_secret(device: TOTPDevice) -> str:
    """The same secret for typing into an app by hand, in groups of four."""
    secret = base64.b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def second_factor_remove(user) -> None:
    """Forget the user's authenticator apps (their own choice, or a director's reset)."""
    TOTPDevice.objects.filter(user=user).delete()
