"""A person's consents: the list, recording one, reading and printing one, its scanned form,
revoking it and recording that its expiry event happened.

Every view that shows a consent writes an access-log row first, in the request's
transaction. There is no edit view: a signed consent is never changed (a correction is a new
consent).
"""

from django.contrib import messages
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from clinic.access import access_log_record, access_log_record_many
from clinic.edge import upload_limit
from clinic.models import AccessLog, Person
from clinic.people import with_merged
from clinic.sites import can, site_permission_required
from releases.errors import ReleaseError
from releases.forms_registry import ConsentForm, ExpiryEventForm, HoldForm, RevocationForm
from releases.models import Consent, Scope
from releases.services.consents import (
    SCAN_REQUEST_MAX_BYTES,
    SCAN_REQUEST_SECONDS,
    STAFF_PERM,
    consent_expiry_event_record,
    consent_hold_place,
    consent_record,
    consent_revoke,
    consent_status,
)
from releases.services.registry import MANAGE
from releases.views.registry import officer_required


def _person_or_404(request, pk: int) -> Person:
    return get_object_or_404(Person, pk=pk, site=request.site)


def _consent_read(request, pk: int) -> Consent:
    """The consent at this site (404 otherwise), with the access-log row written."""
    consent = get_object_or_404(
        Consent.objects.select_related("person", "site", "recorded_by").prefetch_related(
            "recipients", "purposes", "revocations__taken_by", "expiry_events"
        ),
        pk=pk,
        site=request.site,
    )
    access_log_record(
        user=request.user,
        site=request.site,
        person=consent.person,
        what=AccessLog.What.CONSENT,
        obj=consent,
    )
    return consent


def _scope_display(consent: Consent) -> list[str]:
    return [Scope(v).label for v in consent.scope if v in Scope.values]


def _detail(request, consent, *, revoke_form=None, event_form=None, status=200):
    status_now = consent_status(consent)
    # On hold after an oral revocation, what is left to record is the written one.
    initial = {"how": "written"} if status_now == "held" else None
    # Recipients whose category is no longer the one they had at signing: the consent no
    # longer allows releases to them (the gate refuses, "recipient_recategorised").
    signed_as = {row.recipient_id: row for row in consent.recipient_categories.all()}
    recategorised = [
        (r, signed_as.get(r.pk))
        for r in consent.recipients.all()
        if r.pk not in signed_as or signed_as[r.pk].category != r.current_category
    ]
    context = {
        "consent": consent,
        "scope_display": _scope_display(consent),
        "status": status_now,
        "recategorised": recategorised,
        "revoke_form": revoke_form or RevocationForm(initial=initial),
        "event_form": event_form or ExpiryEventForm(),
    }
    return render(request, "releases/consent_detail.html", context, status=status)


@require_GET
@officer_required
def person_consents(request, pk: int):
    person = _person_or_404(request, pk)
    # Consents signed under a record merged into this one stay with that record, and count
    # for this person at the gate: they are listed here too, saying so.
    consents = list(
        Consent.objects.filter(person__in=with_merged(person), site=request.site)
        .select_related("person")
        .prefetch_related("recipients", "purposes", "revocations", "expiry_events")
    )
    rows = [(c, consent_status(c)) for c in consents]
    access_log_record_many(
        user=request.user, site=request.site, what=AccessLog.What.CONSENT,
        people=list({c.person_id: c.person for c in consents}.values()),
    )  # fmt: skip
    return render(request, "releases/person_consents.html", {"person": person, "rows": rows})


@upload_limit(max_bytes=SCAN_REQUEST_MAX_BYTES, seconds=SCAN_REQUEST_SECONDS)
@require_http_methods(["GET", "POST"])
@officer_required
def consent_new(request, pk: int):
    person = _person_or_404(request, pk)
    form = ConsentForm(request.POST or None, request.FILES or None, site=request.site)
    if request.method == "POST" and form.is_valid():
        try:
            consent = consent_record(
                person=person, site=request.site, by=request.user, **form.service_kwargs()
            )
        except ReleaseError as error:
            form.add_service_error(error)
        else:
            messages.success(request, _("The consent is recorded."))
            return redirect("releases:consent", pk=consent.pk)
    status = 400 if form.errors else 200
    return render(
        request, "releases/consent_new.html", {"person": person, "form": form}, status=status
    )


@require_GET
@officer_required
def consent_detail(request, pk: int):
    return _detail(request, _consent_read(request, pk))


@require_GET
@officer_required
def consent_print(request, pk: int):
    consent = _consent_read(request, pk)
    context = {"consent": consent, "scope_display": _scope_display(consent)}
    return render(request, "releases/consent_print.html", context)


@require_GET
@officer_required
def consent_scan(request, pk: int):
    consent = _consent_read(request, pk)
    if not consent.scanned_form:
        raise Http404(_("No scanned form for this consent."))
    response = FileResponse(consent.scanned_form.open("rb"), as_attachment=False)
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "no-store"
    return response


@require_POST
@officer_required
def consent_revoke_view(request, pk: int):
    consent = _consent_read(request, pk)
    form = RevocationForm(request.POST)
    if form.is_valid():
        try:
            revocation = consent_revoke(consent=consent, by=request.user, **form.cleaned_data)
        except ReleaseError as error:
            form.add_service_error(error)
        else:
            if revocation.how == revocation.How.ORAL:
                messages.warning(
                    request,
                    _("On hold: nothing more is released. Record it when it is in writing."),
                )
            else:
                messages.success(request, _("Revoked: nothing more is released under it."))
            return redirect("releases:consent", pk=consent.pk)
    return _detail(request, consent, revoke_form=form, status=400)


@require_POST
@officer_required
def consent_expiry_event_view(request, pk: int):
    consent = _consent_read(request, pk)
    form = ExpiryEventForm(request.POST)
    if form.is_valid():
        try:
            consent_expiry_event_record(consent=consent, by=request.user, **form.cleaned_data)
        except ReleaseError as error:
            form.add_service_error(error)
        else:
            messages.success(request, _("Recorded: the consent has ended."))
            return redirect("releases:consent", pk=consent.pk)
    return _detail(request, consent, event_form=form, status=400)


hold_staff_required = site_permission_required(STAFF_PERM, MANAGE)


@never_cache
@require_http_methods(["GET", "POST"])
@hold_staff_required
def consent_hold(request, pk: int):
    """Any staff member of the site: "they told me they take back their consent". The hold
    covers every consent of the person (front desk does not read consents) and stops every
    release at once; the privacy officer records the written follow-up. The page says the
    same whether or not the person has any consent."""
    person = _person_or_404(request, pk)
    form = HoldForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            consent_hold_place(
                person=person, site=request.site, by=request.user, **form.cleaned_data
            )
        except ReleaseError as error:
            form.add_service_error(error)
        else:
            messages.warning(
                request,
                _(
                    "Recorded. Nothing more about %(name)s is released under any consent until "
                    "the privacy officer has followed up in writing."
                )
                % {"name": person.name},
            )
            if can(request.user, MANAGE, request.site):
                return redirect("releases:person_consents", pk=person.pk)
            return redirect("visits:person", pk=person.pk)
    status = 400 if form.errors else 200
    context = {
        "person": person,
        "form": form,
        "is_officer": can(request.user, MANAGE, request.site),
    }
    return render(request, "releases/consent_hold.html", context, status=status)


urlpatterns = [
    path("people/<int:pk>/consents/hold/", consent_hold, name="consent_hold"),
    path("people/<int:pk>/consents/", person_consents, name="person_consents"),
    path("people/<int:pk>/consents/new/", consent_new, name="consent_new"),
    path("consents/<int:pk>/", consent_detail, name="consent"),
    path("consents/<int:pk>/print/", consent_print, name="consent_print"),
    path("consents/<int:pk>/scan/", consent_scan, name="consent_scan"),
    path("consents/<int:pk>/revoke/", consent_revoke_view, name="consent_revoke"),
    path("consents/<int:pk>/expiry-event/", consent_expiry_event_view, name="consent_expiry_event"),
]
