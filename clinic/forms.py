"""Form pieces shared by the apps."""

import uuid

from django import forms
from django.utils.translation import gettext_lazy as _


class NonceField(forms.UUIDField):
    """A form's one-time nonce, so a double tap saves once (check-in, signed consents).

    A page shown again after a missing or broken nonce gets a new one.
    """

    widget = forms.HiddenInput
    fresh = None  # set on the form's own copy of the field

    def bound_data(self, data, initial):
        try:
            value = self.to_python(data)
        except forms.ValidationError:
            value = None
        if value is None:
            self.fresh = self.fresh or uuid.uuid4()
            value = self.fresh
        return value


class NameSearchForm(forms.Form):
    """A search for people by the name they go by.

    Pages send it by POST, never GET: a name typed into a search must not travel in a URL,
    where server logs, browser history and Referer headers would keep it. A search changes
    nothing; the POST only carries the text.
    """

    # Longer than any name can be (Person.name holds 200 characters).
    MAX_LENGTH = 200

    q = forms.CharField(
        label=_("Name"),
        max_length=MAX_LENGTH,
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )

    def query(self) -> str:
        """The text to look for (the form's one field); empty when there is none or it could
        not be used."""
        return next(iter(self.cleaned_data.values()), "") if self.is_valid() else ""


class IdsChoiceField(forms.ModelMultipleChoiceField):
    """Several rows picked by id. What is not a database id at all (text, other digits than
    0-9, or a number too big for the column) is refused before any query: SQLite raises on a
    number too big instead of finding nothing."""

    def _check_values(self, value):
        for pk in value:
            text = str(pk)
            if not (text.isascii() and text.isdigit()) or int(text[:20]) > 2**63 - 1:
                raise forms.ValidationError(
                    self.error_messages["invalid_choice"],
                    code="invalid_choice",
                    params={"value": text[:50]},
                )
        return super()._check_values(value)
