"""Requests from outside: logging one, reading it, and the neutral reply.

The neutral reply is rendered from nothing but the kind of request, who sent it, the date it
came in and the site's name: never the person it is about, so it reads the same whether or not
anyone by that name is or was a patient.
"""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from clinic.access import access_log_record
from clinic.models import AccessLog
from releases.errors import ReleaseError
from releases.forms_registry import IncomingForm
from releases.models import IncomingRequest
from releases.services.incoming import incoming_log
from releases.views.registry import officer_required


def _incoming_or_404(request, pk: int) -> IncomingRequest:
    return get_object_or_404(
        IncomingRequest.objects.select_related("from_recipient", "logged_by", "site"),
        pk=pk,
        site=request.site,
    )


@require_GET
@officer_required
def incoming_list(request):
    incoming = IncomingRequest.objects.filter(site=request.site).order_by(
        "-escalated", "-received_at"
    )
    return render(request, "releases/incoming_list.html", {"incoming": incoming})


@require_http_methods(["GET", "POST"])
@officer_required
def incoming_new(request):
    form = IncomingForm(request.POST or None, site=request.site)
    if request.method == "POST" and form.is_valid():
        try:
            incoming = incoming_log(site=request.site, by=request.user, **form.cleaned_data)
        except ReleaseError as error:
            form.add_service_error(error)
        else:
            messages.success(request, _("Logged. Nothing was released. Send the neutral reply."))
            return redirect("releases:incoming", pk=incoming.pk)
    status = 400 if form.errors else 200
    return render(request, "releases/incoming_new.html", {"form": form}, status=status)


@require_GET
@officer_required
def incoming_detail(request, pk: int):
    incoming = _incoming_or_404(request, pk)
    access_log_record(
        user=request.user,
        site=request.site,
        person=incoming.person,
        what=AccessLog.What.INCOMING,
        obj=incoming,
    )
    return render(request, "releases/incoming_detail.html", {"incoming": incoming})


def neutral_reply_context(incoming: IncomingRequest) -> dict:
    """Everything the reply may say. Nothing about the person the request is about."""
    return {
        "site_name": incoming.site.name,
        "addressee": incoming.from_text,
        "kind": incoming.get_kind_display(),
        "received_on": timezone.localdate(incoming.received_at, incoming.site.tz),
        "today": timezone.localdate(timezone.now(), incoming.site.tz),
    }


@require_GET
@officer_required
def incoming_reply(request, pk: int):
    incoming = _incoming_or_404(request, pk)
    return render(request, "releases/neutral_reply.html", neutral_reply_context(incoming))


urlpatterns = [
    path("incoming/", incoming_list, name="incoming_list"),
    path("incoming/new/", incoming_new, name="incoming_new"),
    path("incoming/<int:pk>/", incoming_detail, name="incoming"),
    path("incoming/<int:pk>/reply/", incoming_reply, name="incoming_reply"),
]
