import uuid

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from clinic.models import Discipline, Membership, Person, Room, Service, Site


class SiteFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Site

    name = factory.Sequence(lambda n: f"Site {n}")
    slug = factory.Sequence(lambda n: f"site-{n}")
    timezone = "America/Chicago"
    ticket_prefix = "K"


class ServiceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Service

    site = factory.SubFactory(SiteFactory)
    name = factory.Sequence(lambda n: f"Service {n}")


class RoomFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Room

    site = factory.SubFactory(SiteFactory)
    name = factory.Sequence(lambda n: f"Room {n}")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()

    username = factory.Sequence(lambda n: f"staff{n}")
    first_name = factory.Sequence(lambda n: f"Staff{n}")
    password = factory.django.Password(None)  # unusable: tests sign in with force_login


class PersonFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Person

    site = factory.SubFactory(SiteFactory)
    name = factory.Sequence(lambda n: f"Person {n}")


def make_staff(*, site, roles, discipline=Discipline.OTHER, **fields):
    """A staff member holding `roles` (role names) at `site` (None: no site, so no roles)."""
    user = UserFactory(**fields)
    if site is not None:
        grant(user, site, *roles, discipline=discipline)
    return user


def grant(user, site, *roles, discipline=Discipline.OTHER) -> Membership:
    """Give `user` these roles at `site` (a membership there, made if needed)."""
    membership, _created = Membership.objects.get_or_create(
        user=user, site=site, defaults={"discipline": discipline}
    )
    membership.roles.add(*Group.objects.filter(name__in=roles))
    return membership


def check_in(*, site, by, name=None, person=None, **kwargs):
    from queues.services import arrival_check_in

    return arrival_check_in(
        site=site,
        by=by,
        nonce=kwargs.pop("nonce", None) or uuid.uuid4(),
        person=person,
        name=name if name is not None else ("" if person else f"Walk-in {uuid.uuid4().hex[:6]}"),
        **kwargs,
    )
