"""Upgrading to roles per site: nobody gains or loses access at a site they work at."""

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from clinic import roles
from clinic.sites import can

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _as_the_owner_role():
    """Migrating back and forth changes the schema: the owner role's work (with two roles)."""
    from clinic.db_roles import as_owner

    with as_owner():
        yield


BEFORE = [("clinic", "0005_accesslog_release_kinds")]
PERMS = sorted({perm for perms in roles.ROLE_PERMISSIONS.values() for perm in perms})


def test_global_roles_become_the_same_roles_at_every_site_each_person_works_at():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    try:
        old = executor.loader.project_state(BEFORE).apps
        Site = old.get_model("clinic", "Site")
        Membership = old.get_model("clinic", "Membership")
        User = old.get_model("auth", "User")
        Group = old.get_model("auth", "Group")
        group = {name: Group.objects.get_or_create(name=name)[0] for name in roles.ROLE_NAMES}
        a = Site.objects.create(name="A", slug="a")
        b = Site.objects.create(name="B", slug="b")
        Site.objects.create(name="C", slug="c")
        people = {
            "both": ([roles.DIRECTOR, roles.CLINICIAN], [a, b]),
            "desk": ([roles.FRONT_DESK], [a]),
            "privacy": ([roles.PRIVACY_OFFICER], [b]),
            "none": ([], [a]),
            "nowhere": ([roles.CLINICIAN], []),
        }
        for username, (role_names, sites) in people.items():
            user = User.objects.create(username=username)
            user.groups.set([group[name] for name in role_names])
            for s in sites:
                Membership.objects.create(user=user, site=s)
        # An unrelated group is left alone.
        user = User.objects.get(username="desk")
        user.groups.add(Group.objects.create(name="newsletter"))
    finally:
        call_command("migrate", verbosity=0)

    from django.contrib.auth import get_user_model

    from clinic.models import Membership as NewMembership
    from clinic.models import Site as NewSite

    users = {u.username: u for u in get_user_model().objects.all()}
    sites = {s.slug: s for s in NewSite.objects.all()}
    for username, (role_names, member_of) in people.items():
        user = users[username]
        slugs = {s.slug for s in member_of}
        for slug, s in sites.items():
            memberships = NewMembership.objects.filter(user=user, site=s)
            held = set(memberships.values_list("roles__name", flat=True)) - {None}
            assert held == (set(role_names) if slug in slugs else set()), (username, slug)
            for perm in PERMS:
                expected = slug in slugs and any(
                    perm in roles.ROLE_PERMISSIONS[name] for name in role_names
                )
                assert can(user, perm, s) is expected, (username, slug, perm)
        assert not user.groups.filter(name__in=roles.ROLE_NAMES).exists()
    assert list(users["desk"].groups.values_list("name", flat=True)) == ["newsletter"]
    assert sites["c"].memberships.count() == 0


def test_going_back_gives_each_person_the_roles_they_held_anywhere():
    from clinic.models import Site
    from tests.factories import grant, make_staff

    a = Site.objects.create(name="A", slug="a")
    b = Site.objects.create(name="B", slug="b")
    user = make_staff(site=a, roles=[roles.DIRECTOR])
    grant(user, b, roles.CLINICIAN)
    executor = MigrationExecutor(connection)
    try:
        executor.migrate(BEFORE)
        old = executor.loader.project_state(BEFORE).apps
        User = old.get_model("auth", "User")
        names = set(User.objects.get(pk=user.pk).groups.values_list("name", flat=True))
        assert names == {roles.DIRECTOR, roles.CLINICIAN}
    finally:
        call_command("migrate", verbosity=0)
