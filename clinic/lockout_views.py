"""The lockout log, for the privacy officer (a director unlocks on the staff page)."""

from django.core.paginator import Paginator
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from clinic.sites import site_permission_required
from clinic.throttling import lockouts_for


@never_cache
@require_GET
@site_permission_required("clinic.view_access_log")
def lockout_log(request):
    page = Paginator(lockouts_for(request.site), 100).get_page(request.GET.get("page"))
    return render(request, "clinic/lockouts.html", {"page": page})
