"""Forms for a person's details and for filtering the access log and the history of changes."""

from datetime import date

from django import forms
from django.contrib.auth import get_user_model
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from clinic.dates import record_day_problem
from clinic.models import Person
from clinic.names import PersonNameField
from visits.errors import VisitError
from visits.selectors.history import history_staff_choices
from visits.selectors.people import access_log_staff_choices
from visits.services import people as services

UNKNOWN_PERSON = _("That person is not known at this site.")
UNKNOWN_STAFF = _("Please pick a staff member from the list.")


class PersonDetailsForm(forms.Form):
    """Only the name is required (PRODUCT.md invariant 7). The service checks everything again."""

    name = PersonNameField(
        label=_("Name"),
        max_length=services.NAME_MAX,
        help_text=_("The name they go by."),
        error_messages={"required": _("Please enter the name the person goes by.")},
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    pronouns = forms.CharField(
        label=_("Pronouns"), max_length=services.PRONOUNS_MAX, required=False
    )
    date_of_birth = forms.DateField(
        label=_("Date of birth"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        error_messages={"invalid": _("Please enter a date, e.g. 1984-03-21.")},
    )
    phone = forms.CharField(
        label=_("Phone"),
        max_length=services.PHONE_MAX,
        required=False,
        widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "off"}),
    )
    what_helps = forms.CharField(
        label=_("What helps"),
        max_length=services.WHAT_HELPS_MAX,
        required=False,
        help_text=_("E.g. has a dog, likes coffee, prefers the quiet room."),
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    # Which field a service error belongs to, so the message shows next to it.
    ERROR_FIELDS = {
        "name_required": "name",
        "name_no_letter": "name",
        "name_too_long": "name",
        "pronouns_too_long": "pronouns",
        "phone_too_long": "phone",
        "what_helps_too_long": "what_helps",
        "birth_in_future": "date_of_birth",
        "birth_too_early": "date_of_birth",
    }

    def __init__(self, *args, today: date, **kwargs):
        super().__init__(*args, **kwargs)
        self.today = today

    @classmethod
    def for_person(cls, person: Person, data=None) -> "PersonDetailsForm":
        initial = {
            "name": person.name,
            "pronouns": person.pronouns,
            "date_of_birth": person.date_of_birth,
            "phone": person.phone,
            "what_helps": person.what_helps,
        }
        today = timezone.localdate(timezone.now(), person.site.tz)
        return cls(data, initial=initial, today=today)

    def clean_date_of_birth(self):
        # Checked here too so every problem shows at once; the service checks it again.
        born = self.cleaned_data["date_of_birth"]
        if born is not None:
            try:
                services.check_date_of_birth(born, today=self.today)
            except VisitError as error:
                raise forms.ValidationError(error.message, code=error.code) from error
        return born

    def add_service_error(self, error) -> None:
        self.add_error(self.ERROR_FIELDS.get(error.code), error.message)


class AccessLogFilterForm(forms.Form):
    """?person=<id>&staff=<id>&since=<date>&until=<date>, all optional: ids and dates only,
    never a name (a person is found by name through a POST search, then chosen by id). The
    person must be known at the site; days are the site's, from its first day of records to
    today."""

    person = forms.ModelChoiceField(
        queryset=Person.objects.none(),
        required=False,
        widget=forms.HiddenInput,
        error_messages={"invalid_choice": UNKNOWN_PERSON},
    )
    staff = forms.ModelChoiceField(
        label=_("Staff member"),
        queryset=get_user_model().objects.none(),
        required=False,
        empty_label=_("Everyone"),
        error_messages={"invalid_choice": UNKNOWN_STAFF},
    )
    since = forms.DateField(
        label=_("From"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        error_messages={"invalid": _("Please enter a date, e.g. 2025-03-14.")},
    )
    until = forms.DateField(
        label=_("Until"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        error_messages={"invalid": _("Please enter a date, e.g. 2025-03-14.")},
    )

    def __init__(self, *args, site, **kwargs):
        super().__init__(*args, **kwargs)
        self.site = site
        self.fields["person"].queryset = Person.objects.filter(site=site)
        staff = self.fields["staff"]
        staff.queryset = access_log_staff_choices(site=site)
        staff.label_from_instance = lambda u: (
            f"{u.get_full_name()} ({u.get_username()})" if u.get_full_name() else u.get_username()
        )

    def clean(self):
        cleaned = super().clean()
        for name in ("since", "until"):
            day = cleaned.get(name)
            problem = record_day_problem(day, site=self.site) if day else None
            if problem:
                self.add_error(name, problem)
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and since > until:
            self.add_error("until", _("The last day cannot be before the first."))
        return cleaned


class ChangesFilterForm(AccessLogFilterForm):
    """The access log's filters, with the staff who changed something at the site."""

    def __init__(self, *args, site, **kwargs):
        super().__init__(*args, site=site, **kwargs)
        self.fields["staff"].queryset = history_staff_choices(site=site)
