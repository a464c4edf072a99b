"""Idle sessions (clinic/idle.py): the person's own requests keep the session for their idle
time at the current site, background ones never do, and after it the session is gone."""

import re
import time
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.contrib.sessions.models import Session
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from clinic import roles
from clinic.idle import (
    SESSION_IDLE_KEY,
    SESSION_SIGNED_IN_KEY,
    SESSION_UNTIL_KEY,
    unlock_token_read,
)
from clinic.settings import env_positive_int
from clinic.sites import SESSION_SITE_KEY
from tests.factories import grant, make_staff
from tests.helpers import assert_login_redirect

BACKGROUND = {"X-Threshold-Background": "1"}


def session_row(client) -> Session:
    return Session.objects.get(session_key=client.session.session_key)


def seconds_left(client) -> float:
    return (session_row(client).expire_date - timezone.now()).total_seconds()


def session_left(client, seconds: int) -> None:
    """The session as it is `seconds` before it ends, as if the time had passed."""
    session = client.session
    session[SESSION_UNTIL_KEY] = int(time.time()) + seconds
    session.save()
    Session.objects.filter(pk=session.session_key).update(
        expire_date=timezone.now() + timedelta(seconds=seconds)
    )


def idle_age(client) -> int:
    return client.session.get_expiry_age()


def assert_kept_for(client, idle: int) -> None:
    """The session was last written to last the idle time and its slack: a tenth of it, at
    most a minute (so that it need not be written on every request)."""
    assert idle_age(client) == idle + min(60, idle // 10)


# --- activity extends, background does not -------------------------------------------------------


def test_a_page_the_person_opens_keeps_the_session_for_their_idle_time_only(client, clinician):
    client.force_login(clinician)

    response = client.get(reverse("queues:board"))

    assert response.status_code == 200
    assert 299 <= seconds_left(client) <= 330
    # The browser forgets the cookie then too.
    assert response.cookies[django_settings.SESSION_COOKIE_NAME]["max-age"] == 330


def test_background_requests_leave_the_expiry_where_it_was(client, clinician):
    client.force_login(clinician)
    client.get(reverse("queues:board"))
    # Four and a half minutes later, with the board polling by itself all along.
    session_left(client, 30)

    polled = client.get(reverse("queues:board_live"), headers=BACKGROUND)

    assert polled.status_code == 200
    assert seconds_left(client) <= 30
    assert django_settings.SESSION_COOKIE_NAME not in polled.cookies

    pinged = client.post(reverse("session_activity"))

    assert pinged.status_code == 200
    assert 299 <= seconds_left(client) <= 330


@pytest.mark.parametrize(
    "request_made",
    [
        lambda c: c.get(reverse("queues:check_in")),
        lambda c: c.post(reverse("queues:set_room"), {"room": ""}),
        lambda c: c.post(reverse("session_activity")),
        lambda c: c.get(reverse("visits:appointments")),
    ],
    ids=["page", "form", "activity-ping", "another-page"],
)
def test_every_request_the_person_makes_extends_the_session(client, clinician, request_made):
    client.force_login(clinician)
    session_left(client, 5)

    request_made(client)

    assert 299 <= seconds_left(client) <= 330


def test_after_the_idle_time_the_next_request_is_anonymous_and_sent_to_sign_in(
    client, clinician, settings
):
    settings.IDLE_SECONDS = 2
    client.force_login(clinician)
    assert client.get(reverse("queues:board")).status_code == 200
    time.sleep(1)
    # Polling in the meantime keeps nothing alive.
    assert client.get(reverse("queues:board_live"), headers=BACKGROUND).status_code == 200
    time.sleep(1.3)

    assert_login_redirect(client.get(reverse("queues:board")))
    assert_login_redirect(client.get(reverse("queues:board_live"), headers=BACKGROUND))
    assert client.post(reverse("session_activity")).status_code == 401


def test_a_sign_in_lasts_no_longer_than_the_session_cookie_age_however_active(client, clinician):
    client.force_login(clinician)
    session = client.session
    session[SESSION_SIGNED_IN_KEY] = int(time.time()) - django_settings.SESSION_COOKIE_AGE - 1
    session.save()

    assert_login_redirect(client.get(reverse("queues:board")))


def test_near_the_end_of_a_sign_in_the_session_ends_with_it(client, clinician):
    client.force_login(clinician)
    session = client.session
    session[SESSION_SIGNED_IN_KEY] = int(time.time()) - django_settings.SESSION_COOKIE_AGE + 60
    session.save()

    client.get(reverse("queues:board"))

    assert 55 <= idle_age(client) <= 60


def test_anonymous_requests_get_no_session(client, site):
    response = client.get(reverse("login"))

    assert response.status_code == 200
    assert django_settings.SESSION_COOKIE_NAME not in response.cookies
    assert Session.objects.count() == 0


# --- the idle time: per role, per site --------------------------------------------------------


@pytest.mark.parametrize(
    ("held", "minutes"),
    [
        ([roles.FRONT_DESK], 5),
        ([roles.CLINICIAN], 5),
        ([roles.DIRECTOR], 15),
        ([roles.PRIVACY_OFFICER], 15),
        ([roles.DIRECTOR, roles.PRIVACY_OFFICER], 15),
        ([roles.DIRECTOR, roles.FRONT_DESK], 5),
        ([roles.PRIVACY_OFFICER, roles.CLINICIAN], 5),
    ],
)
def test_the_idle_time_is_the_shortest_of_the_roles_held_at_the_site(client, site, held, minutes):
    client.force_login(make_staff(site=site, roles=held))

    client.get(reverse("home"))

    assert_kept_for(client, minutes * 60)


def test_someone_with_no_role_anywhere_gets_the_shortest_idle_time(client, site, settings):
    settings.IDLE_MINUTES = {**settings.IDLE_MINUTES, "front_desk": 3}
    client.force_login(make_staff(site=None, roles=[]))

    client.get(reverse("home"))

    assert_kept_for(client, 3 * 60)


def test_someone_with_different_roles_at_two_sites_gets_each_sites_idle_time(
    client, site, other_site
):
    user = make_staff(site=site, roles=[roles.DIRECTOR])
    grant(user, other_site, roles.FRONT_DESK)
    client.force_login(user)

    client.get(reverse("home"))
    assert_kept_for(client, 15 * 60)

    client.post(reverse("switch_site"), {"site": other_site.slug})
    assert_kept_for(client, 5 * 60)
    client.get(reverse("home"))
    assert_kept_for(client, 5 * 60)

    client.post(reverse("switch_site"), {"site": site.slug})
    assert_kept_for(client, 15 * 60)


def test_idle_minutes_per_role_come_from_the_settings(client, site, settings):
    settings.IDLE_MINUTES = {**settings.IDLE_MINUTES, "director": 30, "privacy_officer": 20}
    client.force_login(make_staff(site=site, roles=[roles.DIRECTOR, roles.PRIVACY_OFFICER]))

    client.get(reverse("home"))

    assert_kept_for(client, 20 * 60)


def test_idle_seconds_replaces_every_roles_idle_time(client, site, settings):
    settings.IDLE_SECONDS = 7
    client.force_login(make_staff(site=site, roles=[roles.DIRECTOR]))

    client.get(reverse("home"))

    assert_kept_for(client, 7)


def test_a_new_sign_in_works_the_idle_time_out_afresh(client, site):
    user = make_staff(site=site, roles=[roles.DIRECTOR])
    client.force_login(user)
    client.get(reverse("home"))
    assert_kept_for(client, 15 * 60)

    grant(user, site, roles.FRONT_DESK)
    client.force_login(user)
    client.get(reverse("home"))

    assert_kept_for(client, 5 * 60)


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [("IDLE_MINUTES_DIRECTOR", "20", 20), ("IDLE_MINUTES_DIRECTOR", "", 15)],
)
def test_idle_settings_are_read_from_the_environment(monkeypatch, name, value, expected):
    monkeypatch.setenv(name, value)

    assert env_positive_int(name, 15) == expected


@pytest.mark.parametrize("value", ["0", "-5", "five", "2.5", "²"])
def test_idle_settings_refuse_anything_but_a_positive_whole_number(monkeypatch, value):
    monkeypatch.setenv("IDLE_SECONDS", value)

    with pytest.raises(ImproperlyConfigured):
        env_positive_int("IDLE_SECONDS", None)


# --- what it costs ----------------------------------------------------------------------------


def _queries(context) -> list[str]:
    # Savepoints come from the test's own transaction, not from the request.
    return [q["sql"] for q in context.captured_queries if "SAVEPOINT" not in q["sql"].upper()]


def test_the_idle_time_costs_no_query_once_known_and_an_extension_one_write(client, clinician):
    client.force_login(clinician)
    client.get(reverse("queues:board_live"))  # the first request works the idle time out

    with CaptureQueriesContext(connection) as background:
        client.get(reverse("queues:board_live"), headers=BACKGROUND)
    # The session was just written to last the idle time and its slack: nothing to write.
    with CaptureQueriesContext(connection) as within_slack:
        client.get(reverse("queues:board_live"))
    # Once less than the idle time is left, it is written again.
    session_left(client, 290)
    with CaptureQueriesContext(connection) as person:
        client.get(reverse("queues:board_live"))

    assert len(_queries(within_slack)) == len(_queries(background))
    assert not any(q.startswith("UPDATE") for q in _queries(within_slack))
    extra = _queries(person)[len(_queries(background)) :]
    assert len(_queries(person)) == len(_queries(background)) + 1
    assert len(extra) == 1
    assert re.match(r'UPDATE "django_session"', extra[0])
    assert 299 <= seconds_left(client) <= 330


def test_a_session_kept_longer_than_a_shorter_idle_time_is_written_again(client, site):
    """A director (15 minutes) switches to a site where they are front desk (5): the session
    must not outlast the shorter idle time by more than its slack."""
    user = make_staff(site=site, roles=[roles.DIRECTOR])
    client.force_login(user)
    client.get(reverse("home"))
    assert 899 <= seconds_left(client) <= 960
    session = client.session
    session[SESSION_IDLE_KEY] = [user.pk, session.get(SESSION_SITE_KEY), 300]
    session.save()

    client.get(reverse("home"))

    assert 299 <= seconds_left(client) <= 330


# --- what the page is given -------------------------------------------------------------------


def test_signed_in_pages_carry_the_lock_with_the_idle_time_and_whose_page_it_is(client, clinician):
    client.force_login(clinician)

    html = client.get(reverse("queues:board")).content.decode()

    assert 'id="screen-lock"' in html
    assert 'data-idle-seconds="300"' in html
    assert "js/lock.js" in html
    assert "Lock screen" in html
    assert "Alex, enter your password to continue." in html
    token = re.search(r'name="token" value="([^"]+)"', html).group(1)
    assert unlock_token_read(token) == (clinician.pk, None)


def test_the_admin_locks_too(client, director):
    client.force_login(director)

    html = client.get(reverse("admin:index")).content.decode()

    assert 'id="screen-lock"' in html
    assert 'data-idle-seconds="900"' in html
    assert "js/lock.js" in html


def test_the_sign_in_page_and_the_waiting_room_display_never_lock(client, site):
    for url in (reverse("login"), reverse("queues:display", args=[site.display_token])):
        html = client.get(url).content.decode()
        assert "screen-lock" not in html
        assert "lock.js" not in html
