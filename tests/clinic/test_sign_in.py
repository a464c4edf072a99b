"""Signing in: throttling per account and address, the lockout log, a director's unlock, and
the second factor (required by a site for its directors and privacy officers)."""

import time

import pytest
from django.contrib.auth import get_user_model
from django.db.models import F
from django.test import Client
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from clinic import roles
from clinic import staff as staff_services
from clinic.login_views import PENDING
from clinic.models import LockoutEvent, StaffSession
from clinic.throttling import account_unlock, locked_out_usernames, lockouts_for
from tests.factories import grant, make_staff

PASSWORD = "a long enough pass phrase 7"
LOGIN = "/login/"


@pytest.fixture(autouse=True)
def _quick(settings):
    settings.AXES_FAILURE_LIMIT = 3
    settings.OTP_TOTP_THROTTLE_FACTOR = 0  # a wrong code does not delay the next one here


def staff(site, role, username):
    user = make_staff(site=site, roles=[role], username=username, first_name=username.title())
    user.set_password(PASSWORD)
    user.save()
    return user


def attempt(username, password, ip="10.0.0.7", client=None):
    client = client or Client()
    return client.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=ip)


def signed_in(response) -> bool:
    return response.status_code == 302 and "_auth_user_id" in response.wsgi_request.session


# --- throttling -------------------------------------------------------------------------------


def test_after_a_few_failures_the_account_is_locked_from_that_address_even_with_the_right_password(
    site,
):
    staff(site, roles.FRONT_DESK, "frontdesk")
    for _ in range(2):
        assert attempt("frontdesk", "wrong").status_code == 200
    assert attempt("frontdesk", "wrong").status_code == 429  # the third failure locks
    response = attempt("frontdesk", PASSWORD)
    assert response.status_code == 429
    assert "Too many failed sign-ins" in response.content.decode()
    assert "_auth_user_id" not in response.wsgi_request.session


def test_guessing_at_one_account_from_the_shared_address_does_not_lock_out_another(site):
    staff(site, roles.FRONT_DESK, "frontdesk")
    staff(site, roles.DIRECTOR, "director")
    for _ in range(5):
        attempt("director", "guess")
    assert signed_in(attempt("frontdesk", PASSWORD))
    # ...and the guessed-at account still signs in from another device.
    assert signed_in(attempt("director", PASSWORD, ip="10.0.0.8"))


def test_a_right_password_before_the_limit_starts_the_count_again(site):
    staff(site, roles.FRONT_DESK, "frontdesk")
    attempt("frontdesk", "wrong")
    attempt("frontdesk", "wrong")
    assert signed_in(attempt("frontdesk", PASSWORD))
    attempt("frontdesk", "wrong")
    attempt("frontdesk", "wrong")
    assert signed_in(attempt("frontdesk", PASSWORD))


def test_the_lock_ends_after_the_cool_off(site, settings):
    from datetime import timedelta

    from axes.models import AccessAttempt

    settings.AXES_COOLOFF_TIME = timedelta(minutes=15)
    staff(site, roles.FRONT_DESK, "frontdesk")
    for _ in range(3):
        attempt("frontdesk", "wrong")
    assert attempt("frontdesk", PASSWORD).status_code == 429
    # The cool-off passes: the failures are made older than it, not waited for (a wait of a
    # second was outrun by a busy machine's password hashing).
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - timedelta(minutes=16))
    assert signed_in(attempt("frontdesk", PASSWORD))


def test_each_lockout_is_logged_once_with_account_and_address(site):
    user = staff(site, roles.FRONT_DESK, "frontdesk")
    for _ in range(10):
        attempt("frontdesk", "wrong")
    events = list(LockoutEvent.objects.all())
    assert [(e.kind, e.user, e.ip_address) for e in events] == [
        (LockoutEvent.Kind.LOCKED, user, "10.0.0.7")
    ]
    assert locked_out_usernames(["frontdesk", "someone"]) == {"frontdesk"}


def test_a_name_that_matches_no_account_is_logged_without_the_name(site):
    for _ in range(3):
        attempt("my secret password", "x")
    event = LockoutEvent.objects.get()
    assert event.user is None
    assert "my secret password" not in str(vars(event))


def test_a_director_unlocks_an_account_of_their_site_and_that_is_logged(site, director):
    user = staff(site, roles.FRONT_DESK, "frontdesk")
    for _ in range(3):
        attempt("frontdesk", "wrong")
    account_unlock(user=user, by=director, site=site)
    assert locked_out_usernames(["frontdesk"]) == set()
    assert signed_in(attempt("frontdesk", PASSWORD))
    unlock = LockoutEvent.objects.get(kind=LockoutEvent.Kind.UNLOCKED)
    assert (unlock.user, unlock.by) == (user, director)


@pytest.mark.parametrize("persona", ["front_desk", "clinician", "privacy_officer"])
def test_only_a_director_of_the_site_may_unlock(site, request, persona):
    from django.core.exceptions import ValidationError

    user = staff(site, roles.FRONT_DESK, "frontdesk")
    with pytest.raises(ValidationError) as info:
        account_unlock(user=user, by=request.getfixturevalue(persona), site=site)
    assert info.value.code == "not_allowed"
    assert not LockoutEvent.objects.exists()


def test_a_director_of_another_site_may_not_unlock(site, other_site):
    from django.core.exceptions import ValidationError

    user = staff(site, roles.FRONT_DESK, "frontdesk")
    elsewhere = make_staff(site=other_site, roles=[roles.DIRECTOR])
    with pytest.raises(ValidationError):
        account_unlock(user=user, by=elsewhere, site=other_site)
    with pytest.raises(ValidationError):
        account_unlock(user=user, by=elsewhere, site=site)


def test_the_privacy_officer_reads_the_lockouts_of_their_site_only(
    client, site, other_site, privacy_officer
):
    staff(site, roles.FRONT_DESK, "frontdesk")
    staff(other_site, roles.FRONT_DESK, "hillsidedesk")
    for name in ("frontdesk", "hillsidedesk", "nobody"):
        for _ in range(3):
            attempt(name, "wrong")
    assert {e.user.username if e.user else None for e in lockouts_for(site)} == {
        "frontdesk",
        None,
    }
    client.force_login(privacy_officer)
    html = client.get(reverse("lockout_log")).content.decode()
    assert "(frontdesk)" in html
    assert "hillsidedesk" not in html
    assert "a name that matches no account" in html


@pytest.mark.parametrize(
    ("persona", "status"),
    [("front_desk", 403), ("clinician", 403), ("director", 403), ("privacy_officer", 200)],
)
def test_the_lockout_log_is_the_privacy_officers(client, login, persona, status):
    login(persona)
    assert client.get(reverse("lockout_log")).status_code == status


def test_the_lockout_log_is_append_only(site):
    from django.db import DatabaseError, transaction

    for _ in range(3):
        attempt("nobody", "wrong")
    event = LockoutEvent.objects.get()
    for change in (
        lambda: LockoutEvent.objects.filter(pk=event.pk).update(ip_address="10.9.9.9"),
        lambda: LockoutEvent.objects.filter(pk=event.pk).delete(),
    ):
        with pytest.raises(DatabaseError), transaction.atomic():
            change()
    assert LockoutEvent.objects.get().ip_address == "10.0.0.7"


# --- second factor ------------------------------------------------------------------------------


def code_for(device) -> str:
    device.refresh_from_db()
    return f"{totp(device.bin_key, device.step, device.t0, device.digits, device.drift):06d}"


@pytest.fixture
def requiring_site(site):
    site.require_second_factor = True
    site.save()
    return site


def test_a_site_requiring_it_makes_its_director_set_up_an_app_before_anything(
    requiring_site,
):
    staff(requiring_site, roles.DIRECTOR, "director")
    client = Client()
    response = attempt("director", PASSWORD, client=client)
    assert response.status_code == 302 and response.url == reverse("login_code")
    assert "_auth_user_id" not in client.session  # not signed in yet
    assert client.get(reverse("reports:dashboard")).status_code == 302  # to the sign-in

    page = client.get(reverse("login_code")).content.decode()
    assert "Set up your authenticator app" in page and "<svg" in page
    device = TOTPDevice.objects.get(user__username="director", confirmed=False)
    response = client.post(reverse("login_code"), {"otp_token": code_for(device)})
    assert response.status_code == 302
    assert client.session["_auth_user_id"]
    device.refresh_from_db()
    assert device.confirmed
    assert client.get(reverse("reports:dashboard")).status_code == 200


def test_an_account_with_an_app_needs_its_code_and_a_wrong_code_signs_nobody_in(
    requiring_site,
):
    user = staff(requiring_site, roles.PRIVACY_OFFICER, "privacy")
    device = TOTPDevice.objects.create(user=user, name="app", confirmed=True)
    client = Client()
    attempt("privacy", PASSWORD, client=client)
    response = client.post(reverse("login_code"), {"otp_token": "000000"})
    assert response.status_code == 400
    assert "That code did not work" in response.content.decode()
    assert "_auth_user_id" not in client.session
    response = client.post(reverse("login_code"), {"otp_token": code_for(device)})
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(user.pk)
    assert client.session.get("otp_device_id") == device.persistent_id


def test_wrong_codes_count_towards_the_lockout(requiring_site):
    user = staff(requiring_site, roles.DIRECTOR, "director")
    device = TOTPDevice.objects.create(user=user, name="app", confirmed=True)
    client = Client()
    attempt("director", PASSWORD, client=client)
    for _ in range(3):
        client.post(reverse("login_code"), {"otp_token": "000000"}, REMOTE_ADDR="10.0.0.7")
    response = client.post(
        reverse("login_code"), {"otp_token": code_for(device)}, REMOTE_ADDR="10.0.0.7"
    )
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


def test_roles_that_the_site_does_not_require_it_of_sign_in_with_the_password(requiring_site):
    staff(requiring_site, roles.CLINICIAN, "clinician")
    assert signed_in(attempt("clinician", PASSWORD))


def test_a_director_at_a_site_that_requires_it_needs_it_wherever_they_sign_in(site, other_site):
    # Director at Hillside (which requires it), clinician at Riverside (which does not).
    other_site.require_second_factor = True
    other_site.save()
    user = staff(site, roles.CLINICIAN, "dana")
    grant(user, other_site, roles.DIRECTOR)
    response = attempt("dana", PASSWORD)
    assert response.url == reverse("login_code")


def test_anyone_may_use_an_app_and_is_then_asked_for_its_code(site):
    user = staff(site, roles.FRONT_DESK, "frontdesk")
    TOTPDevice.objects.create(user=user, name="app", confirmed=True)
    response = attempt("frontdesk", PASSWORD)
    assert response.url == reverse("login_code")


def test_the_second_step_expires_and_needs_the_password_first(requiring_site, monkeypatch):
    staff(requiring_site, roles.DIRECTOR, "director")
    client = Client()
    assert client.get(reverse("login_code")).url == reverse("login")
    attempt("director", PASSWORD, client=client)
    later = time.time() + 6 * 60
    monkeypatch.setattr(time, "time", lambda: later)
    assert client.get(reverse("login_code")).url == reverse("login")
    assert PENDING not in client.session


def test_the_second_step_keeps_where_the_person_was_going(requiring_site):
    user = staff(requiring_site, roles.DIRECTOR, "director")
    device = TOTPDevice.objects.create(user=user, name="app", confirmed=True)
    client = Client()
    client.post(LOGIN, {"username": "director", "password": PASSWORD, "next": "/reports/"})
    response = client.post(reverse("login_code"), {"otp_token": code_for(device)})
    assert response.url == "/reports/"


def test_a_director_resets_a_lost_app_and_the_next_sign_in_sets_up_a_new_one(
    requiring_site, director
):
    user = staff(requiring_site, roles.PRIVACY_OFFICER, "privacy")
    TOTPDevice.objects.create(user=user, name="app", confirmed=True)
    Client().force_login(user)
    staff_services.staff_second_factor_reset(account=user, by=director)
    assert not TOTPDevice.objects.filter(user=user).exists()
    assert not StaffSession.objects.filter(user=user).exists()
    client = Client()
    attempt("privacy", PASSWORD, client=client)
    assert "Set up your authenticator app" in client.get(reverse("login_code")).content.decode()


def test_a_director_cannot_reset_the_app_of_someone_who_also_works_elsewhere(
    requiring_site, other_site, director
):
    from django.core.exceptions import ValidationError

    user = staff(requiring_site, roles.PRIVACY_OFFICER, "privacy")
    grant(user, other_site, roles.PRIVACY_OFFICER)
    TOTPDevice.objects.create(user=user, name="app", confirmed=True)
    for target in (user, director):
        with pytest.raises(ValidationError):
            staff_services.staff_second_factor_reset(account=target, by=director)
    assert TOTPDevice.objects.filter(user=user).exists()


def test_setting_up_an_app_from_the_account_page(client, site, clinician):
    clinician.set_password(PASSWORD)
    clinician.save()
    client.force_login(clinician)
    page = client.get(reverse("account") + "?set-up=1").content.decode()
    assert "<svg" in page
    device = TOTPDevice.objects.get(user=clinician, confirmed=False)
    assert client.post(reverse("account_second_factor"), {"otp_token": "1"}).status_code == 400
    response = client.post(reverse("account_second_factor"), {"otp_token": code_for(device)})
    assert response.status_code == 302
    assert TOTPDevice.objects.get(user=clinician).confirmed
    # Turning it off needs the password.
    client.post(reverse("account_second_factor_remove"), {"password": "nope"})
    assert TOTPDevice.objects.filter(user=clinician).exists()
    client.post(reverse("account_second_factor_remove"), {"password": PASSWORD})
    assert not TOTPDevice.objects.filter(user=clinician).exists()


def test_a_required_second_factor_cannot_be_turned_off(client, requiring_site):
    user = staff(requiring_site, roles.DIRECTOR, "director")
    TOTPDevice.objects.create(user=user, name="app", confirmed=True)
    client.force_login(user)
    client.post(reverse("account_second_factor_remove"), {"password": PASSWORD})
    assert TOTPDevice.objects.filter(user=user).exists()


# --- on the staff page ------------------------------------------------------------------------


def test_the_staff_page_shows_who_is_locked_out_and_a_director_unlocks_them(client, site, director):
    staff(site, roles.FRONT_DESK, "frontdesk")
    for _ in range(3):
        attempt("frontdesk", "wrong")
    client.force_login(director)
    html = client.get(reverse("staff:list")).content.decode()
    assert "Locked out" in html
    user = get_user_model().objects.get(username="frontdesk")
    response = client.post(reverse("staff:unlock", args=[user.pk]), {"from": "list"})
    assert response.url == reverse("staff:list")
    assert "Locked out" not in client.get(reverse("staff:list")).content.decode()
    assert signed_in(attempt("frontdesk", PASSWORD))
    assert LockoutEvent.objects.filter(kind="unlocked", by=director).exists()


def test_unlocking_on_the_staff_page_is_a_directors_and_a_post(client, site, clinician):
    user = staff(site, roles.FRONT_DESK, "frontdesk")
    client.force_login(clinician)
    assert client.post(reverse("staff:unlock", args=[user.pk])).status_code == 403
    client.force_login(make_staff(site=site, roles=[roles.DIRECTOR]))
    assert client.get(reverse("staff:unlock", args=[user.pk])).status_code == 405


def test_a_director_resets_a_second_factor_from_the_member_page(client, site, director):
    user = staff(site, roles.PRIVACY_OFFICER, "privacy")
    TOTPDevice.objects.create(user=user, name="app", confirmed=True)
    Client().force_login(user)
    client.force_login(director)
    page = client.get(reverse("staff:member", args=[user.pk])).content.decode()
    assert "Reset their second factor" in page
    client.post(reverse("staff:second_factor_reset", args=[user.pk]))
    assert not TOTPDevice.objects.filter(user=user).exists()
    assert not StaffSession.objects.filter(user=user).exists()


def test_requiring_a_second_factor_signs_out_the_sites_directors_and_privacy_officers(
    site, director, privacy_officer, clinician
):
    for user in (director, privacy_officer, clinician):
        Client().force_login(user)
    staff_services.site_set_second_factor(by=director, site=site, required=True)
    site.refresh_from_db()
    assert site.require_second_factor
    assert not StaffSession.objects.filter(user__in=[director, privacy_officer]).exists()
    assert StaffSession.objects.filter(user=clinician).exists()


def test_giving_a_director_role_where_a_second_factor_is_required_signs_them_out(
    requiring_site, director, clinician
):
    Client().force_login(clinician)
    membership = clinician.memberships.get(site=requiring_site)
    staff_services.membership_set_roles(
        by=director, membership=membership, roles=[roles.CLINICIAN, roles.PRIVACY_OFFICER]
    )
    assert not StaffSession.objects.filter(user=clinician).exists()


def test_turning_on_the_second_factor_in_the_admin_goes_through_the_service(
    client, site, director, privacy_officer
):
    from tests.clinic.formdata import form_data

    Client().force_login(privacy_officer)
    client.force_login(director)
    url = reverse("admin:clinic_site_change", args=[site.pk])
    data = form_data(client.get(url), "site_form")
    data["require_second_factor"] = ["on"]
    response = client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    site.refresh_from_db()
    assert site.require_second_factor
    assert not StaffSession.objects.filter(user=privacy_officer).exists()
    # The director's own session (signed in without a code) ended too.
    assert not StaffSession.objects.filter(user=director).exists()
    assert client.get(reverse("admin:index")).status_code == 302
