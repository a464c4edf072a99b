"""The privacy officer's home and the recipient registry.

Only the site's privacy officer (releases.manage_releases through a role, at this site) may
open these pages: everyone else gets 403, a superuser as such included; a recipient of another
site is 404.
"""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from clinic.models import Person
from clinic.sites import site_permission_required
from releases.accounting import emergencies_awaiting_review, review_hours
from releases.errors import ReleaseError
from releases.forms_registry import (
    DeactivateForm,
    PersonSearchForm,
    RecategoriseForm,
    RecipientForm,
)
from releases.models import (
    Consent,
    IncomingRequest,
    Recipient,
    RecipientCategoryChange,
    RecipientStatusChange,
)
from releases.services.registry import (
    MANAGE,
    consents_in_force_for,
    recipient_add,
    recipient_deactivate,
    recipient_recategorise,
)


def officer_required(view):
    """The privacy officer of the current site, by role (no superuser shortcut); never cached."""
    return site_permission_required(MANAGE)(never_cache(view))


def recipient_or_404(request, pk: int) -> Recipient:
    return get_object_or_404(Recipient, pk=pk, site=request.site)


@require_http_methods(["GET", "POST"])
@officer_required
def home(request):
    # The search is a POST, so a name never travels in a URL; it changes nothing.
    search = PersonSearchForm(request.POST if request.method == "POST" else None)
    people = []
    if search.is_valid() and search.cleaned_data["q"].strip():
        # Merged records too, pointing at the record they were merged into: a request from
        # outside may name the person as that record did.
        people = Person.objects.filter(
            site=request.site, name__icontains=search.cleaned_data["q"].strip()
        ).select_related("merged_into")[:20]
    incoming = IncomingRequest.objects.filter(site=request.site).order_by("-received_at")
    emergencies = emergencies_awaiting_review(site=request.site)
    context = {
        "search": search,
        "people": people,
        # Escalated requests (court orders, warrants) are shown first, on their own.
        "escalated": incoming.filter(escalated=True)[:20],
        "incoming": incoming.order_by("-escalated", "-received_at")[:20],
        "consents": Consent.objects.filter(site=request.site)
        .select_related("person")
        .order_by("-recorded_at")[:10],
        "recipients": Recipient.objects.filter(site=request.site, is_active=True),
        "emergencies": emergencies,
        "emergencies_overdue": any(s.overdue for s in emergencies),
        "review_hours": review_hours(),
    }
    return render(request, "releases/home.html", context)


@require_GET
@officer_required
def recipient_list(request):
    recipients = Recipient.objects.filter(site=request.site).order_by("-is_active", "organisation")
    return render(request, "releases/recipients.html", {"recipients": recipients})


@require_http_methods(["GET", "POST"])
@officer_required
def recipient_new(request):
    form = RecipientForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            recipient = recipient_add(site=request.site, by=request.user, **form.cleaned_data)
        except ReleaseError as error:
            form.add_service_error(error)
        else:
            messages.success(request, _("Added %(name)s to the registry.") % {"name": recipient})
            return redirect("releases:recipient", pk=recipient.pk)
    return render(request, "releases/recipient_new.html", {"form": form})


@require_GET
@officer_required
def recipient_detail(request, pk: int):
    return _recipient_page(request, recipient_or_404(request, pk))


def _recipient_page(request, recipient, *, form=None, status_form=None, status=200):
    context = {
        "recipient": recipient,
        "changes": RecipientCategoryChange.objects.filter(recipient=recipient)
        .select_related("by")
        .order_by("at", "pk"),
        "status_changes": RecipientStatusChange.objects.filter(recipient=recipient)
        .select_related("by")
        .order_by("at", "pk"),
        "consents_in_force": len(consents_in_force_for(recipient)),
        "form": form or RecategoriseForm(),
        "status_form": status_form or DeactivateForm(),
    }
    return render(request, "releases/recipient_detail.html", context, status=status)


@require_POST
@officer_required
def recipient_deactivate_view(request, pk: int):
    recipient = recipient_or_404(request, pk)
    form = DeactivateForm(request.POST)
    if form.is_valid():
        try:
            recipient_deactivate(recipient=recipient, by=request.user, **form.cleaned_data)
        except ReleaseError as error:
            form.add_service_error(error)
        else:
            messages.success(request, _("%(name)s is out of use.") % {"name": recipient})
            return redirect("releases:recipient", pk=recipient.pk)
    return _recipient_page(request, recipient, status_form=form, status=400)


@require_POST
@officer_required
def recipient_recategorise_view(request, pk: int):
    recipient = recipient_or_404(request, pk)
    form = RecategoriseForm(request.POST)
    if form.is_valid():
        try:
            change = recipient_recategorise(
                recipient=recipient, by=request.user, **form.cleaned_data
            )
        except ReleaseError as error:
            form.add_service_error(error)
        else:
            messages.success(request, _("The category change is recorded."))
            if change.consents_ended:
                messages.warning(
                    request,
                    ngettext(
                        "%(n)d consent in force named this recipient as %(old)s: it no longer "
                        "allows releases to it. The person must sign a new consent.",
                        "%(n)d consents in force named this recipient as %(old)s: they no "
                        "longer allow releases to it. The people must sign new consents.",
                        change.consents_ended,
                    )
                    % {"n": change.consents_ended, "old": change.get_from_category_display()},
                )
            return redirect("releases:recipient", pk=recipient.pk)
    return _recipient_page(request, recipient, form=form, status=400)


urlpatterns = [
    path("", home, name="home"),
    path("recipients/", recipient_list, name="recipients"),
    path("recipients/new/", recipient_new, name="recipient_new"),
    path("recipients/<int:pk>/", recipient_detail, name="recipient"),
    path("recipients/<int:pk>/deactivate/", recipient_deactivate_view, name="recipient_deactivate"),
    path(
        "recipients/<int:pk>/recategorise/",
        recipient_recategorise_view,
        name="recipient_recategorise",
    ),
]
