"""The person page, editing a person's details, and the privacy officer's access log and
history of changes.

Who sees what (PRODUCT.md roles):
- front desk: the non-clinical part only (name, pronouns, optional details, what helps, last
  here). It is not a clinical record, so opening it writes no access-log row.
- care team (visits.view_clinical): also goals and the timeline of visits. Every such opening
  writes one access-log row first, in the request's transaction.
- the privacy officer (clinic.view_access_log): the non-clinical part, and the history of
  changes to the person's details and record (clinic/history.py). That is clinical content:
  every opening writes an access-log row first.
- directors: no individual records (403).
- the privacy officer reads the access log. Reading the log is not itself logged: it holds no
  clinical content, and a log of log reads would bury the entries it exists to show. The
  history of changes does hold clinical content: reading it is logged, one row per person.

Two records of one person (visits/views/merge.py): the kept record's page gathers the records
of everyone merged into it (clinic/people.py); a merged record's page says where its records
went and links there, and shows the privacy officer its own history, which stays with it.
"""

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from clinic.access import access_log_record, access_log_record_many
from clinic.forms import NameSearchForm
from clinic.language import language_message
from clinic.models import AccessLog
from clinic.people import with_merged
from clinic.sites import can, site_permission_required, site_perms
from queues.selectors import people_search
from visits.errors import VisitError
from visits.forms_people import AccessLogFilterForm, ChangesFilterForm, PersonDetailsForm
from visits.selectors.goals import person_goals
from visits.selectors.history import changes_page, person_history
from visits.selectors.merge import merge_waiting_for
from visits.selectors.people import (
    access_log_page,
    person_at_site,
    person_overview,
    person_timeline,
)
from visits.services.people import person_update


def _person_or_404(request, pk: int):
    person = person_at_site(site=request.site, pk=pk)
    if person is None:
        raise Http404(_("That person is not known at this site."))
    return person


@never_cache
@require_GET
@site_permission_required("clinic.view_person", "clinic.view_access_log")
def person_detail(request, pk: int):
    person = _person_or_404(request, pk)
    user, site = request.user, request.site
    if person.merged_into_id is not None:
        return _merged_record(request, person)
    ids = with_merged(person)  # their records include those of records merged into theirs
    held = site_perms(user, site)  # one query for the page's questions
    context = {
        "overview": person_overview(person=person, ids=ids),
        "person": person,
        "clinical": "visits.view_clinical" in held,
        "can_edit": "clinic.change_person" in held,
        "can_merge": "clinic.propose_merge" in held,
    }
    if context["clinical"]:
        access_log_record(
            user=user, site=site, person=person, what=AccessLog.What.PERSON, obj=person
        )
        context["goals"] = person_goals(person=person, ids=ids)
        context["visits"] = person_timeline(person=person, ids=ids)
    if context["can_merge"] or "clinic.approve_merge" in held:
        context["merge_waiting"] = merge_waiting_for(person=person)
    if "clinic.view_access_log" in held:
        access_log_record(user=user, site=site, person=person, what=AccessLog.What.HISTORY)
        context["history"] = person_history(person=person, ids=ids)
    return render(request, "visits/person_detail.html", context)


def _merged_record(request, person):
    """A record merged into another: what it was, where its records went, and (for the privacy
    officer) its own history, which stays with it. Nothing clinical is left on it."""
    context = {"person": person, "kept": person.merged_into}
    if can(request.user, "clinic.view_access_log", request.site):
        access_log_record(
            user=request.user, site=request.site, person=person, what=AccessLog.What.HISTORY
        )
        context["history"] = person_history(person=person)
    return render(request, "visits/person_merged.html", context)


@never_cache
@require_http_methods(["GET", "POST"])
@site_permission_required("clinic.change_person")
def person_edit(request, pk: int):
    person = _person_or_404(request, pk)
    if person.merged_into_id is not None:  # its page says where its records are now
        return redirect("visits:person", pk=person.pk)
    form = PersonDetailsForm.for_person(person, request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            person_update(person=person, by=request.user, **form.cleaned_data)
        except VisitError as error:
            form.add_service_error(error)
        else:
            messages.success(request, _("Saved the details for %(name)s.") % {"name": person.name})
            language_message(request, _("what helps"), person.what_helps)
            return redirect("visits:person", pk=person.pk)
    return render(request, "visits/person_edit.html", {"person": person, "form": form})


@never_cache
@require_http_methods(["GET", "POST"])
@site_permission_required("clinic.view_access_log")
def access_log(request):
    """The filters travel as ids and dates in the query string; finding a person by name is
    a POST (a name never travels in a URL), answered with the people found, each a link that
    filters by their id."""
    form = AccessLogFilterForm(request.GET, site=request.site)
    page = None
    if form.is_valid():
        data = form.cleaned_data
        page = access_log_page(
            site=request.site, person=data["person"], user=data["staff"], since=data["since"],
            until=data["until"], page=request.GET.get("page"),
        )  # fmt: skip
    search = NameSearchForm(request.POST if request.method == "POST" else None)
    query = search.query()
    context = {
        "form": form,
        "page": page,
        "search": search,
        "searched": search.is_bound,
        "found": people_search(site=request.site, query=query) if query else [],
    }
    return render(request, "visits/access_log.html", context)


@never_cache
@require_GET
@site_permission_required("clinic.view_access_log")
def changes(request):
    form = ChangesFilterForm(request.GET, site=request.site)
    page = None
    if form.is_valid():
        data = form.cleaned_data
        page = changes_page(
            site=request.site, person=data["person"], user=data["staff"], since=data["since"],
            until=data["until"], page=request.GET.get("page"),
        )  # fmt: skip
        # The history is clinical content: everyone it shows (or was asked about) is logged.
        access_log_record_many(
            user=request.user, site=request.site, what=AccessLog.What.HISTORY,
            people=page.people,
        )  # fmt: skip
    return render(request, "visits/changes.html", {"form": form, "page": page})


urlpatterns = [
    path("people/<int:pk>/", person_detail, name="person"),
    path("people/<int:pk>/edit/", person_edit, name="person_edit"),
    path("privacy/access-log/", access_log, name="access_log"),
    path("privacy/changes/", changes, name="changes"),
]
