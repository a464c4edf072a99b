"""The lockout log for the privacy officer, and a director's unlock."""

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from clinic.sites import site_permission_required
from clinic.throttling import UNLOCK_PERM, account_unlock, lockouts_for


@never_cache
@require_GET
@site_permission_required("clinic.view_access_log")
def lockout_log(request):
    page = Paginator(lockouts_for(request.site), 100).get_page(request.GET.get("page"))
    return render(request, "clinic/lockouts.html", {"page": page})


@require_POST
@site_permission_required(UNLOCK_PERM)
def unlock(request, user_id: int):
    user = get_object_or_404(
        get_user_model(), pk=user_id, memberships__site=request.site, is_superuser=False
    )
    try:
        account_unlock(user=user, by=request.user, site=request.site)
    except ValidationError as error:
        messages.error(request, error.messages[0])
    else:
        messages.success(
            request, _("%(name)s can sign in again.") % {"name": user.get_full_name() or user}
        )
    return redirect("staff")
