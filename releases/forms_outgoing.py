"""Forms for asking for a release and for a medical-emergency release. Recipients come from the
site's registry only; the services check everything again."""

from django import forms
from django.utils.translation import gettext_lazy as _

from clinic.names import PersonNameField
from releases.models import Category, EmergencyReview, HandOver, Recipient, Scope

DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class RecipientChoice(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return f"{obj} ({obj.get_category_display()})"


class ReleaseRequestForm(forms.Form):
    recipient = RecipientChoice(
        label=_("Recipient"),
        queryset=Recipient.objects.none(),
        empty_label=_("Choose from the registry"),
        help_text=_("Only recipients in the registry. Ask the privacy officer to add one."),
        error_messages={"required": _("Please choose a recipient from the registry.")},
    )
    purpose = forms.CharField(
        label=_("Purpose"),
        max_length=300,
        help_text=_("As worded in the person's consent, e.g. “attendance letter for drug court”."),
        error_messages={"required": _("Please say what the release is for.")},
    )
    scope = forms.MultipleChoiceField(
        label=_("Information to release"),
        choices=Scope.choices,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": _("Please choose what information to release.")},
    )
    period_start = forms.DateField(label=_("From (optional)"), required=False, widget=DATE)
    period_end = forms.DateField(label=_("Until (optional)"), required=False, widget=DATE)
    note = forms.CharField(
        label=_("Note for the privacy officer (optional)"),
        max_length=2000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    ERROR_FIELDS = {
        "unknown_recipient": "recipient",
        "missing_purpose": "purpose",
        "purpose_too_long": "purpose",
        "missing_scope": "scope",
        "unknown_scope": "scope",
        "period_backwards": "period_end",
        "note_too_long": "note",
    }

    def __init__(self, *args, site, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["recipient"].queryset = Recipient.objects.filter(site=site, is_active=True)

    def add_service_error(self, error) -> None:
        self.add_error(self.ERROR_FIELDS.get(error.code), error.message)

    def add_coverage_problem(self, reason_text: str, uncovered: list[str]) -> None:
        """What no current consent covers, said before anything is saved, so the request can
        be corrected (untick those items) rather than refused later as a whole."""
        if reason_text:
            self.add_error(
                None,
                _("%(reason)s Nothing was saved: record the consent first, then ask.")
                % {"reason": reason_text},
            )
            return
        labels = ", ".join(str(Scope(item).label) for item in uncovered)
        self.add_error(
            "scope",
            _(
                "The consent for this recipient and purpose does not cover: %(items)s. Untick "
                "them to ask for what it covers, or record a new consent that covers them first."
            )
            % {"items": labels},
        )


class HandOverForm(forms.Form):
    """How the packet leaves and to whom, confirmed by the person handing it over."""

    how = forms.ChoiceField(
        label=_("How it is delivered"),
        choices=HandOver.How.choices,
        widget=forms.RadioSelect,
        error_messages={"required": _("Please choose how it is delivered.")},
    )
    handed_to = forms.CharField(
        label=_("To whom, or where it is sent"),
        max_length=200,
        help_text=_("E.g. the name of the officer who received it, or the fax number used."),
        error_messages={"required": _("Please say to whom it is handed, or where it is sent.")},
    )
    note = forms.CharField(
        label=_("Note"),
        max_length=1000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    ERROR_FIELDS = {
        "unknown_how": "how",
        "handed_to_missing": "handed_to",
        "handed_to_too_long": "handed_to",
        "note_too_long": "note",
    }

    def add_service_error(self, error) -> None:
        self.add_error(self.ERROR_FIELDS.get(error.code), error.message)


class EmergencyReleaseForm(forms.Form):
    recipient = RecipientChoice(
        label=_("Medical personnel"),
        queryset=Recipient.objects.none(),
        empty_label=_("Choose a treatment provider"),
        error_messages={"required": _("Please choose a treatment provider from the registry.")},
    )
    personnel_name = PersonNameField(
        label=_("Name of the medical staff member who receives it"),
        max_length=200,
        error_messages={"required": _("Please give the name of the person who receives it.")},
    )
    reason = forms.CharField(
        label=_("The nature of the emergency, in your words"),
        max_length=250,
        widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={"required": _("Please type the reason for the emergency release.")},
    )
    scope = forms.MultipleChoiceField(
        label=_("Information the treating staff need"),
        choices=[c for c in Scope.choices if c[0] != Scope.OTHER],
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": _("Please choose what information to release.")},
    )

    def __init__(self, *args, site, **kwargs):
        super().__init__(*args, **kwargs)
        # Every active recipient validates, so an attempt at anyone else reaches the service,
        # which refuses it and writes it to the disclosure log; only treatment providers
        # (now and always) are offered.
        recipients = Recipient.objects.filter(site=site, is_active=True)
        field = self.fields["recipient"]
        field.queryset = recipients
        offered = [
            r for r in recipients if set(r.category_history()) == {Category.TREATMENT_PROVIDER}
        ]
        field.widget.choices = [("", field.empty_label)] + [
            (r.pk, field.label_from_instance(r)) for r in offered
        ]


class EmergencyReviewForm(forms.Form):
    finding = forms.ChoiceField(
        label=_("Finding"),
        choices=EmergencyReview.Finding.choices,
        widget=forms.RadioSelect,
        error_messages={"required": _("Please choose a finding.")},
    )
    note = forms.CharField(
        label=_("Note"),
        max_length=2000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_(
            "Needed unless the release was appropriate: the concerns, and what was done. "
            "No more about the person than the review needs."
        ),
    )

    ERROR_FIELDS = {
        "unknown_finding": "finding",
        "note_required": "note",
        "note_too_long": "note",
    }

    def add_service_error(self, error) -> None:
        self.add_error(self.ERROR_FIELDS.get(error.code), error.message)
