import secrets
import uuid
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from clinic import roles
from clinic.history import history_command
from clinic.models import Discipline, Membership, Person, Room, Service, Site
from queues import services as queue

# (name, code): the code is what reports and imports use.
SERVICES = [
    ("Primary care", "primary-care"),
    ("MOUD (buprenorphine, methadone)", "moud"),
    ("Wound care", "wound-care"),
    ("HIV/HCV testing", "hiv-hcv-testing"),
    ("Naloxone and safer-use supplies", "naloxone"),
    ("Counselling", "counselling"),
    ("Social services", "social-services"),
    ("Shower and laundry", "shower-laundry"),
]
ROOMS = ["Room 1", "Room 2", "Nurse station", "Peer desk"]
STAFF = [
    # username, first, last, roles at the demo site, discipline, admin access
    ("frontdesk", "Robin", "Ellis", [roles.FRONT_DESK], Discipline.FRONT_DESK, False),
    ("clinician", "Alex", "Rivera", [roles.CLINICIAN], Discipline.NURSE_PRACTITIONER, False),
    ("nurse", "Jo", "Okafor", [roles.CLINICIAN], Discipline.NURSE, False),
    ("peer", "Sam", "Whitehorse", [roles.CLINICIAN], Discipline.PEER_NAVIGATOR, False),
    ("director", "Dana", "Moreau", [roles.DIRECTOR], Discipline.ADMINISTRATION, True),
    ("privacy", "Priya", "Nair", [roles.PRIVACY_OFFICER], Discipline.ADMINISTRATION, False),
]
PEOPLE = [
    ("Marcus", "he/him", "Has a dog, Biscuit — water bowl by the door"),
    ("Jess", "she/her", "Likes coffee, two sugars"),
    ("River", "they/them", "Prefers the quiet room"),
    ("Tommy", "", "Reading glasses in the desk drawer"),
    ("Angela", "she/her", ""),
    ("Dee", "", "Call before noon"),
    ("Luis", "he/him", "Spanish preferred"),
    ("Kat", "she/they", "Bike inside is fine"),
]


class Command(BaseCommand):
    help = "Create (or refresh) a demo site, staff accounts and a few people with past visits."

    def add_arguments(self, parser):
        parser.add_argument("--password", help="Password for every demo account.")
        parser.add_argument(
            "--force",
            action="store_true",
            help="Run even with DEBUG off (never on a real clinic's data).",
        )

    @history_command
    def handle(self, *args, password=None, force=False, **options):
        if not settings.DEBUG and not force:
            raise CommandError(
                "seed_demo creates well-known accounts; with DEBUG off it needs --force."
            )
        password = password or secrets.token_urlsafe(12)
        roles.sync_roles()
        with transaction.atomic():
            site = self._site()
            staff = self._staff(site, password)
            self._people(site, staff)
        self.stdout.write(self.style.SUCCESS(f"Demo site: {site.name}"))
        self.stdout.write("Demo logins (username / password):")
        for username, *_rest in STAFF:
            self.stdout.write(f"  {username:<10} {password}")

    def _site(self) -> Site:
        site, _ = Site.objects.get_or_create(
            slug="riverside",
            defaults={
                "name": "Riverside Community Health",
                "timezone": "America/Chicago",
                "ticket_prefix": "R",
                "wait_warning_minutes": 30,
            },
        )
        for position, (name, code) in enumerate(SERVICES):
            Service.objects.update_or_create(
                site=site, name=name, defaults={"position": position, "code": code}
            )
        for position, name in enumerate(ROOMS):
            Room.objects.get_or_create(site=site, name=name, defaults={"position": position})
        return site

    def _staff(self, site, password):
        User = get_user_model()
        accounts = {}
        for username, first, last, groups, discipline, admin in STAFF:
            user, _ = User.objects.get_or_create(username=username)
            user.first_name, user.last_name, user.is_staff = first, last, admin
            user.set_password(password)
            user.save()
            membership, _ = Membership.objects.update_or_create(
                user=user, site=site, defaults={"discipline": discipline}
            )
            membership.roles.set(Group.objects.filter(name__in=groups))
            accounts[username] = user
        return accounts

    def _people(self, site, staff):
        now = timezone.now()
        services = list(site.services.all())
        rooms = list(site.rooms.all())
        for index, (name, pronouns, helps) in enumerate(PEOPLE):
            person, created = Person.objects.get_or_create(
                site=site,
                name=name,
                defaults={
                    "pronouns": pronouns,
                    "what_helps": helps,
                    "created_by": staff["frontdesk"],
                },
            )
            if not created or person.arrivals.exists():
                continue
            # A few past visits, the way they really happened: check-in, call, start, done.
            for visit_number in range(1 + index % 3):
                start = now - timedelta(days=3 + 9 * visit_number + index, hours=index % 5)
                by = staff[["clinician", "nurse", "peer"][visit_number % 3]]
                arrival = queue.arrival_check_in(
                    site=site,
                    by=staff["frontdesk"],
                    nonce=uuid.uuid4(),
                    person=person,
                    service=services[(index + visit_number) % len(services)],
                    now=start,
                )
                queue.arrival_call(
                    arrival=arrival,
                    by=by,
                    revision=None,
                    room=rooms[visit_number % len(rooms)],
                    now=start + timedelta(minutes=12 + index),
                )
                queue.arrival_start(
                    arrival=arrival, by=by, revision=None, now=start + timedelta(minutes=14 + index)
                )
                queue.arrival_finish(
                    arrival=arrival, by=by, revision=None, now=start + timedelta(minutes=40 + index)
                )
        # A few people here now, so the board and the display have something to show.
        waiting = Person.objects.filter(site=site, name__in=["Marcus", "Jess", "River"])
        for minutes, person in zip((25, 12, 4), waiting.order_by("name"), strict=True):
            if person.arrivals.filter(
                state__in=("waiting", "called", "with_staff", "stepped_out")
            ).exists():
                continue
            queue.arrival_check_in(
                site=site,
                by=staff["frontdesk"],
                nonce=uuid.uuid4(),
                person=person,
                service=services[minutes % len(services)],
                now=now - timedelta(minutes=minutes),
            )
