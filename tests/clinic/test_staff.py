"""The staff page (/staff/): who may open it (403/404/405 matrix) and what a director does
there: add an account, set roles, set a password, take someone off the site, deactivate."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from clinic import roles
from clinic.models import Membership, StaffSession
from clinic.sites import SESSION_SITE_KEY
from tests.factories import UserFactory, grant, make_staff
from tests.helpers import PERSONAS, assert_login_redirect, messages_of

User = get_user_model()
PASSWORD = "river-otter-lantern-42"


@pytest.fixture
def shared_clinician(site, other_site):
    user = make_staff(site=site, roles=[roles.CLINICIAN], username="casey", first_name="Casey")
    grant(user, other_site, roles.CLINICIAN)
    return user


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def role_names(user, site) -> set[str]:
    return set(user.memberships.get(site=site).roles.values_list("name", flat=True))


PAGES = [
    ("GET", "staff:list", False),
    ("GET", "staff:new", False),
    ("GET", "staff:member", True),
    ("POST", "staff:roles", True),
    ("POST", "staff:password", True),
    ("POST", "staff:remove", True),
    ("POST", "staff:active", True),
]


def page_url(name, with_pk, pk):
    return reverse(name, args=[pk] if with_pk else [])


# --- who may open what -------------------------------------------------------------------------


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize(("method", "name", "with_pk"), PAGES, ids=[p[1] for p in PAGES])
def test_only_the_sites_director_reaches_the_staff_pages(
    client, login, persona, method, name, with_pk, front_desk
):
    login(persona)
    target = page_url(name, with_pk, front_desk.pk)
    response = client.get(target) if method == "GET" else client.post(target, {})
    if persona == "anonymous":
        assert_login_redirect(response)
    elif persona == "director":
        assert response.status_code in (200, 302, 400)
    else:
        assert response.status_code == 403
        assert front_desk.is_active and front_desk.memberships.exists()


@pytest.mark.parametrize(("method", "name", "with_pk"), PAGES, ids=[p[1] for p in PAGES])
def test_the_wrong_method_is_405(client, director, front_desk, method, name, with_pk):
    client.force_login(director)
    target = page_url(name, with_pk, front_desk.pk)
    if name == "staff:new":  # GET and POST
        response = client.put(target)
    elif method == "GET":
        response = client.post(target, {})
    else:
        response = client.get(target)
    assert response.status_code == 405


@pytest.mark.parametrize(("method", "name", "with_pk"), [p for p in PAGES if p[2]])
def test_an_account_not_at_the_current_site_is_404(
    client, director, other_site_clinician, shared_clinician, other_site, method, name, with_pk
):
    client.force_login(director)
    target = page_url(name, True, other_site_clinician.pk)
    response = client.get(target) if method == "GET" else client.post(target, {"active": "0"})
    assert response.status_code == 404
    other_site_clinician.refresh_from_db()
    assert other_site_clinician.is_active
    assert other_site_clinician.memberships.exists()


def test_a_superuser_without_a_role_gets_403(client, site):
    root = UserFactory(is_superuser=True, is_staff=True)
    grant(root, site)  # a membership without roles
    client.force_login(root)
    assert client.get(reverse("staff:list")).status_code == 403


def test_a_director_elsewhere_who_is_a_clinician_here_gets_403(client, site, other_site):
    two_hats = make_staff(site=other_site, roles=[roles.DIRECTOR])
    grant(two_hats, site, roles.CLINICIAN)
    client.force_login(two_hats)
    session = client.session
    session[SESSION_SITE_KEY] = site.pk
    session.save()
    assert client.get(reverse("staff:list")).status_code == 403
    session[SESSION_SITE_KEY] = other_site.pk
    session.save()
    assert client.get(reverse("staff:list")).status_code == 200


def test_changes_need_the_csrf_token(director, clinician):
    client = Client(enforce_csrf_checks=True)
    client.force_login(director)
    response = client.post(reverse("staff:active", args=[clinician.pk]), {"active": "0"})
    assert response.status_code == 403
    clinician.refresh_from_db()
    assert clinician.is_active


@pytest.mark.parametrize("persona", PERSONAS[1:])
def test_the_staff_link_is_in_the_navigation_for_directors_only(client, login, persona):
    login(persona)
    page = client.get(reverse("home"), follow=True)
    assert (f'href="{reverse("staff:list")}"' in page.content.decode()) == (persona == "director")


# --- the list ----------------------------------------------------------------------------------


def test_the_list_shows_this_sites_people_with_roles_discipline_and_status(
    client, site, director, clinician, front_desk, other_site_clinician, shared_clinician
):
    User.objects.filter(pk=front_desk.pk).update(is_active=False)
    client.force_login(director)
    response = client.get(reverse("staff:list"))
    assert response.status_code == 200
    rows = {row.account.username: row for row in response.context["rows"]}
    assert set(rows) == {"dana", "alex", "robin", "casey"}
    assert rows["alex"].roles == [roles.CLINICIAN]
    body = response.content.decode()
    assert "Care team (clinician)" in body and "Nurse practitioner" in body
    assert "Deactivated" in body
    assert "olive" not in body
    assert f'href="{reverse("staff:member", args=[clinician.pk])}"' in body


# --- adding an account --------------------------------------------------------------------------


def new_account(**overrides):
    return {
        "username": "jo",
        "first_name": "Jo",
        "last_name": "Okafor",
        "password1": PASSWORD,
        "password2": PASSWORD,
        "discipline": "nurse",
        "roles": [roles.CLINICIAN],
        **overrides,
    }


def test_a_director_adds_an_account_at_the_current_site(client, site, director):
    client.force_login(director)
    page = client.get(reverse("staff:new"))
    body = page.content.decode()
    assert '<label for="id_password2">' in body and 'type="checkbox" name="roles"' in body
    response = client.post(reverse("staff:new"), new_account())
    jo = User.objects.get(username="jo")
    assert response.status_code == 302
    assert response.url == reverse("staff:member", args=[jo.pk])  # an id, never a name
    assert jo.check_password(PASSWORD)
    assert (jo.memberships.get().site, jo.memberships.get().discipline) == (site, "nurse")
    assert role_names(jo, site) == {roles.CLINICIAN}
    assert messages_of(response) == ["Added Jo Okafor."]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"password2": "something-else-entirely-9"}, "password2"),
        ({"password1": "password", "password2": "password"}, "password2"),
        ({"password1": "jo-okafor", "password2": "jo-okafor"}, "password2"),
        ({"username": "DANA"}, "username"),
        ({"username": ""}, "username"),
        ({"roles": []}, "roles"),
        ({"roles": ["superuser"]}, "roles"),
        ({"discipline": "wizard"}, "discipline"),
    ],
)
def test_adding_an_account_refuses_bad_input(client, director, overrides, field):
    client.force_login(director)
    response = client.post(reverse("staff:new"), new_account(**overrides))
    assert response.status_code == 400
    assert field in response.context["form"].errors
    assert not User.objects.filter(username="jo").exists()


# --- roles --------------------------------------------------------------------------------------


def test_adding_a_role_keeps_their_sessions_and_taking_one_away_ends_them(
    client, site, director, clinician
):
    theirs = signed_in(clinician)
    client.force_login(director)
    target = reverse("staff:roles", args=[clinician.pk])
    both = {"discipline": "nurse", "roles": [roles.CLINICIAN, roles.FRONT_DESK]}
    assert client.post(target, both).status_code == 302
    assert role_names(clinician, site) == {roles.CLINICIAN, roles.FRONT_DESK}
    assert StaffSession.objects.filter(user=clinician).exists()

    response = client.post(target, {"discipline": "nurse", "roles": [roles.FRONT_DESK]})
    assert response.status_code == 302
    assert role_names(clinician, site) == {roles.FRONT_DESK}
    assert not StaffSession.objects.filter(user=clinician).exists()
    assert theirs.get(reverse("queues:board")).status_code == 302


def test_a_director_cannot_take_away_their_own_director_role_on_the_page(client, site, director):
    client.force_login(director)
    response = client.post(
        reverse("staff:roles", args=[director.pk]),
        {"discipline": "administration", "roles": [roles.CLINICIAN]},
    )
    assert response.status_code == 400
    assert "own director role" in str(response.context["roles_form"].errors["roles"])
    assert role_names(director, site) == {roles.DIRECTOR}
    # Adding a role to themselves keeps them signed in.
    response = client.post(
        reverse("staff:roles", args=[director.pk]),
        {"discipline": "administration", "roles": [roles.DIRECTOR, roles.CLINICIAN]},
    )
    assert response.status_code == 302
    assert client.get(reverse("staff:list")).status_code == 200


def test_roles_need_at_least_one(client, director, clinician):
    client.force_login(director)
    response = client.post(reverse("staff:roles", args=[clinician.pk]), {"discipline": "nurse"})
    assert response.status_code == 400
    assert "roles" in response.context["roles_form"].errors


# --- passwords ----------------------------------------------------------------------------------


def test_a_new_password_ends_every_session_of_theirs(client, director, clinician):
    one, two = signed_in(clinician), signed_in(clinician)
    client.force_login(director)
    response = client.post(
        reverse("staff:password", args=[clinician.pk]),
        {"new_password1": PASSWORD, "new_password2": PASSWORD},
    )
    assert response.status_code == 302
    clinician.refresh_from_db()
    assert clinician.check_password(PASSWORD)
    assert not StaffSession.objects.filter(user=clinician).exists()
    assert one.get(reverse("queues:board")).status_code == 302
    assert two.get(reverse("queues:board")).status_code == 302
    assert client.get(reverse("staff:list")).status_code == 200


def test_a_weak_or_mismatched_password_is_refused(client, director, clinician):
    client.force_login(director)
    for first, second in (("password", "password"), (PASSWORD, PASSWORD + "x"), ("", "")):
        response = client.post(
            reverse("staff:password", args=[clinician.pk]),
            {"new_password1": first, "new_password2": second},
        )
        assert response.status_code == 400
        assert response.context["password_form"].errors
    clinician.refresh_from_db()
    assert not clinician.has_usable_password()


def test_a_colleague_who_also_works_elsewhere_keeps_their_password(
    client, director, shared_clinician
):
    client.force_login(director)
    page = client.get(reverse("staff:member", args=[shared_clinician.pk]))
    body = page.content.decode()
    assert "also works at a site you do not direct" in body
    assert 'name="new_password1"' not in body
    assert 'name="active"' not in body
    response = client.post(
        reverse("staff:password", args=[shared_clinician.pk]),
        {"new_password1": PASSWORD, "new_password2": PASSWORD},
    )
    assert response.status_code == 400
    assert "also works at a site you do not direct" in response.content.decode()
    response = client.post(reverse("staff:active", args=[shared_clinician.pk]), {"active": "0"})
    assert response.status_code == 400
    shared_clinician.refresh_from_db()
    assert shared_clinician.is_active and not shared_clinician.has_usable_password()
    # Their roles here are still the director's to change.
    response = client.post(
        reverse("staff:roles", args=[shared_clinician.pk]),
        {"discipline": "nurse", "roles": [roles.FRONT_DESK]},
    )
    assert response.status_code == 302


def test_a_director_sets_no_password_of_their_own_here(client, director):
    client.force_login(director)
    page = client.get(reverse("staff:member", args=[director.pk]))
    assert 'name="new_password1"' not in page.content.decode()
    response = client.post(
        reverse("staff:password", args=[director.pk]),
        {"new_password1": PASSWORD, "new_password2": PASSWORD},
    )
    assert response.status_code == 400
    director.refresh_from_db()
    assert not director.check_password(PASSWORD)


# --- leaving ------------------------------------------------------------------------------------


def test_taking_someone_off_the_site_ends_their_sessions(client, site, director, shared_clinician):
    theirs = signed_in(shared_clinician)
    client.force_login(director)
    response = client.post(reverse("staff:remove", args=[shared_clinician.pk]))
    assert response.status_code == 302
    assert response.url == reverse("staff:list")
    assert not shared_clinician.memberships.filter(site=site).exists()
    assert shared_clinician.memberships.count() == 1  # still at Hillside
    assert not StaffSession.objects.filter(user=shared_clinician).exists()
    assert theirs.get(reverse("queues:board")).status_code == 302
    assert client.get(reverse("staff:member", args=[shared_clinician.pk])).status_code == 404


def test_a_director_cannot_take_themselves_off(client, site, director):
    client.force_login(director)
    response = client.post(reverse("staff:remove", args=[director.pk]))
    assert response.status_code == 400
    assert "cannot take yourself off" in response.content.decode()
    assert Membership.objects.filter(user=director, site=site).exists()


def test_deactivating_signs_them_out_and_reactivating_lets_them_in_again(
    client, director, clinician
):
    theirs = signed_in(clinician)
    client.force_login(director)
    response = client.post(reverse("staff:active", args=[clinician.pk]), {"active": "0"})
    assert response.status_code == 302
    clinician.refresh_from_db()
    assert not clinician.is_active
    assert not StaffSession.objects.filter(user=clinician).exists()
    assert theirs.get(reverse("queues:board")).status_code == 302
    page = client.get(reverse("staff:member", args=[clinician.pk]))
    assert "Let them sign in again" in page.content.decode()
    client.post(reverse("staff:active", args=[clinician.pk]), {"active": "1"})
    clinician.refresh_from_db()
    assert clinician.is_active


def test_a_director_cannot_deactivate_themselves(client, director):
    client.force_login(director)
    response = client.post(reverse("staff:active", args=[director.pk]), {"active": "0"})
    assert response.status_code == 400
    director.refresh_from_db()
    assert director.is_active


def test_a_superusers_membership_is_shown_but_left_to_the_operators(client, site, director):
    root = make_staff(site=site, roles=[roles.CLINICIAN], username="root", is_superuser=True)
    client.force_login(director)
    page = client.get(reverse("staff:member", args=[root.pk]))
    body = page.content.decode()
    assert page.status_code == 200
    assert "installation's operators" in body.replace("&#x27;", "'")
    for target, data in (
        ("staff:roles", {"discipline": "nurse", "roles": [roles.FRONT_DESK]}),
        ("staff:password", {"new_password1": PASSWORD, "new_password2": PASSWORD}),
        ("staff:remove", {}),
        ("staff:active", {"active": "0"}),
    ):
        assert client.post(reverse(target, args=[root.pk]), data).status_code == 400
    root.refresh_from_db()
    assert root.is_active and role_names(root, site) == {roles.CLINICIAN}
