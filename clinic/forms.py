"""Form pieces shared by the apps."""

import uuid

from django import forms


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
