from datetime import datetime, timedelta

from django import forms
from django.utils.translation import gettext_lazy as _

from clinic.models import Membership, Person, Service
from queues.services import staff_label
from visits.selectors.appointments import site_today
from visits.services.appointments import NOTE_MAX, site_team

UNKNOWN_PERSON = _("That person is not known at this site.")
# Far enough for any real booking; stops typos such as the year 20266.
MAX_DAYS_AHEAD = 3 * 366


class AppointmentForm(forms.Form):
    """Book or reschedule. `person` is only asked for when booking."""

    person = forms.ModelChoiceField(
        queryset=Person.objects.none(),
        widget=forms.HiddenInput,
        error_messages={
            "required": _("Please choose who the appointment is for."),
            "invalid_choice": UNKNOWN_PERSON,
        },
    )
    day = forms.DateField(
        label=_("Date"),
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        error_messages={
            "required": _("Please give the date."),
            "invalid": _("Please give a date such as 2026-11-03."),
        },
    )
    time = forms.TimeField(
        label=_("Time"),
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        error_messages={
            "required": _("Please give the time."),
            "invalid": _("Please give a time such as 14:30."),
        },
    )
    with_staff = forms.ModelChoiceField(
        label=_("With (optional)"),
        queryset=None,
        required=False,
        empty_label=_("Whoever is free"),
        error_messages={"invalid_choice": _("Please pick a team member at this site.")},
    )
    service = forms.ModelChoiceField(
        label=_("For (optional)"),
        queryset=Service.objects.none(),
        required=False,
        empty_label=_("Not set"),
        error_messages={"invalid_choice": _("Please pick a service this site offers.")},
    )
    note = forms.CharField(
        label=_("Note (optional)"),
        max_length=NOTE_MAX,
        required=False,
        help_text=_("Short and practical, e.g. bring the letter from housing."),
    )

    def __init__(self, *args, site, booking: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.site = site
        if booking:
            self.fields["person"].queryset = Person.objects.current().filter(site=site)
        else:
            del self.fields["person"]
        self.fields["service"].queryset = Service.objects.filter(site=site, is_active=True)
        team = site_team(site)
        self.fields["with_staff"].queryset = team
        disciplines = dict(
            Membership.objects.filter(site=site).values_list("user_id", "discipline")
        )
        labels = dict(Membership._meta.get_field("discipline").choices)
        self.fields["with_staff"].label_from_instance = lambda u: (
            f"{staff_label(u)} — {labels.get(disciplines.get(u.pk), '')}".rstrip(" —")
        )

    def clean_day(self):
        day = self.cleaned_data["day"]
        if day > site_today(self.site) + timedelta(days=MAX_DAYS_AHEAD):
            raise forms.ValidationError(_("Please pick a date within the next three years."))
        return day

    def clean(self):
        data = super().clean()
        if data.get("day") and data.get("time"):
            data["at"] = datetime.combine(data["day"], data["time"], tzinfo=self.site.tz)
        return data
