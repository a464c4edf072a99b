"""Appointment pages: the day view, booking, rescheduling and cancelling (front desk and care
team), and the care team's "reach out?" list.

Past appointments nobody came to are not listed here at all; the only place one appears is
the care team's "reach out?" list, as a date.
"""

from datetime import date, timedelta

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils import formats
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from clinic.forms import NameSearchForm
from clinic.language import language_message
from clinic.models import Person
from clinic.sites import can, site_permission_required
from queues.selectors import people_search
from visits.errors import VisitError
from visits.forms_appointments import AppointmentForm
from visits.selectors import appointments as selectors
from visits.services import appointments as services

# Larger ids cannot exist and would overflow the database's integer.
MAX_ID = 2**63

# Which form field a service error belongs to.
ERROR_FIELDS = {
    "time_required": "time",
    "in_the_past": "time",
    "unknown_staff": "with_staff",
    "unknown_service": "service",
    "note_too_long": "note",
}


def _show_error(form, error: VisitError) -> None:
    form.add_error(ERROR_FIELDS.get(error.code), error.message)


def _id_or_404(value: str) -> int:
    # isdigit() alone accepts "²" and other digits int() refuses.
    if not (value.isascii() and value.isdigit()) or len(value) > 19 or int(value) >= MAX_ID:
        raise Http404(_("That person is not known at this site."))
    return int(value)


def _person_or_404(site, value: str) -> Person:
    person = Person.objects.current().filter(pk=_id_or_404(value), site=site).first()
    if person is None:
        raise Http404(_("That person is not known at this site."))
    return person


def _appointment_or_404(site, pk: int):
    appointment = selectors.appointment_for_site(site=site, pk=pk) if pk < MAX_ID else None
    if appointment is None:
        raise Http404(_("That appointment is not at this site."))
    return appointment


def _day_from(request, today: date) -> date:
    """The day asked for; today when missing, unreadable, in the past or absurdly far."""
    raw = request.GET.get("day", "")
    if not raw:
        return today
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        messages.warning(request, _("That date could not be read; showing today."))
        return today
    if day < today:
        messages.info(request, _("This list shows today and later days; showing today."))
        return today
    if day > today + timedelta(days=3 * 366):
        messages.warning(request, _("Please pick a date within the next three years."))
        return today
    return day


@never_cache
@require_GET
@site_permission_required("visits.view_appointment")
def appointment_list(request):
    site = request.site
    today = selectors.site_today(site)
    day = _day_from(request, today)
    return render(
        request,
        "visits/appointments.html",
        {
            "day": day,
            "today": today,
            "is_today": day == today,
            "previous_day": day - timedelta(days=1) if day > today else None,
            "next_day": day + timedelta(days=1),
            "appointments": selectors.appointments_on_day(site=site, day=day),
            "later": selectors.appointments_after_day(site=site, day=day),
            "can_book": can(request.user, "visits.add_appointment", site),
            "can_change": can(request.user, "visits.change_appointment", site),
            "can_check_in": can(request.user, "queue.check_in", site),
            "can_reach_out": can(request.user, "visits.view_clinical", site),
        },
    )


@never_cache
@require_http_methods(["GET", "POST"])
@site_permission_required("visits.add_appointment")
def appointment_new(request):
    site = request.site
    # "Find" is a POST too, so a name never travels in a URL; it books nothing.
    finding = request.method == "POST" and "find" in request.POST
    if request.method == "POST" and not finding:
        form = AppointmentForm(request.POST, site=site)
        if form.is_valid():
            data = form.cleaned_data
            try:
                appointment = services.appointment_create(
                    site=site,
                    by=request.user,
                    person=data["person"],
                    at=data["at"],
                    with_staff=data["with_staff"],
                    service=data["service"],
                    note=data["note"],
                )
            except VisitError as error:
                _show_error(form, error)
            else:
                messages.success(request, _booked_message(appointment))
                language_message(request, _("appointment note"), appointment.note)
                day = appointment.at.astimezone(site.tz).date()
                return redirect(f"{reverse('visits:appointments')}?day={day.isoformat()}")
        person = form.cleaned_data.get("person") if hasattr(form, "cleaned_data") else None
    else:
        person = _person_or_404(site, request.GET["person"]) if "person" in request.GET else None
        form = AppointmentForm(
            site=site, initial={"person": person, "day": selectors.site_today(site)}
        )
    search = NameSearchForm(request.POST if finding else None)
    query = search.query()
    return render(
        request,
        "visits/appointments_form.html",
        {
            "form": form,
            "person": person,
            "search": search,
            "query": query,
            "matches": people_search(site=site, query=query) if person is None else [],
        },
    )


def _booked_message(appointment) -> str:
    when = formats.date_format(appointment.at.astimezone(appointment.site.tz), "D j M, H:i")
    return _("Booked: %(name)s, %(when)s.") % {"name": appointment.person.name, "when": when}


@never_cache
@require_http_methods(["GET", "POST"])
@site_permission_required("visits.change_appointment")
def appointment_edit(request, pk: int):
    site = request.site
    appointment = _appointment_or_404(site, pk)
    if request.method == "POST":
        form = AppointmentForm(request.POST, site=site, booking=False)
        if form.is_valid():
            data = form.cleaned_data
            try:
                services.appointment_reschedule(
                    appointment=appointment,
                    by=request.user,
                    at=data["at"],
                    with_staff=data["with_staff"],
                    service=data["service"],
                    note=data["note"],
                )
            except VisitError as error:
                _show_error(form, error)
            else:
                appointment.refresh_from_db()
                messages.success(request, _booked_message(appointment))
                language_message(request, _("appointment note"), appointment.note)
                day = appointment.at.astimezone(site.tz).date()
                return redirect(f"{reverse('visits:appointments')}?day={day.isoformat()}")
    else:
        local = appointment.at.astimezone(site.tz)
        form = AppointmentForm(
            site=site,
            booking=False,
            initial={
                "day": local.date(),
                "time": local.time(),
                "with_staff": appointment.with_staff,
                "service": appointment.service,
                "note": appointment.note,
            },
        )
    return render(
        request,
        "visits/appointments_form.html",
        {"form": form, "appointment": appointment, "person": appointment.person},
    )


@require_POST
@site_permission_required("visits.change_appointment")
def appointment_cancel(request, pk: int):
    appointment = _appointment_or_404(request.site, pk)
    day = appointment.at.astimezone(request.site.tz).date()
    try:
        services.appointment_cancel(appointment=appointment, by=request.user)
    except VisitError as error:
        messages.warning(request, error.message)
    else:
        messages.success(
            request,
            _("Cancelled the appointment for %(name)s.") % {"name": appointment.person.name},
        )
    return redirect(f"{reverse('visits:appointments')}?day={day.isoformat()}")


@never_cache
@require_GET
@site_permission_required("visits.view_clinical")
def reach_out(request):
    return render(
        request,
        "visits/reach_out.html",
        {"entries": selectors.reach_out_list(site=request.site), "days": services.REACH_OUT_DAYS},
    )


@require_POST
@site_permission_required("visits.view_clinical")
def reach_out_dismiss(request, pk: int):
    person = _person_or_404(request.site, str(pk))
    services.appointment_outreach_dismiss(site=request.site, person=person, by=request.user)
    messages.success(
        request, _("%(name)s is off the reach-out list for now.") % {"name": person.name}
    )
    return redirect("visits:reach_out")


urlpatterns = [
    path("appointments/", appointment_list, name="appointments"),
    path("appointments/new/", appointment_new, name="appointment_new"),
    path("appointments/<int:pk>/edit/", appointment_edit, name="appointment_edit"),
    path("appointments/<int:pk>/cancel/", appointment_cancel, name="appointment_cancel"),
    path("appointments/reach-out/", reach_out, name="reach_out"),
    path("appointments/reach-out/<int:pk>/dismiss/", reach_out_dismiss, name="reach_out_dismiss"),
]
