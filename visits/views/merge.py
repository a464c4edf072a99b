"""Two records of one person (README: "Two records for one person"): a clinician finds the
second record, compares the two and proposes merging it into the first; the site's privacy
officer, never the proposer, approves or declines.

Who: finding, comparing and proposing need clinic.propose_merge (the care team); approving
and declining clinic.approve_merge (the privacy officer); both may read a merge and the list.
Another site's people and merges are not found (404). The comparison shows the records' last
visits (clinical): every page showing it writes an access-log row for each record first.
Names travel only in POST bodies (the search is a POST); URLs carry ids.
"""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from clinic.access import access_log_record
from clinic.models import AccessLog, PersonMerge
from clinic.sites import can, site_permission_required
from visits.forms_merge import MergeDeclineForm, MergeFindForm, MergeProposeForm
from visits.selectors.merge import (
    merge_at_site,
    merge_candidates,
    merge_comparison,
    merge_proposal,
    merges_for_site,
)
from visits.selectors.people import person_at_site
from visits.services.merge import person_merge_approve, person_merge_decline, person_merge_propose

PROPOSE = "clinic.propose_merge"
APPROVE = "clinic.approve_merge"


def _person_or_404(request, pk: int):
    person = person_at_site(site=request.site, pk=pk)
    if person is None:
        raise Http404(_("That person is not known at this site."))
    return person


def _merge_or_404(request, pk: int) -> PersonMerge:
    merge = merge_at_site(site=request.site, pk=pk)
    if merge is None:
        raise Http404(_("There is no such merge at this site."))
    return merge


def _log_both(request, kept, duplicate, merge=None) -> None:
    """Both records were read: one access-log row each (naming the merge, or the other)."""
    for person, other in ((kept, duplicate), (duplicate, kept)):
        access_log_record(
            user=request.user, site=request.site, what=AccessLog.What.MERGE, person=person,
            obj=merge or other,
        )  # fmt: skip


@never_cache
@require_http_methods(["GET", "POST"])
@site_permission_required(PROPOSE)
def merge_find(request, pk: int):
    person = _person_or_404(request, pk)
    if person.merged_into_id is not None:
        return redirect("visits:person", pk=person.pk)
    form = MergeFindForm(request.POST if request.method == "POST" else None)
    found = None
    if form.is_bound and form.is_valid():
        found = merge_candidates(site=request.site, person=person, query=form.cleaned_data["q"])
    context = {"person": person, "form": form, "found": found}
    return render(request, "visits/merge_find.html", context)


@never_cache
@require_http_methods(["GET", "POST"])
@site_permission_required(PROPOSE)
def merge_propose(request, pk: int, other: int):
    kept, duplicate = _person_or_404(request, pk), _person_or_404(request, other)
    comparison = merge_comparison(kept=kept, duplicate=duplicate)
    form = MergeProposeForm(
        request.POST if request.method == "POST" else None, comparison=comparison
    )
    if form.is_bound and form.is_valid():
        try:
            merge = person_merge_propose(
                site=request.site, kept=kept, duplicate=duplicate, by=request.user,
                **form.service_kwargs(),
            )  # fmt: skip
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, _("Sent to the privacy officer to approve."))
            return redirect("visits:merge", pk=merge.pk)
    _log_both(request, kept, duplicate)
    context = {"comparison": comparison, "form": form, "kept": kept, "duplicate": duplicate}
    return render(request, "visits/merge_propose.html", context)


@never_cache
@require_GET
@site_permission_required(PROPOSE, APPROVE)
def merges(request):
    waiting, decided = merges_for_site(site=request.site)
    return render(request, "visits/merges.html", {"waiting": waiting, "decided": decided})


@never_cache
@require_GET
@site_permission_required(PROPOSE, APPROVE)
def merge_detail(request, pk: int):
    merge = _merge_or_404(request, pk)
    _log_both(request, merge.kept, merge.duplicate, merge)
    context = {
        "proposal": merge_proposal(merge=merge),
        "merge": merge,
        "may_decide": merge.status == PersonMerge.Status.PROPOSED
        and merge.proposed_by_id != request.user.pk
        and can(request.user, APPROVE, request.site),
        "decline_form": MergeDeclineForm(),
    }
    return render(request, "visits/merge_detail.html", context)


@require_POST
@site_permission_required(APPROVE)
def merge_approve(request, pk: int):
    merge = _merge_or_404(request, pk)
    try:
        merge = person_merge_approve(merge=merge, by=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect("visits:merge", pk=merge.pk)
    messages.success(
        request, _("The two records are now one: %(name)s.") % {"name": merge.kept.name}
    )
    return redirect("visits:person", pk=merge.kept_id)


@require_POST
@site_permission_required(APPROVE)
def merge_decline(request, pk: int):
    merge = _merge_or_404(request, pk)
    form = MergeDeclineForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(e for errors in form.errors.values() for e in errors))
        return redirect("visits:merge", pk=merge.pk)
    try:
        person_merge_decline(merge=merge, by=request.user, reason=form.cleaned_data["reason"])
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, _("Declined. Both records stay as they are."))
    return redirect("visits:merge", pk=merge.pk)


urlpatterns = [
    path("people/<int:pk>/merge/", merge_find, name="merge_find"),
    path("people/<int:pk>/merge/<int:other>/", merge_propose, name="merge_propose"),
    path("merges/", merges, name="merges"),
    path("merges/<int:pk>/", merge_detail, name="merge"),
    path("merges/<int:pk>/approve/", merge_approve, name="merge_approve"),
    path("merges/<int:pk>/decline/", merge_decline, name="merge_decline"),
]
