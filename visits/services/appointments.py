"""Appointment writes. Appointments are optional and never used against anyone.

PRODUCT.md invariants 1 and 2: there is no status, no counter and no limit. Cancelling simply
deletes an upcoming appointment; an appointment nobody came to stays "not seen yet". When the
person checks in, today's appointment is linked to their arrival so the board can show its
time, and nothing else: the place in line still comes only from arrival time and urgency.
"""

from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from clinic.models import Person, Service, Site
from visits.errors import VisitError
from visits.models import Appointment

NOTE_MAX = 200
# The "reach out?" list looks back this far.
REACH_OUT_DAYS = 14


def site_team(site: Site):
    """Active team members at the site: who an appointment can be with."""
    User = get_user_model()
    return (
        User.objects.filter(memberships__site=site, is_active=True)
        .distinct()
        .order_by("first_name", "last_name", "username")
    )


def local_day_bounds(site: Site, day) -> tuple[datetime, datetime]:
    """The first moment of `day` at the site and of the day after (DST-safe)."""
    start = datetime.combine(day, datetime.min.time(), tzinfo=site.tz)
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=site.tz)
    return start, end


def _validate(*, site: Site, at, with_staff, service: Service | None, note: str, now) -> str:
    if at is None:
        raise VisitError("time_required", _("Please give the date and time."))
    if at < now:
        raise VisitError("in_the_past", _("Please pick a time from now on."))
    if with_staff is not None and not site_team(site).filter(pk=with_staff.pk).exists():
        raise VisitError("unknown_staff", _("Please pick a team member at this site."))
    if service is not None and (service.site_id != site.pk or not service.is_active):
        raise VisitError("unknown_service", _("Please pick a service this site offers."))
    note = (note or "").strip()
    if len(note) > NOTE_MAX:
        raise VisitError(
            "note_too_long",
            _("The note can be at most %(max)d characters.") % {"max": NOTE_MAX},
        )
    return note


def appointment_create(
    *,
    site: Site,
    by,
    person: Person,
    at: datetime | None,
    with_staff=None,
    service: Service | None = None,
    note: str = "",
    now: datetime | None = None,
) -> Appointment:
    """Book an appointment. There is no limit on how many a person may have. Locks nothing:
    a new row conflicts with no one."""
    now = now or timezone.now()
    if person is None or person.site_id != site.pk:
        raise VisitError("unknown_person", _("That person is not known at this site."))
    note = _validate(site=site, at=at, with_staff=with_staff, service=service, note=note, now=now)
    with transaction.atomic():
        return Appointment.objects.create(
            site=site,
            person=person,
            at=at,
            with_staff=with_staff,
            service=service,
            note=note,
            created_by=by,
        )


def _lock(appointment: Appointment) -> Appointment:
    return Appointment.objects.select_for_update().get(
        pk=appointment.pk, site_id=appointment.site_id
    )


def appointment_reschedule(
    *,
    appointment: Appointment,
    by,
    at: datetime | None,
    with_staff=None,
    service: Service | None = None,
    note: str = "",
    now: datetime | None = None,
) -> Appointment:
    """Change the time, who with, what for or the note. Locks the appointment (check-in links
    it under the same lock, so a person who has just arrived is never rescheduled away)."""
    now = now or timezone.now()
    site = appointment.site
    note = _validate(site=site, at=at, with_staff=with_staff, service=service, note=note, now=now)
    with transaction.atomic():
        locked = _lock(appointment)
        if locked.arrival_id is not None:
            raise VisitError("already_here", _("The person has already come for this one."))
        locked.at, locked.with_staff, locked.service, locked.note = at, with_staff, service, note
        locked.save(update_fields=["at", "with_staff", "service", "note"])
    return locked


def appointment_cancel(*, appointment: Appointment, by, now: datetime | None = None) -> None:
    """Cancel = delete. Nothing is kept or counted against the person.

    Only for today's or later appointments that the person has not come for: past ones simply
    stay "not seen yet". Locks the appointment.
    """
    now = now or timezone.now()
    start_of_today, _end = local_day_bounds(
        appointment.site, timezone.localdate(now, appointment.site.tz)
    )
    with transaction.atomic():
        locked = _lock(appointment)
        if locked.arrival_id is not None:
            raise VisitError("already_here", _("The person has already come for this one."))
        if locked.at < start_of_today:
            raise VisitError(
                "in_the_past", _("Only today's and later appointments can be cancelled.")
            )
        locked.delete()


def appointment_link_arrival(*, arrival) -> Appointment | None:
    """Called by check-in, inside its transaction (the person row is already locked there).

    Links the earliest appointment the person has at this site on the arrival's local day
    that no arrival claimed yet, and copies its time onto the arrival for the board (unless
    the front desk typed one). Early or late makes no difference: the arrival keeps its
    arrival time and urgency, which alone decide the place in line. Locks that appointment.
    """
    if arrival.person_id is None:
        return None
    start, end = local_day_bounds(arrival.site, arrival.day)
    appointment = (
        Appointment.objects.select_for_update()
        .filter(
            site_id=arrival.site_id,
            person_id=arrival.person_id,
            arrival__isnull=True,
            at__gte=start,
            at__lt=end,
        )
        .order_by("at", "pk")
        .first()
    )
    if appointment is None:
        return None
    appointment.arrival = arrival
    appointment.save(update_fields=["arrival"])
    if arrival.appointment_at is None:
        arrival.appointment_at = appointment.at
        arrival.save(update_fields=["appointment_at"])
    return appointment


def appointment_outreach_dismiss(
    *, site: Site, person: Person, by, now: datetime | None = None
) -> int:
    """Take a person off the "reach out?" list: marks their past appointments that nobody came
    for as dismissed, by whom and when. Writes nothing on the person. Returns how many."""
    now = now or timezone.now()
    if person.site_id != site.pk:
        raise VisitError("unknown_person", _("That person is not known at this site."))
    with transaction.atomic():
        return Appointment.objects.filter(
            site=site,
            person=person,
            arrival__isnull=True,
            outreach_dismissed_at__isnull=True,
            at__lte=now,
        ).update(outreach_dismissed_at=now, outreach_dismissed_by=by)
