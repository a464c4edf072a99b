"""Small builders for report scenarios: visits, left-before-seen arrivals, medication, shifts.

Every builder takes a local date at the site; clock times are 10:00 local unless given, so
a scenario reads as a list of days.
"""

import itertools
from datetime import date, datetime, time, timedelta

import pytest

from clinic.models import Service, Shift
from queues.models import Arrival
from tests.factories import PersonFactory, UserFactory
from visits.models import MedicationEvent, Visit

# Day 0 of every scenario; D(n) is n days later.
DAY0 = date(2025, 1, 6)  # a Monday


def D(n: int) -> date:
    return DAY0 + timedelta(days=n)


class Builder:
    def __init__(self, site):
        self.site = site
        self.staff = UserFactory(username="builder-staff")
        self._tickets = itertools.count(1)

    def at(self, day: date, minutes: float = 0, site=None):
        """An aware datetime: 10:00 local at the site on `day`, plus `minutes`."""
        tz = (site or self.site).tz
        return datetime.combine(day, time(10, 0), tzinfo=tz) + timedelta(minutes=minutes)

    def person(self, name: str = "", site=None, what_helps: str = ""):
        fields = {"site": site or self.site, "what_helps": what_helps}
        if name:
            fields["name"] = name
        return PersonFactory(**fields)

    def arrival(
        self,
        person,
        day: date,
        *,
        state: str = "done",
        site=None,
        appointment: bool = False,
        imported: bool = False,
        at: datetime | None = None,
    ):
        site = site or self.site
        arrived = at or self.at(day, site=site)
        number = next(self._tickets)
        return Arrival.objects.create(
            site=site,
            person=person,
            day=day,
            ticket_number=number,
            ticket=f"K-{number}",
            arrived_at=arrived,
            appointment_at=arrived if appointment else None,
            state=state,
            state_changed_at=arrived,
            import_key=f"import-{number}" if imported else None,
        )

    def lwbs(self, person, day: date, **kwargs):
        """An arrival that left before being seen: never a visit."""
        return self.arrival(person, day, state="left", **kwargs)

    def visit(
        self,
        person,
        day: date,
        *,
        staff=None,
        site=None,
        services=(),
        waited: float | None = None,
        imported: bool = False,
        appointment: bool = False,
    ):
        """A completed visit on `day`. With `waited` (minutes) or `imported`, it came through
        the queue: an arrival at 10:00 and the visit starting `waited` minutes later."""
        site = site or self.site
        arrival = None
        start = self.at(day, site=site)
        if waited is not None or imported or appointment:
            arrival = self.arrival(
                person, day, site=site, imported=imported, appointment=appointment
            )
            start = arrival.arrived_at + timedelta(minutes=waited or 0)
        visit = Visit.objects.create(
            site=site,
            person=person,
            arrival=arrival,
            started_at=start,
            ended_at=start + timedelta(minutes=20),
            opened_by=staff or self.staff,
        )
        for code in services:
            visit.services.add(self.service(code, site=site))
        return visit

    def med(self, visit, days_supply: int, medication: str = "bup_nx"):
        return MedicationEvent.objects.create(
            visit=visit,
            medication=medication,
            dose="16 mg daily",
            days_supply=days_supply,
            action="prescribed",
            recorded_by=visit.opened_by,
            recorded_at=visit.started_at,
        )

    def visit_with_med(self, person, day: date, days_supply: int, **kwargs):
        visit = self.visit(person, day, **kwargs)
        self.med(visit, days_supply)
        return visit

    def service(self, code: str, site=None):
        site = site or self.site
        service, _ = Service.objects.get_or_create(
            site=site, code=code, defaults={"name": code.replace("-", " ").capitalize()}
        )
        return service

    def shift(self, user, day: date, hours: float, site=None):
        start = self.at(day, minutes=-120, site=site)
        return Shift.objects.create(
            site=site or self.site,
            user=user,
            starts_at=start,
            ends_at=start + timedelta(hours=hours),
        )


@pytest.fixture
def build(site):
    return Builder(site)
