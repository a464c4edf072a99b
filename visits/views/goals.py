"""Goals pages: add a goal, change its status, add a step. Each POSTs and goes back.

The forms live in the partials on the visit page (visits/_visit_goals.html) and the person page
(visits/_person_goals.html). Care team only; another site's person is not found here.
"""

from django.contrib import messages
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect
from django.urls import NoReverseMatch, path, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from clinic.language import language_message
from clinic.models import Person
from clinic.sites import site_permission_required
from visits.errors import VisitError
from visits.forms_goals import GoalForm, GoalStatusForm, ProgressForm, first_error
from visits.models import Goal, Visit
from visits.services import drafts as draft_services
from visits.services import goals as services


def back(request, default: str):
    """To the page the form was on (`next`, if it is ours), else to `default`."""
    target = request.POST.get("next") or request.GET.get("next")
    # A path of ours only; redirect() would take anything else for a view's name and fail.
    if (
        target
        and target.startswith("/")
        and url_has_allowed_host_and_scheme(
            target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        )
    ):
        return HttpResponseRedirect(target)
    return redirect(default)


def person_url(person: Person) -> str:
    try:
        return reverse("visits:person", args=[person.pk])
    except NoReverseMatch:  # the person page is another area's; never a 500 for its absence
        return reverse("home")


def _visit(form, person: Person, site) -> Visit | None:
    visit_id = form.cleaned_data.get("visit")
    if not visit_id:
        return None
    visit = Visit.objects.filter(pk=visit_id, site=site, person=person).first()
    if visit is None:
        raise VisitError("wrong_visit", _("That visit is not this person's."))
    return visit


def _saved_draft(request, visit: Visit | None, form: str) -> None:
    """A form on a visit page was saved: its draft there is done with."""
    if visit is not None:
        draft_services.draft_discard(visit=visit, author=request.user, forms=(form,))


@require_POST
@site_permission_required("visits.record_visit")
def goal_add(request, person_id: int):
    person = get_object_or_404(
        Person.objects.current().select_related("site"), pk=person_id, site=request.site
    )
    form = GoalForm(request.POST)
    if not form.is_valid():
        messages.error(request, first_error(form))
        return back(request, person_url(person))
    try:
        visit = _visit(form, person, request.site)
        services.goal_set(
            person=person, words=form.cleaned_data["words"], by=request.user, visit=visit
        )
    except VisitError as error:
        messages.error(request, error.message)
    else:
        # The goal is in their own words: never language-checked (clinic/language.py).
        _saved_draft(request, visit, "goal")
        messages.success(request, _("Goal saved."))
    return back(request, person_url(person))


def _goal(request, pk: int) -> Goal:
    return get_object_or_404(
        Goal.objects.select_related("person__site"), pk=pk, person__site=request.site
    )


@require_POST
@site_permission_required("visits.record_visit")
def goal_status(request, pk: int):
    goal = _goal(request, pk)
    form = GoalStatusForm(request.POST)
    if not form.is_valid():
        messages.error(request, first_error(form))
        return back(request, person_url(goal.person))
    try:
        goal = services.goal_change_status(
            goal=goal, status=form.cleaned_data["status"], by=request.user
        )
    except VisitError as error:
        messages.error(request, error.message)
    else:
        messages.success(
            request, _("Goal marked “%(status)s”.") % {"status": goal.get_status_display()}
        )
    return back(request, person_url(goal.person))


@require_POST
@site_permission_required("visits.record_visit")
def goal_progress(request, pk: int):
    goal = _goal(request, pk)
    form = ProgressForm(request.POST)
    if not form.is_valid():
        messages.error(request, first_error(form))
        return back(request, person_url(goal.person))
    try:
        visit = _visit(form, goal.person, request.site)
        step = services.goal_add_progress(
            goal=goal, note=form.cleaned_data["note"], by=request.user, visit=visit
        )
    except VisitError as error:
        messages.error(request, error.message)
    else:
        _saved_draft(request, visit, f"step-{goal.pk}")
        messages.success(request, _("Step saved."))
        language_message(request, _("progress note"), step.note)
    return back(request, person_url(goal.person))


urlpatterns = [
    path("people/<int:person_id>/goals/new/", goal_add, name="goal_add"),
    path("goals/<int:pk>/status/", goal_status, name="goal_status"),
    path("goals/<int:pk>/progress/", goal_progress, name="goal_progress"),
]
