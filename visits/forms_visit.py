"""Forms of the visit record. They parse; the services decide (and say why not)."""

from django import forms
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from clinic.forms import IdsChoiceField
from clinic.models import Person, Service
from visits.models import Medication, MedicationEvent, Visit
from visits.services import visits as visit_services

DAYS_SUPPLY_MESSAGE = _("Days' supply must be a whole number from 1 to 365.")
LOCAL_FORMAT = "%Y-%m-%dT%H:%M"


class ServicesField(IdsChoiceField):
    widget = forms.CheckboxSelectMultiple

    def __init__(self, **kwargs):
        kwargs.setdefault("queryset", Service.objects.none())
        kwargs.setdefault("required", False)
        kwargs.setdefault("label", _("Services delivered"))
        kwargs.setdefault(
            "error_messages",
            {
                "invalid_choice": _("Please pick services this site offers."),
                "invalid_pk_value": _("Please pick services this site offers."),
                "list": _("Please pick services this site offers."),
            },
        )
        super().__init__(**kwargs)


class SiteDateTimeField(forms.DateTimeField):
    """A date and time typed as the site's wall-clock time (datetime-local input)."""

    widget = forms.DateTimeInput(attrs={"type": "datetime-local"}, format=LOCAL_FORMAT)
    tz = None

    def to_python(self, value):
        with timezone.override(self.tz):
            return super().to_python(value)


def local_now(site) -> str:
    return timezone.localtime(timezone.now(), site.tz).strftime(LOCAL_FORMAT)


def _came_for(visit: Visit) -> list[Service]:
    """While nothing is recorded in a visit from the queue, its services start from the one
    they checked in for (only ticked in the form: saving records it)."""
    arrival = visit.arrival if visit.arrival_id else None
    if arrival is None or arrival.service_id is None or visit.note or visit.priorities:
        return []
    return [arrival.service]


class VisitEditForm(forms.Form):
    base = forms.CharField(widget=forms.HiddenInput, required=False)
    services = ServicesField()
    priorities = forms.CharField(
        label=_("Their priorities today, in their words"),
        required=False,
        max_length=visit_services.PRIORITIES_MAX,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    note = forms.CharField(
        label=_("Note"),
        required=False,
        max_length=visit_services.NOTE_MAX,
        widget=forms.Textarea(attrs={"rows": 8}),
    )

    def __init__(self, *args, visit: Visit, draft: dict[str, list[str]] | None = None, **kwargs):
        if not args and "data" not in kwargs:
            initial = {
                "base": visit_services.visit_fingerprint(visit),
                "services": list(visit.services.all()) or _came_for(visit),
                "priorities": visit.priorities,
                "note": visit.note,
            }
            if draft:
                # What they typed and had not saved yet, with the version it was typed over: if
                # someone else has saved since, saving says so instead of overwriting theirs.
                initial.update(
                    {name: values[-1] for name, values in draft.items() if values},
                    services=draft.get("services", []),
                )
            kwargs.setdefault("initial", initial)
        super().__init__(*args, **kwargs)
        # Active services, plus any already recorded that the site has since stopped offering.
        self.fields["services"].queryset = Service.objects.filter(site=visit.site_id).filter(
            Q(is_active=True) | Q(pk__in=visit.services.all())
        )


class MedicationForm(forms.Form):
    medication = forms.ChoiceField(
        label=_("Medication"),
        choices=[("", _("Choose…")), *Medication.choices],
        error_messages={"required": _("Please pick a medication from the list.")},
    )
    dose = forms.CharField(
        label=_("Dose"),
        max_length=visit_services.DOSE_MAX,
        help_text=_("E.g. 16 mg daily."),
        error_messages={"required": _("Please write the dose, e.g. 16 mg daily.")},
    )
    days_supply = forms.IntegerField(
        label=_("Days' supply"),
        min_value=visit_services.DAYS_SUPPLY_MIN,
        max_value=visit_services.DAYS_SUPPLY_MAX,
        widget=forms.NumberInput(attrs={"inputmode": "numeric"}),
        error_messages={
            "required": DAYS_SUPPLY_MESSAGE,
            "invalid": DAYS_SUPPLY_MESSAGE,
            "min_value": DAYS_SUPPLY_MESSAGE,
            "max_value": DAYS_SUPPLY_MESSAGE,
        },
    )
    action = forms.ChoiceField(
        label=_("How"),
        choices=MedicationEvent.Action.choices,
        widget=forms.RadioSelect,
        initial=MedicationEvent.Action.PRESCRIBED,
        error_messages={
            "required": _("Please say whether it was prescribed, dispensed or administered."),
            "invalid_choice": _("Please say whether it was prescribed, dispensed or administered."),
        },
    )


class AddendumForm(forms.Form):
    text = forms.CharField(
        label=_("Addendum"),
        max_length=visit_services.ADDENDUM_MAX,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("A correction or later note. Saved with your name and the time."),
        error_messages={"required": _("Please write the addendum.")},
    )


class DirectVisitForm(forms.Form):
    origin = forms.ChoiceField(
        label=_("What kind of contact"),
        choices=[
            (Visit.Origin.QUICK, _("Quick contact (e.g. naloxone at the door)")),
            (Visit.Origin.OUTREACH, _("Outreach")),
        ],
        initial=Visit.Origin.QUICK,
        widget=forms.RadioSelect,
    )
    # Empty: an anonymous contact. Rendered as radio buttons by the template.
    person = forms.IntegerField(
        required=False,
        widget=forms.HiddenInput,
        error_messages={"invalid": _("That person is not known at this site.")},
    )
    services = ServicesField()
    started_at = SiteDateTimeField(
        label=_("Started"),
        error_messages={
            "required": _("Please give the start time."),
            "invalid": _("Please give the start as a date and time."),
        },
    )
    ended_at = SiteDateTimeField(
        label=_("Ended (optional)"),
        required=False,
        help_text=_(
            "A quick contact left empty ends when it started; "
            "outreach left empty stays open to end later."
        ),
        error_messages={"invalid": _("Please give the end as a date and time.")},
    )
    priorities = VisitEditForm.base_fields["priorities"]
    note = VisitEditForm.base_fields["note"]

    def __init__(self, *args, site, **kwargs):
        super().__init__(*args, **kwargs)
        self.site = site
        self.fields["services"].queryset = Service.objects.filter(site=site, is_active=True)
        self.fields["started_at"].tz = site.tz
        self.fields["ended_at"].tz = site.tz
        if not self.is_bound:
            self.initial.setdefault("started_at", local_now(site))

    def clean_person(self):
        person_id = self.cleaned_data.get("person")
        if not person_id:
            return None
        person = Person.objects.current().filter(pk=person_id, site=self.site).first()
        if person is None:
            raise forms.ValidationError(_("That person is not known at this site."))
        return person


class HandOffNoteForm(forms.Form):
    """The hand-off page's note for the next team member (queues/views.py: hand_off)."""

    note = forms.CharField(
        label=_("Note for the next team member (optional)"),
        required=False,
        max_length=visit_services.HAND_OFF_NOTE_MAX,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("Shown to them on the visit record. What they should know to pick up."),
    )
