"""Appointment reads. None of them counts anything about a person.

The day view shows only today and later days; past appointments nobody came to are never
listed for the front desk. The care team's "reach out?" list is the only place a recent one
shows, as the latest date and nothing more.
"""

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db.models import Exists, OuterRef
from django.utils import timezone

from clinic.models import Person, Site
from queues.models import Arrival
from visits.models import Appointment
from visits.services.appointments import REACH_OUT_DAYS, local_day_bounds

LATER_LIMIT = 40


def site_today(site: Site, now: datetime | None = None) -> date:
    return timezone.localdate(now or timezone.now(), site.tz)


def _with_details(queryset):
    return queryset.select_related("person", "with_staff", "service", "arrival")


def appointments_on_day(*, site: Site, day: date) -> list[Appointment]:
    """The site's appointments on one local day, by time."""
    start, end = local_day_bounds(site, day)
    return list(
        _with_details(Appointment.objects.filter(site=site, at__gte=start, at__lt=end)).order_by(
            "at", "pk"
        )
    )


def appointments_after_day(*, site: Site, day: date, limit: int = LATER_LIMIT) -> list[Appointment]:
    """The next appointments after `day`, soonest first."""
    _start, end = local_day_bounds(site, day)
    return list(
        _with_details(Appointment.objects.filter(site=site, at__gte=end)).order_by("at", "pk")[
            :limit
        ]
    )


def appointment_for_site(*, site: Site, pk: int) -> Appointment | None:
    return _with_details(Appointment.objects.filter(site=site, pk=pk)).first()


@dataclass(frozen=True)
class ReachOut:
    person: Person
    last_appointment: Appointment
    next_appointment: Appointment | None


def reach_out_list(*, site: Site, now: datetime | None = None) -> list[ReachOut]:
    """People with an appointment in the last REACH_OUT_DAYS days that no arrival was linked
    to, who have not come to the site since, and whom nobody took off the list. One entry per
    person, showing only their latest such appointment; most recent first."""
    now = now or timezone.now()
    came_since = Arrival.objects.filter(
        site=site, person=OuterRef("person"), arrived_at__gte=OuterRef("at")
    )
    candidates = (
        Appointment.objects.filter(
            site=site,
            arrival__isnull=True,
            outreach_dismissed_at__isnull=True,
            at__lt=now,
            at__gte=now - timedelta(days=REACH_OUT_DAYS),
        )
        .exclude(Exists(came_since))
        .select_related("person", "with_staff", "service")
        .order_by("-at", "-pk")
    )
    latest: dict[int, Appointment] = {}
    for appointment in candidates:
        latest.setdefault(appointment.person_id, appointment)
    upcoming: dict[int, Appointment] = {}
    for appointment in Appointment.objects.filter(
        site=site, person_id__in=latest, at__gte=now
    ).order_by("at", "pk"):
        upcoming.setdefault(appointment.person_id, appointment)
    return [
        ReachOut(
            person=appointment.person,
            last_appointment=appointment,
            next_appointment=upcoming.get(person_id),
        )
        for person_id, appointment in latest.items()
    ]
