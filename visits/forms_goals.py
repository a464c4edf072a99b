"""Forms for goals. They only read the request; visits/services/goals.py decides."""

from django import forms
from django.utils.translation import gettext_lazy as _

from visits.models import Goal, GoalProgress
from visits.services.goals import PROGRESS_MAX, WORDS_MAX

BROKEN_PAGE = _("This page was out of date. Please try again.")


class _FromVisit(forms.Form):
    # Set when the form is on a visit page: the goal or step is linked to that visit.
    visit = forms.IntegerField(
        required=False,
        widget=forms.HiddenInput,
        min_value=1,
        error_messages={"invalid": BROKEN_PAGE, "min_value": BROKEN_PAGE},
    )


class GoalForm(_FromVisit):
    words = forms.CharField(
        label=_("Their goal, in their own words"),
        max_length=WORDS_MAX,
        widget=forms.Textarea(attrs={"rows": 2}),
        error_messages={"required": _("Please write the goal in the person's own words.")},
    )


class GoalStatusForm(forms.Form):
    status = forms.ChoiceField(
        label=_("Status"),
        choices=Goal.Status.choices,
        error_messages={
            "required": _("Please pick one of the statuses listed."),
            "invalid_choice": _("Please pick one of the statuses listed."),
        },
    )


class ProgressForm(_FromVisit):
    note = forms.CharField(
        label=GoalProgress._meta.get_field("note").verbose_name,
        max_length=PROGRESS_MAX,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Any step counts."),
        error_messages={"required": _("Please write a few words about the step.")},
    )


def first_error(form: forms.Form) -> str:
    for errors in form.errors.values():
        for error in errors:
            return str(error)
    return str(BROKEN_PAGE)
