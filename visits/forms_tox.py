"""The tox-screen conversation form. The person's own account comes before any result."""

from django import forms
from django.utils.translation import gettext_lazy as _

from visits.models import Substance, ToxResult, ToxScreen
from visits.services.tox import TALKED_FIELDS

RESULT_PREFIX = "result_"


def _model_field(name: str):
    return ToxScreen._meta.get_field(name)


class ToxScreenForm(forms.Form):
    own_account = forms.CharField(
        label=_("What they say they have used, in their words (optional)"),
        required=False,
        max_length=_model_field("own_account").max_length,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Ask first, before looking at any result."),
    )
    specimen = forms.ChoiceField(
        label=_model_field("specimen").verbose_name.capitalize(),
        choices=ToxScreen.Specimen.choices,
        widget=forms.RadioSelect,
        error_messages={
            "required": _("Please choose urine or oral fluid."),
            "invalid_choice": _("Please choose urine or oral fluid."),
        },
    )
    collected_on = forms.DateField(
        label=_("Date"),
        widget=forms.DateInput(attrs={"type": "date"}),
        error_messages={
            "required": _("Please give the date."),
            "invalid": _("Please give the date as YYYY-MM-DD."),
        },
    )
    decision = forms.CharField(
        label=_("What they decided"),
        required=False,
        max_length=_model_field("decision").max_length,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    note = forms.CharField(
        label=_("Note"),
        required=False,
        max_length=_model_field("note").max_length,
        widget=forms.Textarea(attrs={"rows": 4}),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for substance in Substance:
            self.fields[RESULT_PREFIX + substance.value] = forms.ChoiceField(
                label=substance.label,
                choices=ToxResult.Result.choices,
                initial=ToxResult.Result.NOT_TESTED,
                # A row left out of the POST was not tested, like the default.
                required=False,
                widget=forms.RadioSelect,
                error_messages={
                    "invalid_choice": _(
                        "Please choose negative, positive, expected or not tested for %(s)s."
                    )
                    % {"s": substance.label},
                },
            )
        for name in TALKED_FIELDS:
            self.fields[name] = forms.BooleanField(
                label=_model_field(name).verbose_name.capitalize(), required=False
            )

    # For the template: the groups of fields, in the order the conversation goes.
    def result_fields(self):
        return [self[RESULT_PREFIX + s] for s in Substance.values]

    def talked_fields(self):
        return [self[name] for name in TALKED_FIELDS]

    def clean(self):
        data = super().clean()
        # A result for anything not in the list is refused outright, not silently dropped.
        unknown = sorted(
            key[len(RESULT_PREFIX) :]
            for key in self.data
            if key.startswith(RESULT_PREFIX) and key[len(RESULT_PREFIX) :] not in Substance.values
        )
        if unknown:
            raise forms.ValidationError(
                _("%(what)s is not in the list of substances; nothing was saved.")
                % {"what": ", ".join(unknown)[:200]},
                code="unknown_substance",
            )
        return data

    def results(self) -> dict[str, str]:
        return {
            s: self.cleaned_data[RESULT_PREFIX + s] or ToxResult.Result.NOT_TESTED
            for s in Substance.values
        }

    def talked(self) -> dict[str, bool]:
        return {name: self.cleaned_data[name] for name in TALKED_FIELDS}
