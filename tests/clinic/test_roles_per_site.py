"""Roles are held per site: a role counts only at the site of the membership that holds it.

The matrix: every role's permissions at its own site, nothing at another, and a person who is
a director at one site and a clinician at another acting as each where they are each.
"""

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from clinic import roles
from clinic.models import Membership
from clinic.sites import (
    SESSION_SITE_KEY,
    SitePerms,
    can,
    current_site,
    directed_sites,
    roles_at,
    site_perms,
    staff_who_can,
    user_sites,
)
from tests.factories import PersonFactory, SiteFactory, UserFactory, grant, make_staff

ALL_PERMS = sorted({perm for perms in roles.ROLE_PERMISSIONS.values() for perm in perms})


@pytest.mark.parametrize("role", roles.ROLE_NAMES)
@pytest.mark.parametrize("perm", ALL_PERMS)
def test_a_role_grants_exactly_its_permissions_at_its_site_and_nothing_elsewhere(
    site, other_site, role, perm
):
    user = make_staff(site=site, roles=[role])
    assert can(user, perm, site) is (perm in roles.ROLE_PERMISSIONS[role])
    assert can(user, perm, other_site) is False


@pytest.fixture
def dana(site, other_site):
    """Director at Riverside, clinician at Hillside."""
    user = make_staff(site=site, roles=[roles.DIRECTOR], username="dana")
    grant(user, other_site, roles.CLINICIAN)
    return user


def test_a_director_at_one_site_and_clinician_at_another_is_each_where_they_are_each(
    site, other_site, dana
):
    assert can(dana, "reports.view_reports", site)
    assert can(dana, "clinic.change_site", site)
    assert not can(dana, "queue.call_arrival", site)
    assert not can(dana, "visits.view_clinical", site)

    assert can(dana, "queue.call_arrival", other_site)
    assert can(dana, "visits.view_clinical", other_site)
    assert not can(dana, "reports.view_reports", other_site)
    assert not can(dana, "clinic.change_site", other_site)

    assert roles_at(dana, site) == {roles.DIRECTOR}
    assert roles_at(dana, other_site) == {roles.CLINICIAN}
    assert list(directed_sites(dana)) == [site]
    assert site_perms(dana, other_site) == frozenset(roles.ROLE_PERMISSIONS[roles.CLINICIAN])


def test_pages_follow_the_role_at_the_site_the_person_is_acting_for(client, site, other_site, dana):
    riverside_person = PersonFactory(site=site)
    hillside_person = PersonFactory(site=other_site)
    client.force_login(dana)

    # Riverside (where they joined first): a director's pages, no queue, no clinical record.
    assert client.get(reverse("reports:dashboard")).status_code == 200
    assert client.get(reverse("queues:board")).status_code == 403
    assert client.get(reverse("visits:person", args=[riverside_person.pk])).status_code == 403

    client.post(reverse("switch_site"), {"site": other_site.slug})
    assert client.session[SESSION_SITE_KEY] == other_site.pk
    assert client.get(reverse("queues:board")).status_code == 200
    assert client.get(reverse("visits:person", args=[hillside_person.pk])).status_code == 200
    assert client.get(reverse("reports:dashboard")).status_code == 403
    # Another site's person is not reachable from here.
    assert client.get(reverse("visits:person", args=[riverside_person.pk])).status_code == 404


def test_the_navigation_offers_what_the_role_at_the_current_site_allows(
    client, site, other_site, dana
):
    client.force_login(dana)
    html = client.get(reverse("reports:dashboard")).content.decode()
    assert 'href="/reports/"' in html
    assert 'href="/queue/board/"' not in html

    client.post(reverse("switch_site"), {"site": other_site.slug})
    html = client.get(reverse("queues:board")).content.decode()
    assert 'href="/queue/board/"' in html
    assert 'href="/reports/"' not in html


def test_a_global_group_grants_nothing(site):
    user = make_staff(site=site, roles=[])
    user.groups.add(Group.objects.get(name=roles.CLINICIAN))
    assert not can(user, "queue.call_arrival", site)
    assert site_perms(user, site) == frozenset()
    # A membership without a role is no site to act for.
    assert list(user_sites(user)) == []


def test_a_superuser_gets_nothing_without_a_role_there(client, site, other_site):
    root = UserFactory(is_superuser=True, is_staff=True)
    grant(root, other_site, roles.FRONT_DESK)
    Membership.objects.create(user=root, site=site)
    assert not can(root, "queue.view_queue", site)
    assert can(root, "queue.view_queue", other_site)
    assert not can(root, "queue.call_arrival", other_site)


def test_a_role_at_a_deactivated_site_or_on_a_deactivated_account_grants_nothing(
    site, other_site, dana
):
    other_site.is_active = False
    other_site.save()
    assert not can(dana, "queue.call_arrival", other_site)
    dana.is_active = False
    dana.save()
    assert not can(dana, "reports.view_reports", site)
    assert site_perms(dana, site) == frozenset()


def test_hand_off_candidates_are_those_who_may_call_at_that_site(site, other_site, dana):
    clinician_here = make_staff(site=site, roles=[roles.CLINICIAN])
    assert list(staff_who_can("queue.call_arrival", site)) == [clinician_here]
    assert list(staff_who_can("queue.call_arrival", other_site)) == [dana]


def test_without_a_choice_staff_act_for_the_first_site_they_were_given_a_role_at(
    rf, site, other_site, dana
):
    request = rf.get("/")
    request.user = dana
    request.session = {}
    assert current_site(request) == site
    request.session[SESSION_SITE_KEY] = other_site.pk
    assert current_site(request) == other_site
    # A site where they hold no role cannot be chosen.
    third = SiteFactory()
    Membership.objects.create(user=dana, site=third)
    request.session[SESSION_SITE_KEY] = third.pk
    assert current_site(request) == site


def test_template_perms_answer_for_the_current_site_only():
    perms = SitePerms(frozenset({"queue.check_in"}))
    assert perms["queue"]["check_in"] is True
    assert perms["queue"]["call_arrival"] is False
    assert bool(perms["queue"]) is True
    assert bool(perms["visits"]) is False
    assert "queue.check_in" in perms
    assert "visits" not in perms
