"""Tox-screen conversations: the form inside a visit, and one record's page.

Care team only (visits.view_clinical to read, visits.record_visit to write); never the front
desk, never a director or privacy officer individually. Every showing writes an access-log row.
"""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache

from clinic.language import highlight, language_message
from clinic.sites import site_permission_required
from visits.errors import VisitError
from visits.forms_tox import ToxScreenForm
from visits.models import ToxScreen, Visit
from visits.services.tox import tox_log_shown, tox_screen_record

POLICY = _(
    "The result does not change a prescription, a place in line or access to care. "
    "It is here to start a conversation."
)


@never_cache
@site_permission_required("visits.record_visit")
def tox_new(request, visit_id: int):
    visit = get_object_or_404(
        Visit.objects.select_related("person", "site"), pk=visit_id, site=request.site
    )
    if request.method == "POST":
        form = ToxScreenForm(request.POST)
        if visit.is_open and form.is_valid():
            try:
                screen = tox_screen_record(
                    visit=visit,
                    by=request.user,
                    specimen=form.cleaned_data["specimen"],
                    collected_on=form.cleaned_data["collected_on"],
                    results=form.results(),
                    own_account=form.cleaned_data["own_account"],
                    decision=form.cleaned_data["decision"],
                    note=form.cleaned_data["note"],
                    talked=form.talked(),
                )
            except VisitError as error:
                form.add_error(None, error.message)
            else:
                messages.success(request, _("Tox-screen conversation saved."))
                language_message(request, _("note"), screen.note)
                language_message(request, _("what they decided"), screen.decision)
                return redirect("visits:tox_detail", pk=screen.pk)
    else:
        form = ToxScreenForm(
            initial={"collected_on": timezone.localdate(visit.started_at, visit.site.tz)}
        )
    return render(request, "visits/tox_form.html", {"form": form, "visit": visit, "policy": POLICY})


@never_cache
@site_permission_required("visits.view_clinical")
def tox_detail(request, pk: int):
    screen = get_object_or_404(
        ToxScreen.objects.select_related(
            "visit__person", "visit__site", "recorded_by"
        ).prefetch_related("results"),
        pk=pk,
        visit__site=request.site,
    )
    tox_log_shown(user=request.user, visit=screen.visit, screens=[screen])
    return render(
        request,
        "visits/tox_detail.html",
        {
            "screen": screen,
            "visit": screen.visit,
            "note_marked": highlight(screen.note),
            "decision_marked": highlight(screen.decision),
            "policy": POLICY,
        },
    )


urlpatterns = [
    path("visits/<int:visit_id>/tox/new/", tox_new, name="tox_new"),
    path("visits/tox/<int:pk>/", tox_detail, name="tox_detail"),
]
