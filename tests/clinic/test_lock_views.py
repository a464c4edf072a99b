"""The screen lock's endpoints: unlock (same person only, password then second factor, site
back where still allowed), the activity ping and locking now."""

import time

import pytest
from django.contrib.auth.signals import user_login_failed
from django.contrib.sessions.models import Session
from django.core import signing
from django.test import Client
from django.urls import reverse

from clinic import roles
from clinic.idle import unlock_token
from clinic.models import Membership
from clinic.sites import SESSION_SITE_KEY
from queues import realtime, services
from tests.factories import RoomFactory, grant
from tests.helpers import assert_login_redirect

PASSWORD = "a long passphrase only alex knows"
OTHER_PASSWORD = "sam has a passphrase of their own"


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def browser():
    """A client that checks CSRF like a browser's requests are checked."""
    return Client(enforce_csrf_checks=True)


@pytest.fixture
def alex(clinician):
    clinician.set_password(PASSWORD)
    clinician.save()
    return clinician


@pytest.fixture
def sam(second_clinician):
    second_clinician.set_password(OTHER_PASSWORD)
    second_clinician.save()
    return second_clinician


def csrf(client) -> dict:
    return {"X-CSRFToken": client.cookies["csrftoken"].value}


def open_page_then_expire(client, user, url=None) -> str:
    """Sign in, open a page, and let the session expire while it is open: returns the page's
    unlock token (what lock.js posts)."""
    client.force_login(user)
    client.get(url or reverse("queues:board"))
    session = client.session
    token = unlock_token(user_id=user.pk, site_id=session.get(SESSION_SITE_KEY))
    Session.objects.all().delete()
    return token


def unlock(client, token, password, **extra):
    return client.post(
        reverse("unlock"), {"token": token, "password": password, **extra}, headers=csrf(client)
    )


def signed_in_as(client):
    response = client.get(reverse("queues:board"))
    return response.wsgi_request.user if response.status_code == 200 else None


# --- unlocking ----------------------------------------------------------------------------------


def test_the_same_person_unlocks_with_the_csrf_cookie_that_outlived_the_session(browser, alex):
    token = open_page_then_expire(browser, alex)
    old_csrf = browser.cookies["csrftoken"].value
    assert_login_redirect(browser.get(reverse("queues:board")))

    response = unlock(browser, token, PASSWORD)

    assert response.status_code == 200
    answer = response.json()
    assert answer["ok"] is True
    assert signed_in_as(browser) == alex
    # A new token for the page's forms: the old one went with the old sign-in.
    assert browser.cookies["csrftoken"].value != old_csrf
    saved = browser.post(
        reverse("queues:set_room"), {"room": "", "csrfmiddlewaretoken": answer["csrf"]}
    )
    assert saved.status_code == 302


def test_another_persons_password_never_unlocks_the_page(browser, alex, sam):
    token = open_page_then_expire(browser, alex)
    sessions = Session.objects.count()

    for attempt in (
        unlock(browser, token, OTHER_PASSWORD),
        unlock(browser, token, OTHER_PASSWORD, username="sam"),
    ):
        assert attempt.status_code == 401
        assert attempt.json()["ok"] is False

    assert signed_in_as(browser) is None
    assert Session.objects.count() == sessions


def test_a_wrong_password_changes_nothing_and_counts_as_a_failed_sign_in(browser, alex):
    token = open_page_then_expire(browser, alex)
    failures = []

    def counted(sender, credentials, **kwargs):
        failures.append(credentials["username"])

    user_login_failed.connect(counted)
    try:
        csrf_before = browser.cookies["csrftoken"].value
        response = unlock(browser, token, "not the password")
    finally:
        user_login_failed.disconnect(counted)

    assert response.status_code == 401
    assert response.json() == {
        "ok": False,
        "error": "That password is not right. Please try again.",
    }
    assert failures == ["alex"]  # what the sign-in throttling counts
    # No session begun, the same CSRF token (the page's forms stay as they are).
    assert Session.objects.count() == 0
    assert not browser.cookies["sessionid"].value
    assert browser.cookies["csrftoken"].value == csrf_before


def test_an_empty_password_is_asked_for_again(browser, alex):
    token = open_page_then_expire(browser, alex)

    response = unlock(browser, token, "")

    assert response.status_code == 400
    assert response.json()["error"] == "Please enter your password."
    assert signed_in_as(browser) is None


def test_an_account_deactivated_meanwhile_cannot_unlock(browser, alex):
    token = open_page_then_expire(browser, alex)
    alex.is_active = False
    alex.save()

    assert unlock(browser, token, PASSWORD).status_code == 401
    assert signed_in_as(browser) is None


@pytest.mark.parametrize(
    "token",
    [
        "",
        "not-a-token",
        signing.dumps([1, None, None], salt="some other purpose"),
    ],
    ids=["missing", "garbage", "signed-for-something-else"],
)
def test_a_forged_or_missing_token_is_refused(browser, alex, token):
    open_page_then_expire(browser, alex)

    response = unlock(browser, token, PASSWORD)

    assert response.status_code == 400
    assert signed_in_as(browser) is None


def test_a_page_older_than_the_longest_sign_in_cannot_be_unlocked(
    browser, alex, settings, monkeypatch
):
    token = open_page_then_expire(browser, alex)
    later = time.time() + settings.SESSION_COOKIE_AGE + 60
    monkeypatch.setattr(signing.time, "time", lambda: later)

    response = unlock(browser, token, PASSWORD)

    assert response.status_code == 400
    assert "sign in again" in response.json()["error"]


# --- site and room ------------------------------------------------------------------------------


@pytest.fixture
def two_sites(alex, site, other_site):
    """Alex works at both sites; the page was on the other site, calling people to Room 7."""
    grant(alex, other_site, roles.CLINICIAN)
    room = RoomFactory(site=other_site, name="Room 7")
    services.staff_room_remember(site=other_site, user=alex, room=room)
    return other_site, room


def page_on(client, user, site) -> str:
    client.force_login(user)
    session = client.session
    session[SESSION_SITE_KEY] = site.pk
    session.save()
    return open_page_then_expire(client, user)


def test_unlock_puts_back_the_site_the_page_was_on_and_its_room_is_still_theirs(
    browser, alex, two_sites
):
    other_site, room = two_sites
    token = page_on(browser, alex, other_site)

    assert unlock(browser, token, PASSWORD).status_code == 200

    assert browser.session[SESSION_SITE_KEY] == other_site.pk
    board = browser.get(reverse("queues:board"))
    assert board.context["current_site"] == other_site
    assert board.context["room_form"]["room"].value() == room.pk


def test_unlock_leaves_out_a_site_where_the_person_no_longer_works(browser, alex, site, two_sites):
    other_site, _room = two_sites
    token = page_on(browser, alex, other_site)
    Membership.objects.filter(user=alex, site=other_site).delete()

    assert unlock(browser, token, PASSWORD).status_code == 200

    assert SESSION_SITE_KEY not in browser.session
    assert browser.get(reverse("queues:board")).context["current_site"] == site


def test_a_page_locked_before_rooms_moved_to_the_database_still_unlocks(browser, alex, two_sites):
    other_site, room = two_sites
    open_page_then_expire(browser, alex)
    # The token of such a page: [user id, site id, room id].
    token = signing.dumps([alex.pk, other_site.pk, room.pk], salt="clinic.idle.unlock")

    assert unlock(browser, token, PASSWORD).status_code == 200

    assert browser.session[SESSION_SITE_KEY] == other_site.pk
    assert "threshold_room_id" not in browser.session


# --- second factor ------------------------------------------------------------------------------


@pytest.fixture
def second_factor(alex, settings):
    """Alex uses an authenticator app; `code()` is what it shows now."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    device = TOTPDevice.objects.create(user=alex, name="app", confirmed=True)

    def code() -> str:
        from django_otp.oath import totp

        device.refresh_from_db()
        return f"{totp(device.bin_key, device.step, device.t0, device.digits, device.drift):06d}"

    return code


def test_a_second_factor_is_asked_for_and_a_wrong_code_refused(browser, alex, second_factor):
    token = open_page_then_expire(browser, alex)

    asked = unlock(browser, token, PASSWORD)
    wrong = unlock(browser, token, PASSWORD, code="000000")

    for response in (asked, wrong):
        assert response.status_code == 401
        assert response.json()["second_factor"] is True
        assert signed_in_as(browser) is None
    assert asked.json()["error"] == "Enter the code from your authenticator app."
    assert wrong.json()["error"] == "That code did not work. Please try again."


def test_the_right_code_with_the_password_unlocks(browser, alex, second_factor):
    token = open_page_then_expire(browser, alex)

    response = unlock(browser, token, PASSWORD, code=f" {second_factor()} ")

    assert response.status_code == 200
    assert signed_in_as(browser) == alex
    assert browser.session.get("otp_device_id")  # the session is verified with the code


def test_a_right_code_never_makes_up_for_a_wrong_password(browser, alex, second_factor):
    token = open_page_then_expire(browser, alex)

    response = unlock(browser, token, "not the password", code=second_factor())

    assert response.status_code == 401
    assert "second_factor" not in response.json()
    assert signed_in_as(browser) is None


# --- CSRF and methods ---------------------------------------------------------------------------


def test_unlock_needs_the_csrf_token(browser, alex):
    token = open_page_then_expire(browser, alex)

    response = browser.post(reverse("unlock"), {"token": token, "password": PASSWORD})

    assert response.status_code == 403
    assert signed_in_as(browser) is None


@pytest.mark.parametrize("name", ["unlock", "session_activity", "session_lock"])
def test_the_lock_endpoints_answer_get_with_405(client, clinician, name):
    client.force_login(clinician)

    assert client.get(reverse(name)).status_code == 405


@pytest.mark.parametrize("name", ["session_activity", "session_lock"])
def test_the_activity_ping_and_lock_need_the_csrf_token(browser, clinician, name):
    browser.force_login(clinician)
    browser.get(reverse("queues:board"))

    assert browser.post(reverse(name)).status_code == 403
    assert signed_in_as(browser) == clinician


# --- activity and locking now -------------------------------------------------------------------


def test_the_activity_ping_answers_who_is_signed_in(browser, clinician):
    browser.force_login(clinician)
    browser.get(reverse("queues:board"))

    response = browser.post(reverse("session_activity"), headers=csrf(browser))

    assert response.status_code == 200
    assert response.json() == {"signed_in": True, "user": "alex"}


def test_the_activity_ping_of_an_ended_session_says_so(browser, clinician):
    browser.force_login(clinician)
    browser.get(reverse("queues:board"))
    Session.objects.all().delete()

    response = browser.post(reverse("session_activity"), headers=csrf(browser))

    assert response.status_code == 401
    assert response.json() == {"signed_in": False}


def test_locking_ends_the_session_and_closes_its_sockets_at_once(browser, clinician, monkeypatch):
    closed = []
    monkeypatch.setattr(realtime, "sockets_close", lambda **kwargs: closed.append(kwargs))
    browser.force_login(clinician)
    browser.get(reverse("queues:board"))
    key = browser.session.session_key

    response = browser.post(reverse("session_lock"), headers=csrf(browser))

    assert response.status_code == 204
    assert not Session.objects.filter(session_key=key).exists()
    assert closed == [{"session_key": key}]
    assert_login_redirect(browser.get(reverse("queues:board")))


def test_locking_an_ended_session_is_harmless(browser, clinician):
    browser.force_login(clinician)
    browser.get(reverse("queues:board"))
    Session.objects.all().delete()

    assert browser.post(reverse("session_lock"), headers=csrf(browser)).status_code == 204


def test_an_unlock_while_the_old_session_still_lives_starts_a_new_one_a_late_lock_cannot_end(
    browser, alex
):
    """The page locked, but its "end the session" had not reached the server yet when the
    person unlocked: the unlock gets a session of its own, and the old one's late end of
    itself (sent with the old cookie) leaves the new one signed in."""
    browser.force_login(alex)
    browser.get(reverse("queues:board"))
    old_key = browser.cookies["sessionid"].value
    token = unlock_token(user_id=alex.pk, site_id=browser.session.get(SESSION_SITE_KEY))

    assert unlock(browser, token, PASSWORD).json()["ok"] is True

    new_key = browser.cookies["sessionid"].value
    assert new_key != old_key
    assert not Session.objects.filter(session_key=old_key).exists()
    late = Client(enforce_csrf_checks=True)
    late.cookies["sessionid"] = old_key
    late.cookies["csrftoken"] = browser.cookies["csrftoken"].value
    assert late.post(reverse("session_lock"), headers=csrf(late)).status_code == 204
    assert signed_in_as(browser) == alex
