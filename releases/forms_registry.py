"""Forms for the privacy officer's registry, consents, revocations and requests from outside.

Forms only shape input; the services check everything again and their error codes are mapped
back to the field they belong to.
"""

import uuid

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from clinic.forms import IdsChoiceField, NonceField
from clinic.names import PersonNameField
from releases.models import (
    CRIMINAL_LEGAL,
    Category,
    Consent,
    IncomingRequest,
    Recipient,
    Revocation,
    Scope,
)
from releases.services.consents import STANDARD_REVOCATION_STATEMENT

DATE = {"type": "date"}


def category_label(value: str) -> str:
    label = str(Category(value).label)
    return f"{label} — {_('criminal-legal')}" if value in CRIMINAL_LEGAL else label


def recipient_label(recipient: Recipient) -> str:
    mark = f" · {_('criminal-legal')}" if recipient.is_criminal_legal else ""
    return f"{recipient} ({Category(recipient.current_category).label}){mark}"


class ServiceErrorsMixin:
    ERROR_FIELDS: dict[str, str] = {}
    # Fields the page marks "(optional)". The rest are needed, or needed in some cases the
    # help text explains; the services decide (the fields stay required=False so every problem
    # comes back with the service's own message).
    OPTIONAL: frozenset[str] = frozenset()

    def add_service_error(self, error) -> None:
        field = self.ERROR_FIELDS.get(error.code)
        if field is None:
            field = next((f for f in self.fields if error.code.startswith(f)), None)
        self.add_error(field, error.message)


class RecipientForm(ServiceErrorsMixin, forms.Form):
    organisation = forms.CharField(label=_("Organisation"), max_length=200, required=False)
    office = forms.CharField(
        label=_("Office"), max_length=200, required=False, help_text=_("E.g. Drug court unit.")
    )
    person_name = PersonNameField(label=_("Named person"), max_length=200, required=False)
    contact = forms.CharField(
        label=_("Contact"),
        max_length=1000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Address, phone or e-mail as they gave it."),
    )
    category = forms.ChoiceField(
        label=_("Category"),
        choices=[("", _("Choose…"))] + [(v, category_label(v)) for v in Category.values],
        required=False,
    )
    OPTIONAL = frozenset({"office", "person_name", "contact"})
    ERROR_FIELDS = {
        "organisation_required": "organisation",
        "unknown_category": "category",
        "criminal_legal_unspecific": "office",
        "duplicate": None,
    }


class RecategoriseForm(ServiceErrorsMixin, forms.Form):
    to_category = forms.ChoiceField(
        label=_("New category"), choices=[(v, category_label(v)) for v in Category.values]
    )
    reason = forms.CharField(label=_("Why"), max_length=300, required=False)
    ERROR_FIELDS = {
        "unknown_category": "to_category",
        "same_category": "to_category",
        "reason_required": "reason",
        "reason_too_long": "reason",
    }


STALE_PAGE = _("This page was out of date. Please check the details and record again.")


class DeactivateForm(ServiceErrorsMixin, forms.Form):
    reason = forms.CharField(
        label=_("Why it goes out of use"),
        max_length=300,
        required=False,
        help_text=_("Kept with the recipient's history."),
    )
    ERROR_FIELDS = {"reason_required": "reason", "reason_too_long": "reason"}

    def __init__(self, *args, **kwargs):
        # Shares the page with the recategorise form, which has its own "reason".
        kwargs.setdefault("auto_id", "id_status_%s")
        super().__init__(*args, **kwargs)


class HoldForm(ServiceErrorsMixin, forms.Form):
    note = forms.CharField(
        label=_("What they said"),
        max_length=2000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    OPTIONAL = frozenset({"note"})
    ERROR_FIELDS = {"note_too_long": "note"}


class ConsentForm(ServiceErrorsMixin, forms.Form):
    # A repeated post of the same page (a double tap) returns the first consent.
    nonce = NonceField(error_messages={"required": STALE_PAGE, "invalid": STALE_PAGE})
    recipients = IdsChoiceField(
        label=_("Who may receive it"),
        queryset=Recipient.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_(
            "From the registry only. A criminal-legal recipient must be the only one named."
        ),
    )
    purposes = forms.CharField(
        label=_("Purposes"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Each purpose on its own line, e.g. “Confirm attendance for drug court”."),
    )
    scope = forms.MultipleChoiceField(
        label=_("Information it covers"),
        choices=Scope.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("It covers exactly what is ticked, nothing else."),
    )
    scope_other = forms.CharField(
        label=_("Other information (described)"),
        max_length=500,
        required=False,
        help_text=_("Only when “Other (described)” is ticked."),
    )
    revocation_statement = forms.CharField(
        label=_("How it can be revoked"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
    )
    expires_on = forms.DateField(
        label=_("Ends at the end of"), required=False, widget=forms.DateInput(DATE)
    )
    expiry_event = forms.CharField(
        label=_("Or ends when"),
        max_length=300,
        required=False,
        help_text=_("E.g. “When my drug court case closes”. Give a date, an event, or both."),
    )
    signed_by = forms.ChoiceField(
        label=_("Signed by"),
        choices=Consent.SignedBy.choices,
        required=False,
        widget=forms.RadioSelect,
    )
    representative_name = PersonNameField(
        label=_("Representative's name"),
        max_length=200,
        required=False,
        help_text=_("Only when an authorised representative signs."),
    )
    representative_basis = forms.CharField(
        label=_("Basis of their authority"),
        max_length=300,
        required=False,
        help_text=_("E.g. court-appointed guardian, health-care power of attorney."),
    )
    signature_image = forms.CharField(required=False, widget=forms.HiddenInput)
    scanned_form = forms.FileField(
        label=_("Or attach the scanned signed form"),
        required=False,
        help_text=_("PDF, PNG or JPEG, at most 10 MB."),
        widget=forms.ClearableFileInput(attrs={"accept": ".pdf,.png,.jpg,.jpeg"}),
    )
    signed_on = forms.DateField(
        label=_("Date signed"), required=False, widget=forms.DateInput(DATE)
    )
    court_condition = forms.BooleanField(
        label=_("A court made this consent a condition of release (§2.35)"), required=False
    )
    irrevocable_until = forms.DateField(
        label=_("Irrevocable until"), required=False, widget=forms.DateInput(DATE)
    )
    irrevocable_until_event = forms.CharField(
        label=_("Or irrevocable until (event)"), max_length=300, required=False
    )

    ERROR_FIELDS = {
        "recipient_required": "recipients",
        "recipient_unknown": "recipients",
        "criminal_legal_bundled": "recipients",
        "purpose_required": "purposes",
        "purpose_too_long": "purposes",
        "too_many_purposes": "purposes",
        "scope_required": "scope",
        "scope_unknown": "scope",
        "scope_other_required": "scope_other",
        "scope_other_unticked": "scope_other",
        "scope_other_too_long": "scope_other",
        "revocation_statement_required": "revocation_statement",
        "revocation_statement_too_long": "revocation_statement",
        "signed_on_required": "signed_on",
        "signed_on_future": "signed_on",
        "expiry_required": "expires_on",
        "expires_in_past": "expires_on",
        "expiry_event_too_long": "expiry_event",
        "signed_by_required": "signed_by",
        "representative_name_required": "representative_name",
        "representative_name_too_long": "representative_name",
        "representative_basis_required": "representative_basis",
        "representative_basis_too_long": "representative_basis",
        "representative_not_signer": "representative_name",
        "signature_invalid": "signature_image",
        "signature_blank": "signature_image",
        "signature_required": "signature_image",
        "scan_kind": "scanned_form",
        "scan_too_big": "scanned_form",
        "scan_empty": "scanned_form",
        "irrevocable_until_required": "irrevocable_until",
        "irrevocable_until_past": "irrevocable_until",
        "irrevocable_event_too_long": "irrevocable_until_event",
        "irrevocable_without_court": "court_condition",
        "person_unknown": None,
        "not_privacy_officer": None,
    }

    def __init__(self, *args, site, **kwargs):
        kwargs.setdefault("initial", {}).setdefault(
            "revocation_statement", STANDARD_REVOCATION_STATEMENT
        )
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial["nonce"] = uuid.uuid4()
        field = self.fields["recipients"]
        field.queryset = Recipient.objects.filter(site=site, is_active=True)
        field.label_from_instance = recipient_label

    def clean(self):
        data = super().clean()
        # A hidden field has no place on the page for its error: say it at the top.
        stale = self.errors.pop("nonce", None)
        if stale:
            raise forms.ValidationError(list(stale))
        return data

    def service_kwargs(self) -> dict:
        data = dict(self.cleaned_data)
        data["purposes"] = [line for line in data["purposes"].splitlines() if line.strip()]
        data["recipients"] = list(data["recipients"])
        data["signed_by"] = data["signed_by"] or ""
        return data


class RevocationForm(ServiceErrorsMixin, forms.Form):
    how = forms.ChoiceField(
        label=_("How it was given"),
        choices=Revocation.How.choices,
        required=False,
        widget=forms.RadioSelect,
    )
    received_on = forms.DateField(
        label=_("Date received"), required=False, widget=forms.DateInput(DATE)
    )
    note = forms.CharField(
        label=_("Note"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("E.g. who heard it, if not you."),
    )
    OPTIONAL = frozenset({"note"})
    ERROR_FIELDS = {
        "how_required": "how",
        "received_on_required": "received_on",
        "received_on_future": "received_on",
        "received_before_signed": "received_on",
        "note_too_long": "note",
        "already_revoked": None,
        "already_held": None,
    }


class ExpiryEventForm(ServiceErrorsMixin, forms.Form):
    happened_on = forms.DateField(
        label=_("When it happened"), required=False, widget=forms.DateInput(DATE)
    )
    note = forms.CharField(label=_("Note"), required=False, max_length=300)
    OPTIONAL = frozenset({"note"})
    ERROR_FIELDS = {
        "happened_on_required": "happened_on",
        "happened_on_future": "happened_on",
        "happened_before_signed": "happened_on",
        "note_too_long": "note",
        "no_expiry_event": None,
        "already_recorded": None,
    }


class IncomingForm(ServiceErrorsMixin, forms.Form):
    kind = forms.ChoiceField(
        label=_("What came in"),
        choices=[("", _("Choose…")), *IncomingRequest.Kind.choices],
        required=False,
    )
    received_at = forms.DateTimeField(
        label=_("When it came in"),
        required=False,
        help_text=_("Leave blank for now."),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        error_messages={"invalid": _("Please enter a date and time, e.g. 2026-03-21 14:30.")},
    )
    from_recipient = forms.ModelChoiceField(
        label=_("From (if in the registry)"),
        queryset=Recipient.objects.none(),
        required=False,
        empty_label=_("Not in the registry"),
    )
    from_text = forms.CharField(label=_("From (as they gave it)"), max_length=300, required=False)
    about_text = forms.CharField(
        label=_("About (as they gave it)"),
        max_length=300,
        required=False,
        help_text=_("Write it down as given. Do not look the person up in front of them."),
    )
    asks_for = forms.CharField(
        label=_("What they ask for"),
        max_length=2000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    OPTIONAL = frozenset({"received_at", "from_recipient", "asks_for"})
    ERROR_FIELDS = {
        "kind_required": "kind",
        "from_required": "from_text",
        "from_too_long": "from_text",
        "about_required": "about_text",
        "about_too_long": "about_text",
        "asks_for_too_long": "asks_for",
        "recipient_unknown": "from_recipient",
        "received_future": "received_at",
    }

    def __init__(self, *args, site, **kwargs):
        super().__init__(*args, **kwargs)
        self.site = site
        field = self.fields["from_recipient"]
        field.queryset = Recipient.objects.filter(site=site)
        field.label_from_instance = recipient_label

    def clean_received_at(self):
        # The time typed is the site's wall-clock time, whatever the server's time zone.
        value = self.cleaned_data["received_at"]
        if value is None:
            return None
        return timezone.make_aware(timezone.make_naive(value), self.site.tz)


class PersonSearchForm(forms.Form):
    q = forms.CharField(label=_("Find a person by name"), max_length=200, required=False)
