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
