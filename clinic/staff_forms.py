"""Forms for managing staff (the staff page and the admin): they check the input; the services
in clinic/staff.py decide who may do what and refuse with coded errors."""

from django import forms
from django.contrib.auth import password_validation
from django.contrib.auth.forms import SetPasswordForm, UserCreationForm
from django.utils.translation import gettext_lazy as _

from clinic.models import Discipline, Membership
from clinic.names import PersonNameField
from clinic.roles import ROLE_LABELS, ROLE_NAMES

ROLE_CHOICES = [(name, ROLE_LABELS[name]) for name in ROLE_NAMES]


def _password_help() -> str:
    # Django's own help text is an HTML list; these pages show plain text.
    return " ".join(str(text) for text in password_validation.password_validators_help_texts())


class RolesField(forms.MultipleChoiceField):
    """The four roles as checkboxes, in the order used everywhere."""

    widget = forms.CheckboxSelectMultiple

    def __init__(self, **kwargs):
        kwargs.setdefault("choices", ROLE_CHOICES)
        kwargs.setdefault("label", _("Roles at this site"))
        super().__init__(**kwargs)


class StaffCreationForm(UserCreationForm):
    """A new staff account: username, names, a temporary password typed twice (Django's
    password validators check it), and the discipline and roles at the site."""

    discipline = forms.ChoiceField(
        label=_("Discipline"), choices=Discipline.choices, initial=Discipline.OTHER
    )
    roles = RolesField(
        error_messages={"required": _("Please choose at least one role.")},
        help_text=_("What they may do at this site, and only here."),
    )

    class Meta(UserCreationForm.Meta):
        fields = ("username", "first_name", "last_name")
        field_classes = {"first_name": PersonNameField, "last_name": PersonNameField}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["password1"].label = _("Temporary password")
        self.fields["password1"].help_text = _(
            "Give it to them in person, never by e-mail or text message. %(rules)s"
        ) % {"rules": _password_help()}
        self.fields["password2"].label = _("Temporary password again")
        self.fields["password2"].help_text = ""


class MembershipForm(forms.Form):
    """The discipline and roles someone has at the current site."""

    discipline = forms.ChoiceField(label=_("Discipline"), choices=Discipline.choices)
    roles = RolesField(
        error_messages={
            "required": _("Please choose at least one role, or take them off this site instead.")
        }
    )

    @classmethod
    def for_membership(cls, membership: Membership, data=None, roles=None):
        return cls(data, initial={"discipline": membership.discipline, "roles": roles or []})


class StaffPasswordForm(SetPasswordForm):
    """A new password for someone else's account, typed twice, checked by the validators."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["new_password1"].help_text = _(
            "Give it to them in person. They are signed out everywhere. %(rules)s"
        ) % {"rules": _password_help()}
        self.fields["new_password1"].widget.attrs.pop("autofocus", None)
        self.fields["new_password2"].label = _("New password again")
        self.fields["new_password2"].help_text = ""
