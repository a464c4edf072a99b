"""The visit record: the page, edits while open, medication events, addenda once closed,
drafts of what is typed into them, and direct visits (outreach, quick contacts)."""

from django.contrib import messages
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from clinic.access import access_log_record
from clinic.forms import NameSearchForm
from clinic.language import language_check
from clinic.models import AccessLog, Person
from clinic.sites import can, site_permission_required
from queues.models import Arrival
from queues.selectors import people_search
from visits.errors import VisitError
from visits.forms_visit import AddendumForm, DirectVisitForm, MedicationForm, VisitEditForm
from visits.models import Visit
from visits.selectors.visit import visit_for_site, visit_page
from visits.services import drafts as draft_services
from visits.services import visits as services
from visits.services.tox import tox_log_shown

# Refusals about the visit as a whole: said at the top of the page, not inside a form.
PAGE_ERRORS = {"visit_closed", "not_participant", "visit_still_open"}
# Where on the page each form lives.
ANCHORS = {"edit_form": "record", "medication_form": "medications", "addendum_form": "addenda"}
# Where a refused direct visit's message goes, so it sits next to what to change.
DIRECT_ERROR_FIELDS = {
    "ends_before_start": "ended_at",
    "ends_in_future": "ended_at",
    "starts_in_future": "started_at",
    "before_first_day": "started_at",
    "unknown_person": "person",
    "unknown_service": "services",
}


def _visit(request, pk: int) -> Visit:
    visit = visit_for_site(site=request.site, pk=pk)
    if visit is None:
        raise Http404
    return visit


def _page(request, visit: Visit, **forms):
    """Show the visit; every showing is written to the access log."""
    access_log_record(
        user=request.user,
        site=request.site,
        person=visit.person,
        what=AccessLog.What.VISIT,
        obj=visit,
    )
    context = visit_page(visit=visit, user=request.user)
    # Tox conversations shown inside the visit are clinical reads of their own.
    tox_log_shown(user=request.user, visit=visit, screens=context["tox_screens"])
    records = can(request.user, "visits.record_visit", request.site)
    editable = records and visit.is_open and context["is_participant"]
    drafts = draft_services.drafts_for(visit=visit, author=request.user) if records else {}
    # A refused form can sit far down the page: say so at the top, with a link to it.
    context.update(
        problem_anchor=next((ANCHORS[name] for name, f in forms.items() if f.errors), None),
        can_record=records,
        edit_form=forms.get("edit_form")
        or (VisitEditForm(visit=visit, draft=drafts.get("record")) if editable else None),
        medication_form=forms.get("medication_form")
        or MedicationForm(initial=_single(drafts.get("medication", {}))),
        addendum_form=forms.get("addendum_form") or _addendum_form(visit, drafts),
        drafts={form: _single(data) for form, data in drafts.items()},
        drafts_restored=bool(drafts) and not forms,
    )
    for goal in context["goals"]:
        goal.draft_step = context["drafts"].get(f"step-{goal.pk}", {}).get("note", "")
    return render(request, "visits/visit_detail.html", context)


def _single(data: dict[str, list[str]]) -> dict[str, str]:
    """A draft's fields as a form's initial values: one value each (the last typed)."""
    return {name: values[-1] for name, values in data.items() if values}


def _addendum_form(visit: Visit, drafts: dict) -> AddendumForm:
    """Once the visit has ended, whatever its author had typed and not saved is offered here."""
    if visit.is_open or not drafts:
        return AddendumForm()
    return AddendumForm(initial={"text": draft_services.drafts_as_addendum(drafts)})


def _refused(request, visit: Visit, error: VisitError, form, form_name: str):
    if error.code in PAGE_ERRORS:
        messages.warning(request, error.message)
        return redirect("visits:visit", visit.pk)
    form.add_error(None, error.message)
    return _page(request, visit, **{form_name: form})


def _saved(request, text: str, saved: str) -> None:
    if language_check(text):
        saved = _("%(saved)s Some words may read as stigmatising: suggestions are shown below.") % {
            "saved": saved
        }
    messages.success(request, saved)


@never_cache
@require_GET
@site_permission_required("visits.view_clinical")
def visit_detail(request, pk: int):
    return _page(request, _visit(request, pk))


@require_POST
@site_permission_required("visits.record_visit")
def visit_edit(request, pk: int):
    visit = _visit(request, pk)
    form = VisitEditForm(request.POST, visit=visit)
    if not form.is_valid():
        return _page(request, visit, edit_form=form)
    data, end = form.cleaned_data, request.POST.get("end") == "1"
    try:
        services.visit_update(
            visit=visit,
            by=request.user,
            base=data["base"] or None,
            services=data["services"],
            priorities=data["priorities"],
            note=data["note"],
            end=end,
        )
    except VisitError as error:
        return _edit_refused(request, visit, error, form)
    draft_services.draft_discard(visit=visit, author=request.user, forms=("record",))
    _saved(request, data["note"], _("Visit ended and saved.") if end else _("Saved."))
    return redirect("visits:visit", visit.pk)


def _edit_refused(request, visit: Visit, error: VisitError, form: VisitEditForm):
    """Nothing was saved; whatever they typed is kept on the page, never silently dropped."""
    note = form.cleaned_data["note"]
    if error.code == "visit_closed" and note and note != visit.note:
        # Ended meanwhile (another screen, or Done on the board): offer it as an addendum.
        messages.warning(request, error.message)
        messages.info(request, _("Your note is in the addendum box below, ready to save."))
        return _page(request, visit, addendum_form=AddendumForm(initial={"text": note}))
    if error.code == "changed_elsewhere":
        # Their text again, made from the version just saved, so the next save works.
        fresh = request.POST.copy()
        fresh["base"] = services.visit_fingerprint(visit)
        form = VisitEditForm(fresh, visit=visit)
        form.is_valid()
    return _refused(request, visit, error, form, "edit_form")


@require_POST
@site_permission_required("visits.record_visit")
def visit_join(request, pk: int):
    visit = _visit(request, pk)
    try:
        services.visit_join(visit=visit, by=request.user)
    except VisitError as error:
        messages.warning(request, error.message)
    else:
        messages.success(request, _("You joined this visit."))
    return redirect("visits:visit", visit.pk)


@require_POST
@site_permission_required("visits.record_visit")
def medication_add(request, pk: int):
    visit = _visit(request, pk)
    form = MedicationForm(request.POST)
    if not form.is_valid():
        return _page(request, visit, medication_form=form)
    try:
        services.visit_add_medication(visit=visit, by=request.user, **form.cleaned_data)
    except VisitError as error:
        return _refused(request, visit, error, form, "medication_form")
    draft_services.draft_discard(visit=visit, author=request.user, forms=("medication",))
    messages.success(request, _("Medication recorded."))
    return redirect(f"{visit_url(visit)}#medications")


@require_POST
@site_permission_required("visits.record_visit")
def addendum_add(request, pk: int):
    visit = _visit(request, pk)
    form = AddendumForm(request.POST)
    if not form.is_valid():
        return _page(request, visit, addendum_form=form)
    try:
        services.visit_add_addendum(visit=visit, by=request.user, text=form.cleaned_data["text"])
    except VisitError as error:
        return _refused(request, visit, error, form, "addendum_form")
    # The addendum carried every draft of the ended visit (see _addendum_form).
    draft_services.draft_discard(visit=visit, author=request.user)
    _saved(request, form.cleaned_data["text"], _("Addendum saved."))
    return redirect(f"{visit_url(visit)}#addenda")


@require_POST
@site_permission_required("visits.record_visit")
def draft_save(request, pk: int):
    """What the author has typed into one form of the page and not saved yet (drafts.js).
    Form-encoded: `form` names the form, the rest are its fields."""
    visit = _visit(request, pk)
    data = {name: request.POST.getlist(name) for name in request.POST if name != "form"}
    try:
        draft_services.draft_save(
            visit=visit, author=request.user, form=request.POST.get("form", ""), data=data
        )
    except VisitError as error:
        return JsonResponse({"saved": False, "error": error.message}, status=400)
    return JsonResponse({"saved": True})


@never_cache
@site_permission_required("visits.record_visit")
def visit_new(request):
    site = request.site
    # "Find" is a POST too, so a name never travels in a URL; it saves nothing.
    finding = request.method == "POST" and "find" in request.POST
    form = DirectVisitForm(None if finding else (request.POST or None), site=site)
    if request.method == "POST" and not finding and form.is_valid():
        try:
            visit = services.visit_open_direct(site=site, by=request.user, **form.cleaned_data)
        except VisitError as error:
            form.add_error(DIRECT_ERROR_FIELDS.get(error.code), error.message)
        else:
            messages.success(
                request,
                _("Visit recorded.") if visit.is_open else _("Contact recorded; it has ended."),
            )
            return redirect("visits:visit", visit.pk)
    # The search shown again with the form, so the people found stay to choose from.
    query = NameSearchForm(request.POST if request.method == "POST" else None).query()
    chosen = request.POST.get("person") or request.GET.get("person") or ""
    picked = (
        Person.objects.current().filter(pk=int(chosen), site=site).first()
        if chosen.isascii() and chosen.isdigit()
        else None
    )
    people = people_search(site=site, query=query)
    if picked is not None and picked not in people:
        people.insert(0, picked)
    return render(
        request,
        "visits/visit_new.html",
        {"form": form, "query": query, "people": people, "picked": picked},
    )


@require_GET
@site_permission_required("visits.view_clinical")
def visit_for_arrival(request, pk: int):
    """The board links rows by arrival; this finds the visit that arrival opened."""
    arrival = get_object_or_404(Arrival, pk=pk, site=request.site)
    visit = Visit.objects.filter(arrival=arrival).only("pk").first()
    if visit is None:
        raise Http404
    return redirect("visits:visit", visit.pk)


def visit_url(visit: Visit) -> str:
    return reverse("visits:visit", args=[visit.pk])


urlpatterns = [
    path("visits/new/", visit_new, name="visit_new"),
    path("visits/<int:pk>/", visit_detail, name="visit"),
    path("visits/<int:pk>/save/", visit_edit, name="visit_edit"),
    path("visits/<int:pk>/join/", visit_join, name="visit_join"),
    path("visits/<int:pk>/medications/", medication_add, name="medication_add"),
    path("visits/<int:pk>/addenda/", addendum_add, name="addendum_add"),
    path("visits/<int:pk>/draft/", draft_save, name="draft_save"),
    path("visits/from-arrival/<int:pk>/", visit_for_arrival, name="visit_for_arrival"),
]
