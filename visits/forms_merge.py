"""Forms for merging two records of one person. Lengths come from the model; the service
checks everything that needs the database again, under its locks."""

import uuid

from django import forms
from django.utils.translation import gettext_lazy as _

from clinic.models import Person, PersonMerge
from visits.selectors.merge import Comparison
from visits.services.merge import TAKEABLE, WHAT_HELPS_MAX

KEPT, DUPLICATE = "kept", "duplicate"


class MergeFindForm(forms.Form):
    """Sent by POST, so a name never travels in a URL."""

    q = forms.CharField(
        label=_("Name of the other record"),
        max_length=Person._meta.get_field("name").max_length,
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
        error_messages={"required": _("Please type a name to look for.")},
    )


class MergeProposeForm(forms.Form):
    """Which details the kept record keeps where the two differ (its own by default), whether
    the second record's "what helps" is added to it, and why they are one person."""

    reason = forms.CharField(
        label=_("Why they are one person"),
        max_length=PersonMerge._meta.get_field("reason").max_length,
        help_text=_(
            "What you checked, e.g. the same date of birth, and they told us they registered "
            "twice. The privacy officer reads this."
        ),
        widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={"required": _("Please say why you think they are one person.")},
    )
    append_what_helps = forms.BooleanField(
        label=_('Add "what helps" from the second record to the kept one'),
        required=False,
        initial=True,
    )
    nonce = forms.UUIDField(widget=forms.HiddenInput)
    seen = forms.CharField(widget=forms.HiddenInput, max_length=64)

    def __init__(self, *args, comparison: Comparison, **kwargs):
        super().__init__(*args, **kwargs)
        self.comparison = comparison
        kept, duplicate = comparison.kept.person, comparison.duplicate.person
        self.choice_fields = []
        for row in comparison.rows:
            if row.field not in TAKEABLE or row.same:
                continue
            name = f"take_{row.field}"
            self.fields[name] = forms.ChoiceField(
                label=row.label,
                choices=[
                    (KEPT, _label(row.kept, kept)),
                    (DUPLICATE, _label(row.duplicate, duplicate)),
                ],
                initial=KEPT,
                # Not answered (a radio group sent without a choice): the record kept's own.
                required=False,
                widget=forms.RadioSelect,
            )
            self.choice_fields.append(name)
        if not comparison.offer_what_helps:
            del self.fields["append_what_helps"]
        if not self.is_bound:
            self.initial.setdefault("nonce", uuid.uuid4())
            self.initial.setdefault("seen", comparison.fingerprint)

    def clean(self):
        data = super().clean()
        # Checked here too so every problem shows at once; the service checks it again.
        if data.get("append_what_helps"):
            kept = self.comparison.kept.person.what_helps.strip()
            theirs = self.comparison.duplicate.person.what_helps.strip()
            if len(kept) + len(theirs) + 1 > WHAT_HELPS_MAX:
                self.add_error(
                    "append_what_helps",
                    _(
                        'Together, both "what helps" notes are longer than %(max)d '
                        "characters. Please shorten one of them first, or leave the second "
                        "one out."
                    )
                    % {"max": WHAT_HELPS_MAX},
                )
        return data

    def service_kwargs(self) -> dict:
        data = self.cleaned_data
        return {
            "reason": data["reason"].strip(),
            "seen": data["seen"],
            "nonce": data["nonce"],
            "append_what_helps": bool(data.get("append_what_helps")),
            "take_from_duplicate": [
                name.removeprefix("take_")
                for name in self.choice_fields
                if data.get(name) == DUPLICATE
            ],
        }


def _label(value: str, person) -> str:
    shown = value or _("not given")
    return _("%(value)s (record #%(id)s)") % {"value": shown, "id": person.pk}


class MergeDeclineForm(forms.Form):
    reason = forms.CharField(
        label=_("Why not"),
        max_length=PersonMerge._meta.get_field("decline_reason").max_length,
        required=False,
        help_text=_("E.g. two siblings with the same birthday. The clinician who asked sees it."),
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
