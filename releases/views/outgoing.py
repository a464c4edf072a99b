"""Outgoing releases: asking, approving, preparing, viewing, handing over, emergencies.

Who may: care-team staff (releases.request_release) and the privacy officer
(releases.manage_releases) of the site, by role membership — never a superuser by virtue of
being one. The list of all requests is the privacy officer's. Every page that shows a release
or packet writes an access-log row; every showing of a packet goes through the gate
(releases.services.outgoing.packet_open), which writes the disclosure log.
"""

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from clinic.access import access_log_record
from clinic.models import AccessLog, Person
from clinic.sites import can, site_permission_required
from releases.accounting import emergencies_to_review, path_label, review_hours, review_status
from releases.errors import ReleaseError
from releases.forms_outgoing import (
    EmergencyReleaseForm,
    EmergencyReviewForm,
    HandOverForm,
    ReleaseRequestForm,
)
from releases.models import EmergencyRelease, ReleasePacket, ReleaseRequest
from releases.packets import packet_sha256, scope_labels
from releases.services import outgoing as services

staff_required = site_permission_required(services.REQUEST, services.MANAGE)
officer_required = site_permission_required(services.MANAGE)
REPORTS = "reports.view_reports"  # the director's


def _log(request, *, person, obj, what=AccessLog.What.RELEASE) -> None:
    access_log_record(user=request.user, site=request.site, person=person, what=what, obj=obj)


def _person(request, person_id: int) -> Person:
    return get_object_or_404(Person, pk=person_id, site=request.site)


def _release_request(request, pk: int) -> ReleaseRequest:
    return get_object_or_404(
        ReleaseRequest.objects.select_related("person", "recipient", "requested_by", "site"),
        pk=pk,
        site=request.site,
    )


def _packet(request, pk: int) -> ReleasePacket:
    return get_object_or_404(
        ReleasePacket.objects.select_related("request__person", "request__site"),
        pk=pk,
        request__site=request.site,
    )


def _covered(form, person) -> bool:
    """True when a current consent covers everything asked for; otherwise the form says what
    is not covered, and nothing is saved."""
    data = form.cleaned_data
    reason, uncovered = services.request_coverage(
        person=person, recipient=data["recipient"], purpose=data["purpose"], scope=data["scope"]
    )
    if reason or uncovered:
        form.add_coverage_problem(services.reason_text(reason) if reason else "", uncovered)
        return False
    return True


@never_cache
@require_http_methods(["GET", "POST"])
@staff_required
def outgoing_new(request, person_id: int):
    person = _person(request, person_id)
    form = ReleaseRequestForm(request.POST or None, site=request.site)
    if request.method == "POST" and form.is_valid() and _covered(form, person):
        try:
            made = services.release_request_create(
                site=request.site, person=person, by=request.user, **form.cleaned_data
            )
        except ReleaseError as error:
            form.add_service_error(error)
        else:
            messages.success(request, _("The request was saved. Nothing has been released yet."))
            return redirect("releases:outgoing_detail", pk=made.pk)
    return render(request, "releases/outgoing_new.html", {"person": person, "form": form})


@never_cache
@require_GET
@staff_required
def outgoing_detail(request, pk: int):
    release = _release_request(request, pk)
    _log(request, person=release.person, obj=release)
    log = list(release.log.select_related("asked_by").order_by("-at", "-pk")[:20])
    for row in log:
        row.reason_text = services.reason_text(row.reason)
        row.path_text = path_label(row.path)
    packets = list(
        release.packets.select_related("generated_by", "handed_over_by", "hand_over__by").order_by(
            "-generated_at", "-pk"
        )
    )
    for packet in packets:
        packet.void_text = services.reason_text(packet.void_reason) if packet.voided_at else ""
    context = {
        "release": release,
        "scope_labels": scope_labels(release.scope),
        "approvals": release.approvals.select_related("by").order_by("at", "pk"),
        "packets": packets,
        "log": log,
        "is_officer": can(request.user, services.MANAGE, request.site),
        "criminal_legal": release.recipient.is_criminal_legal,
        "approved_by_me": release.approvals.filter(by=request.user).exists(),
        "asked_by_me": release.requested_by_id == request.user.pk,
    }
    return render(request, "releases/outgoing_detail.html", context)


def _done(request, pk: int, action, success: str):
    try:
        action()
    except ReleaseError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, success)
    return redirect("releases:outgoing_detail", pk=pk)


@require_POST
@staff_required
def outgoing_approve(request, pk: int):
    release = _release_request(request, pk)
    return _done(
        request,
        pk,
        lambda: services.release_approve(request=release, by=request.user),
        _("Your approval was recorded."),
    )


@require_POST
@staff_required
def outgoing_generate(request, pk: int):
    release = _release_request(request, pk)
    return _done(
        request,
        pk,
        lambda: services.packet_generate(request=release, by=request.user),
        _("The packet was prepared. It has not left the clinic yet."),
    )


@never_cache
@require_http_methods(["GET", "POST"])
@staff_required
def packet_hand_over(request, pk: int):
    """A confirmation first (what leaves, to whom), with how it is delivered and to whom;
    the hand-over happens only on that form's POST, decided again by the gate then."""
    packet = _packet(request, pk)
    release = packet.request
    if packet.voided_at or packet.handed_over_at:
        return redirect("releases:outgoing_detail", pk=release.pk)
    form = HandOverForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.packet_hand_over(packet=packet, by=request.user, **form.cleaned_data)
        except ReleaseError as error:
            if error.code not in HandOverForm.ERROR_FIELDS:
                messages.error(request, error.message)
                return redirect("releases:outgoing_detail", pk=release.pk)
            form.add_service_error(error)
        else:
            messages.success(request, _("Recorded as handed over."))
            return redirect("releases:outgoing_detail", pk=release.pk)
    _log(request, person=release.person, obj=release)
    context = {
        "packet": packet,
        "release": release,
        "scope_labels": scope_labels(release.scope),
        "form": form,
    }
    return render(request, "releases/packet_hand_over.html", context)


def _open(request, pk: int, path_name: str):
    """The packet and its document (HTML or PDF), as the gate allows now; (None, None) and a
    message when it does not."""
    packet = _packet(request, pk)
    _log(request, person=packet.request.person, obj=packet, what=AccessLog.What.PACKET)
    try:
        return services.packet_open(packet=packet, by=request.user, path=path_name)
    except ReleaseError as error:
        messages.error(request, error.message)
        return None, None


@never_cache
@require_GET
@staff_required
def packet_view(request, pk: int):
    packet, document = _open(request, pk, "packet_view")
    if packet is None:
        return redirect("releases:outgoing_detail", pk=_packet(request, pk).request_id)
    return render(request, "releases/packet.html", {"packet": packet, "document": document})


@never_cache
@require_GET
@staff_required
def packet_pdf(request, pk: int):
    packet, document = _open(request, pk, "packet_pdf")
    if packet is None:
        return redirect("releases:outgoing_detail", pk=_packet(request, pk).request_id)
    response = HttpResponse(document, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="release-packet-{packet.pk}.pdf"'
    return response


@never_cache
@require_GET
@officer_required
def outgoing_list(request):
    releases = (
        ReleaseRequest.objects.filter(site=request.site)
        .select_related("person", "recipient", "requested_by")
        .prefetch_related("approvals", "packets")
        .order_by("-requested_at", "-pk")[:200]
    )
    now = timezone.now()
    emergencies = [review_status(e, now=now) for e in emergencies_to_review(site=request.site)[:50]]
    return render(
        request,
        "releases/outgoing_list.html",
        {"releases": releases, "emergencies": emergencies},
    )


@never_cache
@require_http_methods(["GET", "POST"])
@staff_required
def outgoing_emergency(request, person_id: int):
    person = _person(request, person_id)
    form = EmergencyReleaseForm(request.POST or None, site=request.site)
    if request.method == "POST" and form.is_valid():
        try:
            released = services.emergency_release(
                site=request.site, person=person, by=request.user, **form.cleaned_data
            )
        except ReleaseError as error:
            form.add_error(None, error.message)
        else:
            _log(request, person=person, obj=released, what=AccessLog.What.EMERGENCY)
            return render(
                request,
                "releases/outgoing_emergency_done.html",
                {"person": person, "released": released},
            )
    return render(request, "releases/outgoing_emergency.html", {"person": person, "form": form})


def _emergency(request, pk: int) -> EmergencyRelease:
    return get_object_or_404(
        EmergencyRelease.objects.select_related(
            "person", "recipient", "released_by", "log", "site", "review__by"
        ),
        pk=pk,
        site=request.site,
    )


def _emergency_page(request, released, *, form=None, status=200):
    context = {
        "released": released,
        "scope_labels": scope_labels(released.scope),
        "hash_ok": packet_sha256(released.html) == released.sha256,
        "review": review_status(released),
        "may_review": services.may_review_emergency(request.user, released),
        "form": form or EmergencyReviewForm(),
    }
    return render(request, "releases/emergency_detail.html", context, status=status)


@never_cache
@require_GET
@officer_required
def emergency_detail(request, pk: int):
    """The stored record of a medical emergency release, for the privacy officer's review:
    who, when, to whom, the nature of the emergency and exactly what was sent (the stored
    document, its manifest and hash), and the review (or its form, and when it is due).
    Shown inside the clinic; writes the access log."""
    released = _emergency(request, pk)
    _log(request, person=released.person, obj=released, what=AccessLog.What.EMERGENCY)
    return _emergency_page(request, released)


@require_POST
@officer_required
def emergency_review(request, pk: int):
    """Record the review (the site's privacy officer, not the one who released it)."""
    released = _emergency(request, pk)
    form = EmergencyReviewForm(request.POST)
    if form.is_valid():
        try:
            services.emergency_review_record(
                emergency=released, by=request.user, **form.cleaned_data
            )
        except ReleaseError as error:
            if error.code in ("own_release", "already_reviewed", "not_privacy_officer"):
                messages.error(request, error.message)
                return redirect("releases:emergency_detail", pk=released.pk)
            form.add_service_error(error)
        else:
            messages.success(request, _("The review is recorded."))
            return redirect("releases:emergency_detail", pk=released.pk)
    return _emergency_page(request, released, form=form, status=400)


@never_cache
@require_GET
@site_permission_required(services.MANAGE, REPORTS)
def emergency_reviews(request):
    """Emergency releases and their reviews, overdue ones first: the privacy officer's list
    and the director's oversight. The director sees no names or reasons: the release number,
    when, where it went, who released it and the review's state."""
    now = timezone.now()
    statuses = [review_status(e, now=now) for e in emergencies_to_review(site=request.site)]
    statuses.sort(key=lambda s: (s.review is not None, not s.overdue, s.emergency.released_at))
    context = {
        "statuses": statuses[:200],
        "overdue": sum(1 for s in statuses if s.overdue),
        "awaiting": sum(1 for s in statuses if s.review is None),
        "is_officer": can(request.user, services.MANAGE, request.site),
        "hours": review_hours(),
    }
    return render(request, "releases/emergency_reviews.html", context)


urlpatterns = [
    path("people/<int:person_id>/release/new/", outgoing_new, name="outgoing_new"),
    path("people/<int:person_id>/emergency/", outgoing_emergency, name="outgoing_emergency"),
    path("emergencies/", emergency_reviews, name="emergency_reviews"),
    path("emergencies/<int:pk>/", emergency_detail, name="emergency_detail"),
    path("emergencies/<int:pk>/review/", emergency_review, name="emergency_review"),
    path("releases/", outgoing_list, name="outgoing_list"),
    path("releases/<int:pk>/", outgoing_detail, name="outgoing_detail"),
    path("releases/<int:pk>/approve/", outgoing_approve, name="outgoing_approve"),
    path("releases/<int:pk>/packet/", outgoing_generate, name="outgoing_generate"),
    path("packets/<int:pk>/", packet_view, name="packet_view"),
    path("packets/<int:pk>/pdf/", packet_pdf, name="packet_pdf"),
    path("packets/<int:pk>/hand-over/", packet_hand_over, name="packet_hand_over"),
]
