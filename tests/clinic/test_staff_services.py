"""The staff services (clinic/staff.py): who may change whose account and memberships, every
refusal's code, and which changes end the account's sessions."""

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.test import Client

from clinic import roles, staff
from clinic.models import Discipline, Membership, Site, StaffSession
from tests.factories import UserFactory, grant, make_staff

User = get_user_model()
PASSWORD = "river-otter-lantern-42"


def codes(error: ValidationError) -> set[str]:
    if hasattr(error, "error_dict"):
        return {e.code for errors in error.error_dict.values() for e in errors}
    return {e.code for e in error.error_list}


def refused(code: str, service, **kwargs):
    with pytest.raises(ValidationError) as caught:
        service(**kwargs)
    assert codes(caught.value) == {code}
    return caught.value


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def roles_of(membership) -> set[str]:
    return set(Membership.objects.get(pk=membership.pk).roles.values_list("name", flat=True))


@pytest.fixture
def shared_clinician(site, other_site):
    user = make_staff(site=site, roles=[roles.CLINICIAN], username="casey")
    grant(user, other_site, roles.CLINICIAN)
    return user


@pytest.fixture
def operator(db):
    return UserFactory(username="root", is_superuser=True)


# --- staff_create -------------------------------------------------------------------------------


def test_staff_create_makes_the_account_and_its_membership_together(site, director):
    membership = staff.staff_create(
        by=director,
        site=site,
        username="jo",
        password=PASSWORD,
        first_name="Jo",
        last_name="Okafor",
        discipline=Discipline.NURSE,
        roles=[roles.CLINICIAN, roles.FRONT_DESK],
    )
    jo = membership.user
    assert jo.check_password(PASSWORD)
    assert (jo.first_name, jo.last_name, jo.is_staff, jo.is_superuser) == (
        "Jo",
        "Okafor",
        False,
        False,
    )
    assert (membership.site, membership.discipline) == (site, Discipline.NURSE)
    assert roles_of(membership) == {roles.CLINICIAN, roles.FRONT_DESK}


def test_staff_create_refusals(site, other_site, director, clinician):
    base = {"username": "jo", "password": PASSWORD, "discipline": Discipline.NURSE}
    refused("not_director", staff.staff_create, by=director, site=other_site, roles=[], **base)
    refused("not_director", staff.staff_create, by=clinician, site=site, roles=[], **base)
    error = refused(
        "unknown_role", staff.staff_create, by=director, site=site, roles=["admin"], **base
    )
    assert "roles" in error.error_dict
    taken = {**base, "username": "ALEX"}  # the clinician is "alex"
    error = refused("username_taken", staff.staff_create, by=director, site=site, roles=[], **taken)
    assert "username" in error.error_dict
    assert not User.objects.filter(username="jo").exists()


# --- memberships --------------------------------------------------------------------------------


def test_membership_add_gives_roles_only_at_a_site_the_director_directs(
    site, other_site, director, clinician, other_site_clinician
):
    elsewhere = Site.objects.create(name="Elsewhere", slug="elsewhere")
    grant(director, elsewhere, roles.DIRECTOR)
    added = staff.membership_add(
        by=director,
        account=clinician,
        site=elsewhere,
        discipline=Discipline.NURSE,
        roles=[roles.CLINICIAN],
    )
    assert roles_of(added) == {roles.CLINICIAN}
    kwargs = {"discipline": Discipline.NURSE, "roles": [roles.DIRECTOR]}
    refused(
        "not_director",
        staff.membership_add,
        by=director,
        account=clinician,
        site=other_site,
        **kwargs,
    )
    refused(
        "already_member", staff.membership_add, by=director, account=clinician, site=site, **kwargs
    )
    # Someone who works only at a site the director does not direct is not theirs to pick.
    refused(
        "not_at_your_sites",
        staff.membership_add,
        by=director,
        account=other_site_clinician,
        site=site,
        **kwargs,
    )


def test_adding_roles_keeps_sessions_and_taking_one_away_ends_them(site, director, clinician):
    theirs = signed_in(clinician)
    membership = clinician.memberships.get(site=site)

    staff.membership_set_roles(
        by=director, membership=membership, roles=[roles.CLINICIAN, roles.FRONT_DESK]
    )
    assert StaffSession.objects.filter(user=clinician).count() == 1

    staff.membership_set_roles(
        by=director, membership=membership, roles=[roles.CLINICIAN], discipline=Discipline.NURSE
    )
    assert not StaffSession.objects.filter(user=clinician).exists()
    assert theirs.get("/queue/board/").status_code == 302
    membership.refresh_from_db()
    assert membership.discipline == Discipline.NURSE
    assert roles_of(membership) == {roles.CLINICIAN}


def test_membership_set_roles_refusals(site, other_site, director, other_site_clinician, operator):
    refused(
        "not_director",
        staff.membership_set_roles,
        by=director,
        membership=other_site_clinician.memberships.get(),
        roles=[roles.DIRECTOR],
    )
    own = director.memberships.get(site=site)
    error = refused(
        "own_director_role",
        staff.membership_set_roles,
        by=director,
        membership=own,
        roles=[roles.CLINICIAN],
    )
    assert "director" in error.error_dict["roles"][0].message
    refused(
        "unknown_role",
        staff.membership_set_roles,
        by=director,
        membership=own,
        roles=[roles.DIRECTOR, "root"],
    )
    operators_own = grant(operator, site, roles.CLINICIAN)
    refused(
        "operator_account",
        staff.membership_set_roles,
        by=director,
        membership=operators_own,
        roles=[],
    )
    assert roles_of(own) == {roles.DIRECTOR}


def test_a_director_may_add_roles_to_themselves_without_being_signed_out(site, director):
    mine = signed_in(director)
    key = mine.cookies["sessionid"].value
    staff.membership_set_roles(
        by=director,
        membership=director.memberships.get(),
        roles=[roles.DIRECTOR, roles.CLINICIAN],
        keep_session=key,
    )
    staff.membership_set_roles(
        by=director,
        membership=director.memberships.get(),
        roles=[roles.DIRECTOR],
        keep_session=key,
    )
    assert StaffSession.objects.filter(user=director, session_key=key).exists()


def test_membership_remove_ends_sessions_and_never_removes_oneself(
    site, director, clinician, other_site_clinician
):
    signed_in(clinician)
    staff.membership_remove(by=director, membership=clinician.memberships.get())
    assert not clinician.memberships.exists()
    assert not StaffSession.objects.filter(user=clinician).exists()

    refused(
        "own_director_role",
        staff.membership_remove,
        by=director,
        membership=director.memberships.get(),
    )
    refused(
        "not_director",
        staff.membership_remove,
        by=director,
        membership=other_site_clinician.memberships.get(),
    )
    assert director.memberships.exists() and other_site_clinician.memberships.exists()


def test_another_director_of_the_site_may_take_a_director_off(site, director):
    colleague = make_staff(site=site, roles=[roles.DIRECTOR], username="dee")
    staff.membership_set_roles(
        by=colleague, membership=director.memberships.get(), roles=[roles.CLINICIAN]
    )
    assert roles_of(director.memberships.get()) == {roles.CLINICIAN}


# --- the account itself ------------------------------------------------------------------------


def test_staff_set_password_ends_every_session_of_the_account(site, director, clinician):
    one, two = signed_in(clinician), signed_in(clinician)
    assert StaffSession.objects.filter(user=clinician).count() == 2
    staff.staff_set_password(by=director, account=clinician, password=PASSWORD)
    clinician.refresh_from_db()
    assert clinician.check_password(PASSWORD)
    assert not StaffSession.objects.filter(user=clinician).exists()
    assert one.get("/queue/board/").status_code == 302
    assert two.get("/queue/board/").status_code == 302


def test_account_changes_need_every_membership_at_a_directed_site(
    site, other_site, director, shared_clinician, other_site_clinician, operator, clinician
):
    for service, extra in (
        (staff.staff_set_password, {"password": PASSWORD}),
        (staff.staff_update, {"first_name": "Taken"}),
        (staff.staff_set_active, {"active": False}),
    ):
        refused("account_elsewhere", service, by=director, account=shared_clinician, **extra)
        refused("not_at_your_sites", service, by=director, account=other_site_clinician, **extra)
        refused("own_account", service, by=director, account=director, **extra)
        refused("operator_account", service, by=director, account=operator, **extra)
        refused("not_at_your_sites", service, by=clinician, account=director, **extra)
    shared_clinician.refresh_from_db()
    assert shared_clinician.is_active and shared_clinician.first_name != "Taken"
    assert not shared_clinician.has_usable_password()


def test_a_director_of_both_sites_may_change_an_account_working_at_both(
    site, other_site, director, shared_clinician
):
    grant(director, other_site, roles.DIRECTOR)
    staff.staff_update(by=director, account=shared_clinician, first_name="Casey", last_name="Li")
    shared_clinician.refresh_from_db()
    assert (shared_clinician.first_name, shared_clinician.last_name) == ("Casey", "Li")


def test_deactivating_ends_sessions_and_reactivating_does_not_sign_anyone_in(
    site, director, clinician
):
    signed_in(clinician)
    staff.staff_set_active(by=director, account=clinician, active=False)
    clinician.refresh_from_db()
    assert not clinician.is_active
    assert not StaffSession.objects.filter(user=clinician).exists()
    staff.staff_set_active(by=director, account=clinician, active=True)
    clinician.refresh_from_db()
    assert clinician.is_active


def test_only_operators_change_operator_fields_and_nobody_deactivates_themselves(
    site, director, clinician, operator
):
    refused("operator_only", staff.staff_update, by=director, account=clinician, is_superuser=True)
    refused("username_taken", staff.staff_update, by=director, account=clinician, username="DANA")
    refused("own_account", staff.staff_update, by=operator, account=operator, is_active=False)
    staff.staff_update(by=operator, account=clinician, is_staff=True)
    clinician.refresh_from_db()
    assert clinician.is_staff and not clinician.is_superuser
    with pytest.raises(TypeError):
        staff.staff_update(by=operator, account=clinician, password="x")


def test_operators_manage_every_site(site, other_site, operator, other_site_clinician):
    staff.staff_set_password(by=operator, account=other_site_clinician, password=PASSWORD)
    staff.membership_set_roles(
        by=operator,
        membership=other_site_clinician.memberships.get(),
        roles=[roles.DIRECTOR],
    )
    assert roles_of(other_site_clinician.memberships.get()) == {roles.DIRECTOR}
    refused(
        "own_account", staff.staff_set_password, by=operator, account=operator, password=PASSWORD
    )


def test_a_deactivated_director_may_do_nothing(site, director, clinician):
    User.objects.filter(pk=director.pk).update(is_active=False)
    director.refresh_from_db()
    refused(
        "not_at_your_sites",
        staff.staff_set_password,
        by=director,
        account=clinician,
        password=PASSWORD,
    )
    refused(
        "not_director",
        staff.membership_set_roles,
        by=director,
        membership=clinician.memberships.get(),
        roles=[],
    )


def test_accounts_directed_by_a_director_are_their_sites_people_never_superusers(
    site, other_site, director, clinician, shared_clinician, other_site_clinician, operator
):
    grant(operator, site, roles.CLINICIAN)
    assert set(staff.accounts_directed_by(director)) == {director, clinician, shared_clinician}
    assert set(staff.accounts_directed_by(operator)) == set(User.objects.all())
    assert not staff.accounts_directed_by(clinician).exists()
