"""Believable, reproducible synthetic clinic history for benchmarks and demos.

`generate_synthetic` fills sites of its own: their short names start with "synthetic-", and it
never writes to or reads from any other site. Running it again when synthetic sites exist is
refused unless `replace=True`, which first deletes exactly the synthetic sites and what they
hold (their people, arrivals, visits, shifts, and the inactive staff accounts made for them).

The same seed (with the same options and end date) gives the same history, row for row.

How it is built, and why it is fast:
1. Every person gets a pattern (one-time visitor, occasional, regular, medication with 7/14/28-day
   refills that stack when early and leave gaps when late, drifting away and coming back) and a
   list of contacts: (day, site, second of the day, person, outcome, appointment, medication).
   Anonymous naloxone contacts are added per site.
2. All contacts are sorted by day and time, so rows go in in the order a real clinic would have
   written them (tables end up physically ordered by date, as in production), then streamed in
   chunks as plain tuples with ids assigned here (reports/_bulk.py): COPY on PostgreSQL,
   executemany on SQLite. No model instances, no per-row ORM work.
3. On PostgreSQL the foreign keys from and to the tables it fills, and their non-unique indexes,
   are dropped for the load and put back at the end (one sort per index, one pass per foreign
   key, PostgreSQL's documented way to populate a database); unique constraints stay on. Those
   tables are locked until it commits, so run it when nobody is using the database: a
   benchmark database, or a demo before the demo.
Times: arrivals fall in opening hours (weekdays 8:00-16:30, one site also Saturday mornings);
the visit starts after a skewed wait (a few minutes to about 90, median about 15) and ends after
a 5-90 minute contact. About one arrival in ten is left before being seen. Synthetic arrivals,
like imported ones, get no ArrivalEvent trail (nothing here reads it; it would triple the rows).
"""

from __future__ import annotations

import math
import random
import time as clock
import zoneinfo
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import connection, models, transaction
from django.utils import timezone

from clinic.db_roles import APPEND_ONLY_TABLES, owns_tables, triggers_lifted
from clinic.models import Discipline, Membership, Person, Room, Service, Shift, Site
from queues.models import Arrival, ArrivalEvent, State, TicketCounter
from reports._bulk import (
    PERSON_COLUMNS,
    BulkWriter,
)
from visits.models import Appointment, Medication, MedicationEvent, Visit, VisitParticipant

PREFIX = "synthetic-"

# slug (after the prefix), name, time zone, ticket prefix, share of people, open on Saturdays
SITE_PRESETS = [
    ("northside", "Northside Community Health", "America/Chicago", "N", 0.45, True),
    ("harbor", "Harbor Street Clinic", "America/New_York", "H", 0.35, False),
    ("valley", "Valley Rural Health", "America/Denver", "V", 0.20, False),
]
TIMEZONES = ["America/Chicago", "America/New_York", "America/Denver", "America/Los_Angeles"]

# (name, code, how often it is part of a visit)
SERVICES = [
    ("Primary care", "primary-care", 30),
    ("MOUD (buprenorphine, methadone)", "moud", 0),  # medication visits only
    ("Wound care", "wound-care", 14),
    ("HIV/HCV testing", "hiv-hcv-testing", 10),
    ("Naloxone and safer-use supplies", "naloxone", 0),  # drawn separately
    ("Counselling", "counselling", 12),
    ("Social services", "social-services", 14),
    ("Shower and laundry", "shower-laundry", 8),
]
NALOXONE_SHARE = 0.15  # of visits by known people
ROOMS = ["Room 1", "Room 2", "Room 3", "Nurse station", "Peer desk"]
DISCIPLINES = [
    Discipline.NURSE_PRACTITIONER,
    Discipline.PHYSICIAN,
    Discipline.NURSE,
    Discipline.NURSE,
    Discipline.SOCIAL_WORKER,
    Discipline.CHW,
    Discipline.PEER_NAVIGATOR,
    Discipline.PSYCHOLOGIST,
]
_NAMES = """
Alex Ash Bailey Billie Blair Bo Cam Casey Charlie Dakota Dana Dee Drew Eli Emery Frankie Gabe
Gray Harper Hayden Indy Jamie Jay Jesse Jo Jordan Jules Kai Kay Kelly Kendall Lee Lou Marley Max
Mel Mica Morgan Nico Noel Pat Peyton Quinn Ray Reese Remy Riley River Robin Rory Rowan Sage Sam
Shay Sky Stevie Tate Terry Toni Val Wren
"""
FIRST_NAMES = _NAMES.split()
PRONOUNS = ["", "", "", "she/her", "he/him", "he/him", "they/them"]
WHAT_HELPS = [
    "Has a dog; water bowl by the door",
    "Likes coffee, two sugars",
    "Prefers the quiet room",
    "Call before noon",
    "Spanish preferred",
    "Bike inside is fine",
    "Text rather than call",
]

# pattern, share of people
PATTERNS = [
    ("one_time", 0.30),
    ("occasional", 0.25),
    ("regular", 0.15),
    ("medication", 0.20),
    ("drifter", 0.10),
]
LWBS_SHARE = 0.10
ANONYMOUS_SHARE = 0.03  # anonymous contacts, as a share of everyone else's arrivals
OUTREACH_SHARE = 0.02  # contacts out in the community: a visit with no arrival
OPEN_MINUTE, LAST_ARRIVAL_MINUTE = 8 * 60, 16 * 60 + 30
SATURDAY_OPEN, SATURDAY_LAST = 9 * 60, 12 * 60 + 30
VISITS_PER_STAFF_DAY = 12  # how many staff a day's arrivals call for

# medication value, share, action, supplies (weights)
MEDICATIONS = [
    (Medication.BUPRENORPHINE_SL, 0.45, "prescribed", ((7, 3), (14, 3), (28, 4))),
    (Medication.BUPRENORPHINE_NALOXONE, 0.20, "prescribed", ((7, 3), (14, 3), (28, 4))),
    (Medication.METHADONE, 0.20, "dispensed", ((7, 6), (14, 3), (28, 1))),
    (Medication.BUPRENORPHINE_XR, 0.08, "administered", ((28, 1),)),
    (Medication.NALTREXONE_ORAL, 0.07, "prescribed", ((14, 1), (28, 1))),
]
DOSES = {
    Medication.BUPRENORPHINE_SL: "16 mg daily",
    Medication.BUPRENORPHINE_NALOXONE: "16/4 mg daily",
    Medication.METHADONE: "80 mg daily",
    Medication.BUPRENORPHINE_XR: "300 mg monthly",
    Medication.NALTREXONE_ORAL: "50 mg daily",
}

CHUNK = 20_000  # contacts written per round

# Plain str values for raw rows (the database drivers need no enum types).
_LEFT, _DONE = State.LEFT.value, State.DONE.value
_QUEUE, _OUTREACH = Visit.Origin.QUEUE.value, Visit.Origin.OUTREACH.value


class SyntheticRefused(Exception):
    def __init__(self, code: str, message: str):
        self.code = code
        super().__init__(message)


@dataclass
class SyntheticResult:
    sites: list[str] = field(default_factory=list)
    start: date | None = None
    end: date | None = None
    counts: dict[str, int] = field(default_factory=dict)
    deleted: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass
class _Site:
    slug: str
    name: str
    tz: str
    prefix: str
    weight: float
    saturday: bool
    pk: int = 0
    services: dict[str, int] = field(default_factory=dict)  # code -> pk
    rooms: list[int] = field(default_factory=list)
    staff: list[tuple[int, str]] = field(default_factory=list)  # (user pk, discipline)


# A contact: sorted by its first four fields, so the whole history is in time order.
# (day offset, site index, second of the day, seq, person index (-1 anonymous), left before seen,
#  appointment, medication index (-1 none), days' supply, outreach)
_Contact = tuple[int, int, int, int, int, bool, bool, int, int, bool]


def synthetic_sites():
    return Site.objects.filter(slug__startswith=PREFIX)


def site_specs(*, sites: int = 3, slugs: Sequence[str] = ()) -> list[_Site]:
    if slugs:
        names = [s if s.startswith(PREFIX) else PREFIX + s for s in slugs]
        if len(set(names)) != len(names):
            raise SyntheticRefused("repeated_site", "The same --site is named twice.")
    else:
        if sites < 1:
            raise SyntheticRefused("no_sites", "At least one site is needed.")
        names = [PREFIX + preset[0] for preset in SITE_PRESETS[:sites]]
        names += [f"{PREFIX}site-{n}" for n in range(len(names) + 1, sites + 1)]
    specs = []
    for index, slug in enumerate(names):
        if index < len(SITE_PRESETS):
            _short, name, tz, prefix, weight, saturday = SITE_PRESETS[index]
        else:
            name, tz, weight, saturday = f"Clinic {index + 1}", TIMEZONES[index % 4], 0.15, False
            prefix = chr(ord("A") + index % 26)
        if slugs:
            name = slug.removeprefix(PREFIX).replace("-", " ").title()
        specs.append(_Site(slug, f"{name} (synthetic)", tz, prefix, weight, saturday))
    return specs


# --- phase 1: who comes when --------------------------------------------------------------------


def _is_open(site: _Site, weekday: int) -> bool:
    return weekday < 5 or (site.saturday and weekday == 5)


def _second(rng: random.Random, saturday: bool) -> int:
    """When someone arrives, in seconds after local midnight."""
    if saturday:
        minute = rng.uniform(SATURDAY_OPEN, SATURDAY_LAST)
    # Most people come in the morning; a smaller crowd after lunch.
    elif rng.random() < 0.65:
        minute = rng.triangular(OPEN_MINUTE, LAST_ARRIVAL_MINUTE, OPEN_MINUTE + 60)
    else:
        minute = rng.triangular(OPEN_MINUTE, LAST_ARRIVAL_MINUTE, 13 * 60 + 30)
    return int(minute * 60)


def _days_for(rng: random.Random, pattern: str, first: int, days: int) -> list[tuple[int, int]]:
    """(day offset, medication supply or 0) of each planned contact, first on day `first`."""
    plan = [(first, 0)]
    if pattern == "one_time":
        if rng.random() < 0.3:
            plan.append((first + rng.randint(1, 20), 0))
    elif pattern in ("occasional", "regular"):
        mean_gap, life = (55, 450) if pattern == "occasional" else (11, 320)
        end = first + rng.expovariate(1 / life)
        day = first
        while True:
            if pattern == "occasional":
                day += 1 + int(rng.expovariate(1 / mean_gap))
            else:
                day += int(rng.triangular(5, 22, 7))
            if day > end or day >= days:
                break
            plan.append((day, 0))
    elif pattern == "drifter":
        day = first
        while day < days:
            for _ in range(rng.randint(1, 5)):
                day += rng.randint(3, 14)
                plan.append((day, 0))
            day += rng.randint(40, 300)  # away a while, then back
            plan.append((day, 0))
    return plan


def _medication_plan(
    rng: random.Random, first: int, days: int, supplies: Sequence[tuple[int, int]]
) -> list[tuple[int, int]]:
    """Refill visits with their supply: early refills stack, late ones leave gaps; episodes end
    and about half the people come back after a while."""
    values = [s for s, _w in supplies]
    weights = [w for _s, w in supplies]
    plan = []
    day = first
    while day < days:
        episode_end = day + rng.expovariate(1 / 240)
        while day < days:
            supply = rng.choices(values, weights)[0]
            plan.append((day, supply))
            if day > episode_end:
                break
            r = rng.random()
            if r < 0.20:
                late = -rng.randint(1, 4)  # early: supply stacks
            elif r < 0.75:
                late = rng.randint(0, 2)
            elif r < 0.95:
                late = rng.randint(3, 14)  # a gap; 8+ days breaks continuity
            else:
                late = rng.randint(15, 30)
            day += max(1, supply + late)
            if rng.random() < 0.15:  # a visit in between, no medication
                plan.append((day - rng.randint(1, max(1, supply // 2)), 0))
        if rng.random() < 0.5:
            break
        day += rng.randint(35, 240)  # drifted away, then came back
    return plan


def _contacts(
    rng: random.Random, *, people: int, days: int, start: date, sites: list[_Site]
) -> tuple[list[_Contact], list[tuple[int, int]]]:
    """Every contact in the period, in time order, and (site index, first day) per person."""
    weekdays = [(start + timedelta(days=d)).weekday() for d in range(days)]
    site_weights = [s.weight for s in sites]
    pattern_names = [p for p, _w in PATTERNS]
    pattern_weights = [w for _p, w in PATTERNS]
    med_weights = [m[1] for m in MEDICATIONS]
    contacts: list[_Contact] = []
    people_rows: list[tuple[int, int]] = []
    seq = 0

    def open_day(site: _Site, day: int) -> int:
        while day < days and not _is_open(site, weekdays[day]):
            day += 1
        return day

    for person in range(people):
        s = rng.choices(range(len(sites)), site_weights)[0]
        site = sites[s]
        pattern = rng.choices(pattern_names, pattern_weights)[0]
        first = open_day(site, rng.randrange(days))
        while first >= days:  # the period ends on a closed day: the last open day before
            first = rng.randrange(days)
            first = open_day(site, first)
        med = -1
        if pattern == "medication":
            med = rng.choices(range(len(MEDICATIONS)), med_weights)[0]
            plan = _medication_plan(rng, first, days, MEDICATIONS[med][3])
        else:
            plan = _days_for(rng, pattern, first, days)
        appointment_share = {"medication": 0.28, "regular": 0.15}.get(pattern, 0.06)
        taken = set()
        for planned, supply in plan:
            day = open_day(site, planned)
            if day >= days or day in taken:
                continue
            if supply and rng.random() < LWBS_SHARE:
                # Came for the refill, left before being seen, came back a day or three later.
                taken.add(day)
                seq += 1
                contacts.append(
                    (
                        day,
                        s,
                        _second(rng, weekdays[day] == 5),
                        seq,
                        person,
                        True,
                        False,
                        -1,
                        0,
                        False,
                    )
                )
                day = open_day(site, day + rng.randint(1, 3))
                if day >= days or day in taken:
                    continue
            taken.add(day)
            left = not supply and rng.random() < LWBS_SHARE
            outreach = not supply and not left and rng.random() < OUTREACH_SHARE
            seq += 1
            contacts.append(
                (
                    day,
                    s,
                    _second(rng, weekdays[day] == 5),
                    seq,
                    person,
                    left,
                    not outreach and rng.random() < appointment_share,
                    med if supply else -1,
                    supply,
                    outreach,
                )
            )
        people_rows.append((s, first))

    # Anonymous contacts (naloxone at the door), spread over each site's open days.
    anonymous = int(len(contacts) * ANONYMOUS_SHARE)
    for _ in range(anonymous):
        s = rng.choices(range(len(sites)), site_weights)[0]
        day = open_day(sites[s], rng.randrange(days))
        if day >= days:
            continue
        seq += 1
        left = rng.random() < LWBS_SHARE
        contacts.append(
            (day, s, _second(rng, weekdays[day] == 5), seq, -1, left, False, -1, 0, False)
        )
    contacts.sort()
    return contacts, people_rows


# --- phase 2: writing ---------------------------------------------------------------------------


def _make_sites(specs: list[_Site], rng: random.Random, staff_per_site: list[int], members):
    User = get_user_model()
    for spec, roster in zip(specs, staff_per_site, strict=True):
        site = Site.objects.create(
            name=spec.name, slug=spec.slug, timezone=spec.tz, ticket_prefix=spec.prefix
        )
        spec.pk = site.pk
        for position, (name, code, _weight) in enumerate(SERVICES):
            spec.services[code] = Service.objects.create(
                site=site, name=name, code=code, position=position
            ).pk
        spec.rooms = [
            Room.objects.create(site=site, name=name, position=position).pk
            for position, name in enumerate(ROOMS[: 3 + len(specs) % 3])
        ]
        users = User.objects.bulk_create(
            [
                User(
                    username=f"{spec.slug}-staff-{n}",
                    first_name=rng.choice(FIRST_NAMES),
                    is_active=False,  # synthetic accounts can never sign in
                    password=make_password(None),
                )
                for n in range(1, roster + 1)
            ]
        )
        if any(u.pk is None for u in users):
            users = list(User.objects.filter(username__startswith=f"{spec.slug}-staff-"))
        users.sort(key=lambda u: int(u.username.rsplit("-", 1)[1]))
        Membership.objects.bulk_create(
            [
                Membership(
                    user=user,
                    site=site,
                    discipline=DISCIPLINES[n % len(DISCIPLINES)],
                    external_id=f"S{n + 1:04d}",
                )
                for n, user in enumerate(users)
            ]
        )
        spec.staff = [(u.pk, str(DISCIPLINES[n % len(DISCIPLINES)])) for n, u in enumerate(users)]
        for user in members:
            # The discipline and roles they have at the site they work at (a director:
            # administration, director).
            home = Membership.objects.filter(user=user).order_by("pk").first()
            membership = Membership.objects.create(
                user=user,
                site=site,
                discipline=home.discipline if home else Discipline.ADMINISTRATION,
            )
            if home is not None:
                membership.roles.set(home.roles.all())


def _noon_utc(day: date, tz) -> datetime:
    """Naive UTC of local noon; times of day are counted from it, because opening hours never
    cross a daylight-saving change (at 2-3 a.m.) while midnight can be on its other side."""
    return datetime.combine(day, time(12), tzinfo=tz).astimezone(UTC).replace(tzinfo=None)


# The tables filled (and on --replace emptied) by the generator.
_TABLES = (
    Person,
    Arrival,
    Visit,
    Visit.services.through,
    VisitParticipant,
    MedicationEvent,
    Shift,
    TicketCounter,
    ArrivalEvent,
    Appointment,
)


def generate(
    *,
    people: int,
    days: int,
    seed: int = 1,
    end: date | None = None,
    sites: int = 3,
    site_slugs: Sequence[str] = (),
    replace: bool = False,
    members: Iterable = (),
    force: bool = False,
    progress: Callable[[str], None] | None = None,
) -> SyntheticResult:
    """Create `people` people and their history over the `days` days ending on `end`
    (default: yesterday) at new synthetic sites. Refuses if synthetic sites exist, unless
    `replace`, and refuses beside real people (non-synthetic sites) unless DEBUG or `force`.
    Runs in one transaction."""
    started = clock.monotonic()
    say = progress or (lambda _message: None)
    if people < 1 or days < 1:
        raise SyntheticRefused("too_small", "--people and --days must be at least 1.")
    specs = site_specs(sites=sites, slugs=site_slugs)
    end = end or timezone.localdate() - timedelta(days=1)
    start = end - timedelta(days=days - 1)
    members = list(members)
    result = SyntheticResult(sites=[s.slug for s in specs], start=start, end=end)

    with transaction.atomic():
        writer = BulkWriter(trusted=True)
        existing = list(synthetic_sites().order_by("slug").values_list("slug", flat=True))
        if existing and not replace:
            raise SyntheticRefused(
                "exists",
                f"Synthetic sites already exist ({', '.join(existing)}); "
                "use --replace to delete them and make new ones.",
            )
        if (
            not settings.DEBUG
            and not force
            and Person.objects.exclude(site__slug__startswith=PREFIX).exists()
        ):
            raise SyntheticRefused(
                "real_data",
                "This database holds people at real sites and DEBUG is off; synthetic data "
                "goes only into its own synthetic-* sites, but to add it here anyway use --force.",
            )
        writer.drop_foreign_keys(_TABLES)
        if existing:
            result.deleted = delete_synthetic()
            say(f"deleted the earlier synthetic sites: {result.deleted}")

        rng = random.Random(seed)  # noqa: S311 - reproducible, not secret
        contacts, people_rows = _contacts(rng, people=people, days=days, start=start, sites=specs)
        say(f"planned {len(contacts)} contacts ({clock.monotonic() - started:.1f} s)")

        # Staff on shift each open day: enough for the day's arrivals, at least two.
        per_day = Counter((c[0], c[1]) for c in contacts)
        busiest = [
            max((n for (d, s), n in per_day.items() if s == i), default=0)
            for i in range(len(specs))
        ]
        rosters = [max(6, math.ceil(b / VISITS_PER_STAFF_DAY) + 3) for b in busiest]
        _make_sites(specs, rng, rosters, members)

        for model in _TABLES:
            writer.reserve(model)
        person_ids = _write_people(writer, rng, specs, people_rows, start)
        on_shift = _write_shifts(writer, rng, specs, per_day, start, days)
        _write_contacts(writer, rng, specs, contacts, person_ids, on_shift, start)
        writer.finish()
        say(
            "seconds writing: "
            + ", ".join(f"{table} {sec:.1f}" for table, sec in writer.seconds.most_common())
        )
        say(f"wrote everything ({clock.monotonic() - started:.1f} s)")

    labels = {
        Person: "people",
        Arrival: "arrivals",
        Visit: "visits",
        Visit.services.through: "services delivered",
        VisitParticipant: "visit participants",
        MedicationEvent: "medication events",
        Shift: "shifts",
        TicketCounter: "ticket counters",
    }
    result.counts = {label: writer.counts[m._meta.db_table] for m, label in labels.items()}
    result.counts["left before being seen"] = sum(1 for c in contacts if c[5])
    result.counts["staff accounts"] = sum(rosters)
    result.seconds = clock.monotonic() - started
    return result


def _write_people(writer, rng, specs, people_rows, start) -> list[int]:
    ids = writer.ids(Person, len(people_rows))
    rows = []
    for pk, (s, first) in zip(ids, people_rows, strict=True):
        spec = specs[s]
        created = _noon_utc(start + timedelta(days=first), _tz(spec)) - timedelta(hours=4)
        helps = rng.choice(WHAT_HELPS) if rng.random() < 0.15 else ""
        name = f"{rng.choice(FIRST_NAMES)} {chr(65 + rng.randrange(26))}."
        rows.append(
            (pk, spec.pk, name, rng.choice(PRONOUNS), None, "", helps, str(created), None, "")
        )
        if len(rows) >= CHUNK:
            writer.write(Person, PERSON_COLUMNS, rows)
            rows = []
    writer.write(Person, PERSON_COLUMNS, rows)
    return list(ids)


_TZ_CACHE: dict[str, object] = {}


def _tz(spec: _Site):
    if spec.tz not in _TZ_CACHE:
        _TZ_CACHE[spec.tz] = zoneinfo.ZoneInfo(spec.tz)
    return _TZ_CACHE[spec.tz]


def _write_shifts(writer, rng, specs, per_day, start, days) -> dict[tuple[int, int], list]:
    """Shifts for every open day: 8 hours on weekdays, 4 on Saturdays, enough staff for the
    day's arrivals. Returns the staff on shift per (day, site)."""
    on_shift: dict[tuple[int, int], list] = {}
    rows = []
    for d in range(days):
        day = start + timedelta(days=d)
        for s, spec in enumerate(specs):
            if not _is_open(spec, day.weekday()):
                continue
            noon = _noon_utc(day, _tz(spec))
            arrivals = per_day.get((d, s), 0)
            n = min(len(spec.staff), max(2, math.ceil(arrivals / VISITS_PER_STAFF_DAY)))
            staff = rng.sample(spec.staff, n)
            on_shift[(d, s)] = staff
            for user_id, _discipline in staff:
                if day.weekday() == 5:
                    begins, hours = noon - timedelta(hours=3), 4
                else:
                    begins = noon - timedelta(minutes=rng.choice((270, 240, 180)))
                    hours = 8
                rows.append(
                    (
                        spec.pk,
                        user_id,
                        str(day),
                        str(begins),
                        str(begins + timedelta(hours=hours)),
                    )
                )
    ids = writer.ids(Shift, len(rows))
    writer.write(
        Shift,
        ("id", "site_id", "user_id", "day", "starts_at", "ends_at"),
        [(pk, *row) for pk, row in zip(ids, rows, strict=True)],
    )
    return on_shift


def _write_contacts(writer, rng, specs, contacts, person_ids, on_shift, start) -> None:
    other_codes = [code for _n, code, w in SERVICES if w]
    other_weights = [w for _n, _code, w in SERVICES if w]
    tickets: Counter[tuple[int, int]] = Counter()
    noon_cache: dict[tuple[int, int], datetime] = {}
    minute = timedelta(minutes=1)
    dt = d = str

    for begin in range(0, len(contacts), CHUNK):
        chunk = contacts[begin : begin + CHUNK]
        arrivals, visits, participants, delivered, medications = [], [], [], [], []
        n_arrivals = sum(1 for c in chunk if not c[9])
        n_visits = sum(1 for c in chunk if not c[5])
        arrival_ids = iter(writer.ids(Arrival, n_arrivals))
        visit_ids = iter(writer.ids(Visit, n_visits))
        for (
            day_offset,
            s,
            at_second,
            _seq,
            person,
            left,
            appointment,
            med,
            supply,
            outreach,
        ) in chunk:
            spec = specs[s]
            day = start + timedelta(days=day_offset)
            noon = noon_cache.get((day_offset, s))
            if noon is None:
                noon = noon_cache[(day_offset, s)] = _noon_utc(day, _tz(spec))
            arrived = noon + timedelta(seconds=at_second - 12 * 3600)
            person_id = person_ids[person] if person >= 0 else None
            staff = on_shift[(day_offset, s)]
            if left:
                tickets[(day_offset, s)] += 1
                number = tickets[(day_offset, s)]
                gone = arrived + minute * int(rng.triangular(10, 180, 40))
                arrivals.append(
                    (
                        next(arrival_ids), spec.pk, person_id, None, False, "", d(day), number,
                        f"{spec.prefix}-{number}", dt(arrived),
                        dt(arrived) if appointment else None, _LEFT, dt(gone), None, None,
                        3, None, None,
                    )
                )  # fmt: skip
                continue
            # Seen: a skewed wait (median about 15 minutes, now and then over an hour).
            wait = 0 if outreach else min(110, max(1, int(rng.lognormvariate(2.7, 0.75))))
            if appointment:
                wait = max(1, wait // 2)
            seen = arrived + wait * minute
            done = seen + minute * min(90, max(5, int(rng.lognormvariate(3.0, 0.5))))
            opener, discipline = rng.choice(staff)
            visit_id = next(visit_ids)
            arrival_id = None
            if not outreach:
                arrival_id = next(arrival_ids)
                tickets[(day_offset, s)] += 1
                number = tickets[(day_offset, s)]
            team = [(opener, discipline)]
            if len(staff) > 1 and rng.random() < 0.2:  # a second team member joined
                second = rng.choice(staff)
                if second[0] != opener:
                    team.append(second)
            if arrival_id is not None:
                arrivals.append(
                    (
                        arrival_id, spec.pk, person_id, None, False, "", d(day), number,
                        f"{spec.prefix}-{number}", dt(arrived),
                        dt(arrived) if appointment else None, _DONE, dt(done),
                        team[-1][0], rng.choice(spec.rooms), 5, None, None,
                    )
                )  # fmt: skip
            visits.append(
                (
                    visit_id, spec.pk, person_id, arrival_id,
                    _OUTREACH if outreach else _QUEUE,
                    dt(seen), d(day), dt(done), opener, "", "",
                )
            )  # fmt: skip
            for n, (user_id, user_discipline) in enumerate(team):
                joined = seen + n * minute * rng.randint(5, 20)
                participants.append((visit_id, user_id, user_discipline, dt(min(joined, done))))
            if person_id is None:
                codes = {"naloxone"}
                if rng.random() < 0.4:
                    codes.add("hiv-hcv-testing")
            else:
                codes = set(
                    rng.choices(other_codes, other_weights, k=rng.choice((1, 1, 1, 2, 2, 3)))
                )
                if rng.random() < NALOXONE_SHARE:
                    codes.add("naloxone")
            if med >= 0:
                codes.add("moud")
                medication, _share, action, _supplies = MEDICATIONS[med]
                medications.append(
                    (
                        visit_id, str(medication), DOSES[medication], supply, action, opener,
                        dt(seen + minute * rng.randint(2, 10)),
                    )
                )  # fmt: skip
            delivered.extend((visit_id, spec.services[code]) for code in sorted(codes))

        writer.write_visits(
            arrivals=arrivals,
            visits=visits,
            participants=participants,
            delivered=delivered,
            medications=medications,
        )

    # The live check-in counts on from here, should the history reach today.
    counters = sorted(tickets.items())
    ids = writer.ids(TicketCounter, len(counters))
    writer.write(
        TicketCounter,
        ("id", "site_id", "day", "last"),
        [
            (pk, specs[s].pk, d(start + timedelta(days=day_offset)), last)
            for pk, ((day_offset, s), last) in zip(ids, counters, strict=True)
        ],
    )


# --- deleting ------------------------------------------------------------------------------------


def delete_synthetic() -> dict[str, int]:
    """Delete the synthetic sites and everything in them; nothing at any other site.

    Big tables go with plain DELETE statements (the ORM would load every row first). Records
    someone added by hand to a synthetic site's visits (notes, goals…) make it fail with an
    IntegrityError, which the caller reports: this never deletes more than it is sure of.
    """
    site_ids = list(synthetic_sites().values_list("pk", flat=True))
    deleted: dict[str, int] = {}
    if not site_ids:
        return deleted
    marks = ", ".join(["%s"] * len(site_ids))
    visits = f'SELECT id FROM "{Visit._meta.db_table}" WHERE site_id IN ({marks})'  # noqa: S608
    statements = [
        (MedicationEvent, f"visit_id IN ({visits})"),
        (Visit.services.through, f"visit_id IN ({visits})"),
        (VisitParticipant, f"visit_id IN ({visits})"),
        (Visit, f"site_id IN ({marks})"),
        (ArrivalEvent, f"site_id IN ({marks})"),
        (Appointment, f"site_id IN ({marks})"),
        (Arrival, f"site_id IN ({marks})"),
        (Shift, f"site_id IN ({marks})"),
        (TicketCounter, f"site_id IN ({marks})"),
        (Person, f"site_id IN ({marks})"),
    ]
    # Synthetic history may have been sealed by a day's close, or have queue events from trying
    # the board: removing it is database administration, done with the append-only and sealing
    # triggers lifted for these statements (the owner role may; generate_synthetic runs as it);
    # the history of changes still records every row removed.
    tables = [model._meta.db_table for model, _where in statements]
    lifted = triggers_lifted(guards_only=True) if owns_tables(tables) else nullcontext()
    with transaction.atomic(), lifted, connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        for model, where in statements:
            table = model._meta.db_table
            if table in APPEND_ONLY_TABLES:
                # The application's role may not delete from these at all: ask first (there
                # are rows only if someone used the queue at a synthetic site).
                cursor.execute(f'SELECT EXISTS (SELECT 1 FROM "{table}" WHERE {where})', site_ids)  # noqa: S608
                if not cursor.fetchone()[0]:
                    deleted[table] = 0
                    continue
            cursor.execute(f'DELETE FROM "{table}" WHERE {where}', site_ids)  # noqa: S608
            deleted[table] = cursor.rowcount
        synthetic_sites().delete()  # services, rooms, memberships, counters go with them
        User = get_user_model()
        staff = list(
            User.objects.filter(
                username__startswith=PREFIX, is_active=False, memberships__isnull=True
            ).values_list("pk", flat=True)
        )
        deleted["staff accounts"] = _delete_accounts(cursor, staff)
    return deleted


def _delete_accounts(cursor, ids: list[int]) -> int:
    """Delete these (synthetic, never signed-in) accounts with what hangs on them, but never
    from an append-only table: the application's role may not, even where no row matches (a
    Django cascade would try). Had one of them a row there, the database would refuse."""
    if not ids:
        return 0
    User = get_user_model()
    for relation in User._meta.related_objects:
        table = relation.related_model._meta.db_table
        if relation.on_delete is not models.CASCADE or table in APPEND_ONLY_TABLES:
            continue
        relation.related_model._base_manager.filter(**{f"{relation.field.name}__in": ids}).delete()
    for m2m in User._meta.many_to_many:
        through = m2m.remote_field.through._base_manager
        through.filter(**{f"{m2m.m2m_field_name()}__in": ids}).delete()
    marks = ", ".join(["%s"] * len(ids))
    cursor.execute(f'DELETE FROM "{User._meta.db_table}" WHERE id IN ({marks})', ids)  # noqa: S608
    return cursor.rowcount
