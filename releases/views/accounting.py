"""Accounting of disclosures for one person: the privacy officer's page (disclosures and,
separately, every attempt that did not release anything) and a printable copy for the person
(disclosures only). Both write an access-log row."""

from django.shortcuts import get_object_or_404, render
from django.urls import path
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from clinic.access import access_log_record
from clinic.models import AccessLog, Person
from releases.accounting import person_accounting
from releases.views.outgoing import officer_required


def _show(request, person_id: int, template: str):
    person = get_object_or_404(Person, pk=person_id, site=request.site)
    access_log_record(
        user=request.user, site=request.site, person=person, what=AccessLog.What.ACCOUNTING
    )
    return render(request, template, {"person": person, **person_accounting(person=person)})


@never_cache
@require_GET
@officer_required
def accounting(request, person_id: int):
    return _show(request, person_id, "releases/accounting.html")


@never_cache
@require_GET
@officer_required
def accounting_print(request, person_id: int):
    return _show(request, person_id, "releases/accounting_print.html")


urlpatterns = [
    path("people/<int:person_id>/accounting/", accounting, name="accounting"),
    path("people/<int:person_id>/accounting/print/", accounting_print, name="accounting_print"),
]
