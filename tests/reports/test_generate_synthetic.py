"""`manage.py generate_synthetic`: believable, reproducible history for benchmarks and demos."""

import hashlib
import itertools
from collections import Counter, defaultdict
from datetime import date, timedelta
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db.models import Count, Max
from django.utils import timezone

from clinic.models import Membership, Person, Service, Shift, Site
from queues.models import Arrival, TicketCounter
from reports.synthetic import SyntheticRefused, generate, synthetic_sites
from tests.factories import check_in
from visits.models import Goal, MedicationEvent, Visit, VisitParticipant

END = date(2025, 6, 30)


def fingerprint() -> str:
    """A digest of the key columns of everything generated, independent of database ids."""
    digest = hashlib.sha256()
    arrivals = Arrival.objects.filter(site__slug__startswith="synthetic-").order_by(
        "site__slug", "day", "ticket_number"
    )
    for row in arrivals.values_list(
        "site__slug",
        "person__name",
        "day",
        "ticket",
        "arrived_at",
        "appointment_at",
        "state",
        "state_changed_at",
        "staff__username",
        "room__name",
    ):
        digest.update(repr(row).encode())
    for row in Visit.objects.order_by("pk").values_list(
        "site__slug",
        "person__name",
        "arrival__ticket",
        "origin",
        "day",
        "started_at",
        "ended_at",
        "opened_by__username",
    ):
        digest.update(repr(row).encode())
    for row in Visit.services.through.objects.order_by("pk").values_list(
        "visit__started_at", "service__code"
    ):
        digest.update(repr(row).encode())
    for row in MedicationEvent.objects.order_by("pk").values_list(
        "visit__person__name", "visit__day", "medication", "days_supply", "action", "recorded_at"
    ):
        digest.update(repr(row).encode())
    for row in Shift.objects.order_by("pk").values_list(
        "site__slug", "user__username", "day", "starts_at", "ends_at"
    ):
        digest.update(repr(row).encode())
    return digest.hexdigest()


def table_counts() -> dict[str, int]:
    return {
        "people": Person.objects.count(),
        "arrivals": Arrival.objects.count(),
        "visits": Visit.objects.count(),
        "participants": VisitParticipant.objects.count(),
        "services": Visit.services.through.objects.count(),
        "medications": MedicationEvent.objects.count(),
        "shifts": Shift.objects.count(),
        "users": get_user_model().objects.count(),
    }


@pytest.mark.django_db
def test_the_same_seed_gives_the_same_history_and_another_seed_does_not():
    first = generate(people=120, days=90, seed=7, end=END)
    counts, digest = table_counts(), fingerprint()

    again = generate(people=120, days=90, seed=7, end=END, replace=True)
    assert table_counts() == counts
    assert fingerprint() == digest
    assert again.counts == first.counts

    generate(people=120, days=90, seed=8, end=END, replace=True)
    assert fingerprint() != digest


@pytest.mark.django_db
def test_the_command_takes_the_options_the_benchmark_passes():
    out = StringIO()
    call_command("generate_synthetic", people=50, days=30, seed=3, end=END, stdout=out)

    text = out.getvalue()
    assert "Synthetic history 2025-06-01 to 2025-06-30" in text
    assert f"people: {Person.objects.count()}" in text
    assert f"arrivals: {Arrival.objects.count()}" in text
    assert Person.objects.count() == 50
    assert sorted(synthetic_sites().values_list("slug", flat=True)) == [
        "synthetic-harbor",
        "synthetic-northside",
        "synthetic-valley",
    ]


@pytest.mark.django_db
def test_history_ends_yesterday_by_default():
    generate(people=40, days=20, seed=1)

    yesterday = timezone.localdate() - timedelta(days=1)
    last = Arrival.objects.aggregate(last=Max("day"))["last"]
    assert last <= yesterday
    assert Arrival.objects.order_by("day").first().day >= yesterday - timedelta(days=19)


@pytest.mark.django_db
def test_the_history_keeps_every_rule_of_the_data_model():
    generate(people=80, days=60, seed=11, end=END)
    sites = {s.pk: s for s in synthetic_sites()}

    # The models' own validation, database constraints included, on every row.
    for model in (Person, Arrival, Visit, MedicationEvent, Shift, VisitParticipant):
        for obj in model.objects.all():
            obj.full_clean()

    on_shift = defaultdict(set)
    for shift in Shift.objects.all():
        tz = sites[shift.site_id].tz
        assert timezone.localdate(shift.starts_at, tz) == shift.day
        on_shift[(shift.site_id, shift.day)].add(shift.user_id)

    by_day = defaultdict(list)
    for arrival in Arrival.objects.all():
        tz = sites[arrival.site_id].tz
        local = timezone.localtime(arrival.arrived_at, tz)
        assert local.date() == arrival.day
        assert local.weekday() < 6  # nobody arrives on a Sunday: every site is closed
        assert 8 <= local.hour < 17  # within opening hours
        assert arrival.state in ("done", "left")  # nothing is left open in the queue
        assert arrival.import_key is None and arrival.ticket_number >= 1
        by_day[(arrival.site_id, arrival.day)].append(arrival)
    # Tickets count 1, 2, 3… each day in the order people arrived; the counter knows the last.
    for (site_id, day), arrivals in by_day.items():
        arrivals.sort(key=lambda a: (a.arrived_at, a.ticket_number))
        assert [a.ticket_number for a in arrivals] == list(range(1, len(arrivals) + 1))
        assert TicketCounter.objects.get(site_id=site_id, day=day).last == len(arrivals)

    for visit in Visit.objects.select_related("arrival"):
        tz = sites[visit.site_id].tz
        assert timezone.localdate(visit.started_at, tz) == visit.day
        assert visit.ended_at >= visit.started_at
        assert visit.opened_by_id in on_shift[(visit.site_id, visit.day)]
        if visit.arrival is None:
            assert visit.origin == "outreach"
            continue
        assert visit.arrival.state == "done"
        assert visit.person_id == visit.arrival.person_id
        wait = (visit.started_at - visit.arrival.arrived_at).total_seconds() / 60
        assert 1 <= wait <= 110
    # Left before being seen is never a visit; every finished arrival has exactly one.
    assert not Visit.objects.filter(arrival__state="left").exists()
    assert Visit.objects.filter(arrival__isnull=False).count() == (
        Arrival.objects.filter(state="done").count()
    )
    for participant in VisitParticipant.objects.select_related("visit"):
        assert participant.visit.started_at <= participant.joined_at <= participant.visit.ended_at

    # Staff accounts made for the synthetic sites can never sign in.
    synthetic_staff = get_user_model().objects.filter(username__startswith="synthetic-")
    assert synthetic_staff.exists()
    assert not synthetic_staff.filter(is_active=True).exists()
    assert not any(user.has_usable_password() for user in synthetic_staff)


@pytest.mark.django_db
def test_the_mix_of_people_looks_like_a_clinic():
    generate(people=600, days=365, seed=5, end=END)
    arrivals = Arrival.objects.count()
    visits_per_person = Counter(
        Visit.objects.filter(person__isnull=False).values_list("person", flat=True)
    )

    # About ten arrivals per person over three years: here one year.
    assert 3 <= arrivals / 600 <= 8
    assert 0.07 <= Arrival.objects.filter(state="left").count() / arrivals <= 0.13
    assert 0.10 <= Arrival.objects.filter(appointment_at__isnull=False).count() / arrivals <= 0.22
    # One-time visitors and regulars.
    assert sum(1 for n in visits_per_person.values() if n == 1) >= 60
    assert sum(1 for n in visits_per_person.values() if n >= 15) >= 30
    # Anonymous contacts, with naloxone.
    anonymous = Visit.objects.filter(person__isnull=True)
    assert anonymous.exists()
    assert not anonymous.exclude(services__code="naloxone").exists()
    assert Visit.objects.filter(person__isnull=False, services__code="naloxone").exists()
    # Medication refills of 7, 14 and 28 days, some early (stacked), some late (a gap).
    meds = list(
        MedicationEvent.objects.order_by("visit__person", "visit__day").values_list(
            "visit__person", "visit__day", "days_supply"
        )
    )
    assert {supply for _p, _d, supply in meds} >= {7, 14, 28}
    early = late = 0
    for (person, day, supply), (next_person, next_day, _s) in itertools.pairwise(meds):
        if person == next_person:
            early += next_day < day + timedelta(days=supply)
            late += next_day >= day + timedelta(days=supply + 8)
    assert early >= 20 and late >= 20
    # People who drift away for a month or more and come back.
    days = defaultdict(list)
    for person, day in Visit.objects.filter(person__isnull=False).values_list("person", "day"):
        days[person].append(day)
    returned = sum(
        1
        for seen in days.values()
        if any((b - a).days >= 31 for a, b in zip(sorted(seen), sorted(seen)[1:], strict=False))
    )
    assert returned >= 50
    # Shifts: 2 or more staff a day, 8 hours on weekdays.
    per_day = Shift.objects.values("site", "day").annotate(n=Count("pk"))
    assert min(row["n"] for row in per_day) >= 2
    weekday = Shift.objects.filter(day=date(2025, 6, 2)).first()  # a Monday
    assert weekday.ends_at - weekday.starts_at == timedelta(hours=8)


@pytest.mark.django_db
def test_it_refuses_to_run_twice_unless_told_to_replace():
    generate(people=20, days=10, seed=1, end=END)

    with pytest.raises(SyntheticRefused) as caught:
        generate(people=20, days=10, seed=1, end=END)
    assert caught.value.code == "exists"
    with pytest.raises(CommandError, match="--replace"):
        call_command("generate_synthetic", people=20, days=10, stdout=StringIO())


@pytest.mark.django_db
def test_unless_present_leaves_existing_synthetic_history_as_it_is():
    """`make run` runs the command every time; the second time it must change nothing."""
    generate(people=20, days=10, seed=1, end=END)
    before = fingerprint()
    out = StringIO()

    call_command("generate_synthetic", people=50, days=30, unless_present=True, stdout=out)

    assert "already there" in out.getvalue()
    assert fingerprint() == before


def test_it_leaves_real_sites_alone_and_replace_deletes_only_synthetic_data(
    site, front_desk, director
):
    jess = check_in(site=site, by=front_desk, name="Jess")
    real = table_counts()

    # Real people here and DEBUG off (as in tests): refused unless forced.
    with pytest.raises(CommandError, match="--force"):
        call_command("generate_synthetic", people=30, days=20, stdout=StringIO())
    assert table_counts() == real

    generate(people=30, days=20, seed=2, end=END, force=True, members=[director])
    assert (
        Membership.objects.filter(user=director, site__slug__startswith="synthetic-").count() == 3
    )
    generate(people=10, days=5, seed=2, end=END, force=True, replace=True)

    assert Person.objects.filter(site__slug__startswith="synthetic-").count() == 10
    # The real site, its person, arrival, staff and their memberships are as they were.
    assert Person.objects.filter(site=site).get() == jess.person
    assert Arrival.objects.filter(site=site).get() == jess
    assert Service.objects.filter(site__slug__startswith="synthetic-").count() == 3 * 8
    assert list(Membership.objects.filter(user=director).values_list("site", flat=True)) == [
        site.pk
    ]
    assert Site.objects.filter(pk=site.pk).exists()
    # Staff accounts of the first run went with their sites; only the new run's are left.
    staff = get_user_model().objects.filter(username__startswith="synthetic-")
    assert not staff.filter(memberships__isnull=True).exists()


@pytest.mark.django_db
def test_sites_can_be_named_or_counted():
    generate(people=10, days=5, seed=1, end=END, site_slugs=["alpha", "synthetic-beta"])
    assert sorted(synthetic_sites().values_list("slug", flat=True)) == [
        "synthetic-alpha",
        "synthetic-beta",
    ]

    generate(people=10, days=5, seed=1, end=END, sites=5, replace=True)
    assert synthetic_sites().count() == 5


@pytest.mark.django_db
def test_the_clinic_works_normally_on_top_of_synthetic_data(front_desk):
    # Ids were chosen by the generator: the database's own counters must carry on after them.
    today = timezone.localdate(timezone.now(), ZoneInfo("America/Chicago"))  # northside's
    generate(people=30, days=20, seed=4, end=today)
    northside = Site.objects.get(slug="synthetic-northside")
    done_today = Arrival.objects.filter(site=northside, day=today).count()

    arrival = check_in(site=northside, by=front_desk, name="New person")

    assert arrival.ticket_number == done_today + 1
    assert Person.objects.order_by("-pk").first() == arrival.person


@pytest.mark.postgres
@pytest.mark.django_db
def test_replace_refuses_and_changes_nothing_when_someone_added_records_by_hand():
    # In a demo, someone wrote a goal for a synthetic person; --replace will not delete it.
    generate(people=20, days=10, seed=1, end=END)
    visit = Visit.objects.filter(person__isnull=False).first()
    Goal.objects.create(
        person=visit.person,
        words="Get my ID back",
        set_on=visit.day,
        status_changed_at=visit.started_at,
        visit=visit,
        created_by=visit.opened_by,
    )
    before = (table_counts(), fingerprint())

    with pytest.raises(CommandError, match="records added by hand"):
        call_command("generate_synthetic", people=5, days=5, replace=True, stdout=StringIO())

    assert (table_counts(), fingerprint()) == before
    assert Goal.objects.count() == 1
