import uuid

from django import forms
from django.utils.translation import gettext_lazy as _

from clinic.dates import birth_date_problem, site_today
from clinic.forms import NameSearchForm, NonceField
from clinic.models import Person, Room, Service
from clinic.names import PersonNameField
from queues import services

STALE_PAGE = _("This page was out of date. Please check the details and try again.")
UNKNOWN_PERSON = _("That person is not known at this site.")
UNKNOWN_SERVICE = _("Please pick a service this site offers.")


def _move_hidden_errors_to_top(form: forms.Form, names: tuple[str, ...]) -> None:
    """Hidden inputs have no place on the page to show an error: say it at the top instead."""
    messages = [message for name in names for message in form.errors.pop(name, [])]
    if messages:
        raise forms.ValidationError(list(dict.fromkeys(messages)))


class CheckInForm(forms.Form):
    nonce = NonceField(error_messages={"required": STALE_PAGE, "invalid": STALE_PAGE})
    person = forms.IntegerField(
        required=False, widget=forms.HiddenInput, error_messages={"invalid": UNKNOWN_PERSON}
    )
    # Without JavaScript, each known person is a submit button carrying their id.
    person_pick = forms.IntegerField(
        required=False, widget=forms.HiddenInput, error_messages={"invalid": UNKNOWN_PERSON}
    )
    name = PersonNameField(
        label=_("Name"),
        max_length=services.NAME_MAX,
        required=False,
        help_text=_("The name they want to be called."),
        widget=forms.TextInput(
            attrs={"autocomplete": "off", "autocapitalize": "words", "spellcheck": "false"}
        ),
    )
    # Set by the "someone new" button after the form pointed out a namesake already known here.
    confirm_new = forms.BooleanField(required=False, widget=forms.HiddenInput)
    service = forms.ModelChoiceField(
        label=_("Here for"),
        queryset=Service.objects.none(),
        required=False,
        empty_label=_("Not sure yet"),
        blank=True,  # RadioSelect drops the empty choice otherwise; "not sure" is an answer
        widget=forms.RadioSelect,
        error_messages={"invalid_choice": UNKNOWN_SERVICE},
    )
    urgent = forms.BooleanField(label=_("Urgent"), required=False)
    urgent_reason = forms.CharField(
        label=_("Why urgent (short clinical reason)"),
        max_length=services.REASON_MAX,
        required=False,
    )
    pronouns = forms.CharField(label=_("Pronouns"), max_length=40, required=False)
    date_of_birth = forms.DateField(
        label=_("Date of birth"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    phone = forms.CharField(label=_("Phone"), max_length=40, required=False)
    what_helps = forms.CharField(
        label=_("What helps"),
        max_length=services.WHAT_HELPS_MAX,
        required=False,
        help_text=_("E.g. has a dog, likes coffee."),
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    appointment_at = forms.TimeField(
        label=_("Appointment time, if they have one"),
        required=False,
        widget=forms.TimeInput(attrs={"type": "time"}),
        help_text=_("Shown on the board; never changes anyone's place in line."),
    )

    def __init__(self, *args, site, **kwargs):
        super().__init__(*args, **kwargs)
        self.site = site
        # Ordered without the site's name (one site): no join.
        self.fields["service"].queryset = Service.objects.filter(
            site=site, is_active=True
        ).order_by("position", "name")
        if not self.is_bound:
            self.initial.setdefault("nonce", uuid.uuid4())

    def clean_date_of_birth(self):
        # The service checks it again; here so every problem shows at once, next to the field.
        born = self.cleaned_data["date_of_birth"]
        if born is not None:
            problem = birth_date_problem(born, today=site_today(self.site))
            if problem is not None:
                raise forms.ValidationError(problem[1], code=problem[0])
        return born

    def clean(self):
        data = super().clean()
        # Stops here too, so a broken person id never falls back to registering someone new.
        _move_hidden_errors_to_top(self, ("nonce", "person", "person_pick"))
        person_id = data.get("person") or data.get("person_pick")
        if person_id:
            person = Person.objects.current().filter(pk=person_id, site=self.site).first()
            if person is None:
                raise forms.ValidationError(UNKNOWN_PERSON)
            data["person_obj"] = person
        elif not (data.get("name") or "").strip() and "name" not in self.errors:
            self.add_error("name", _("Please enter the name the person goes by."))
        if data.get("urgent") and not (data.get("urgent_reason") or "").strip():
            self.add_error("urgent_reason", _("Please give a short reason it is urgent."))
        return data


class PeopleSearchForm(NameSearchForm):
    """Check-in's "people already known": the same name input the check-in itself sends."""

    q = None
    name = forms.CharField(label=_("Name"), max_length=services.NAME_MAX, required=False)


class CallNextForm(forms.Form):
    service = forms.ModelChoiceField(
        label=_("For"),
        queryset=Service.objects.none(),
        required=False,
        empty_label=_("Anyone"),
    )

    def __init__(self, *args, site, **kwargs):
        super().__init__(*args, **kwargs)
        # Ordered without the site's name (one site): no join.
        self.fields["service"].queryset = Service.objects.filter(
            site=site, is_active=True
        ).order_by("position", "name")


class RoomForm(forms.Form):
    room = forms.ModelChoiceField(
        label=_("Your room"),
        queryset=Room.objects.none(),
        required=False,
        empty_label=_("Front desk"),
    )

    def __init__(self, *args, site, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["room"].queryset = Room.objects.filter(site=site, is_active=True).order_by(
            "position", "name"
        )


class RoomConfirmForm(RoomForm):
    """The day's first call: which room, as large choices for a finger or the arrow keys."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["room"]
        field.label = _("Where should the people you call go today?")
        field.widget = forms.RadioSelect(choices=field.choices)


class RevisionField(forms.IntegerField):
    """The revision the page was made from. Shown again after a broken one: the current one."""

    widget = forms.HiddenInput

    def bound_data(self, data, initial):
        try:
            return self.to_python(data) if data not in self.empty_values else initial
        except forms.ValidationError:
            return initial


class HandOffForm(forms.Form):
    revision = RevisionField(error_messages={"required": STALE_PAGE, "invalid": STALE_PAGE})
    to_user = forms.ModelChoiceField(
        label=_("Hand off to"),
        queryset=None,
        widget=forms.RadioSelect,
        empty_label=None,
        error_messages={"invalid_choice": _("Please pick a team member at this site.")},
    )

    def __init__(self, *args, site, exclude_user_id=None, **kwargs):
        super().__init__(*args, **kwargs)
        candidates = services.handoff_candidates(site)
        if exclude_user_id:
            candidates = candidates.exclude(pk=exclude_user_id)
        self.fields["to_user"].queryset = candidates
        disciplines = dict(site.memberships.values_list("user_id", "discipline"))
        labels = dict(site.memberships.model._meta.get_field("discipline").choices)
        self.fields["to_user"].label_from_instance = lambda u: (
            f"{services.staff_label(u)} — {labels.get(disciplines.get(u.pk), '')}".rstrip(" —")
        )

    def clean(self):
        data = super().clean()
        _move_hidden_errors_to_top(self, ("revision",))
        return data
