from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from clinic.sites import SESSION_SITE_KEY, can, current_site, user_sites


@login_required
def home(request):
    site = current_site(request)
    if can(request.user, "queue.call_arrival", site):
        return redirect("queues:board")
    if can(request.user, "queue.check_in", site):
        return redirect("queues:check_in")
    if can(request.user, "reports.view_reports", site):
        return redirect("reports:dashboard")  # the director's landing: the measures
    if can(request.user, "clinic.view_access_log", site):
        return redirect("visits:access_log")
    return render(request, "home.html", {"site": site})


@require_POST
@login_required
def switch_site(request):
    wanted = request.POST.get("site", "")
    site = user_sites(request.user).filter(slug=wanted).first()
    if site is not None:
        request.session[SESSION_SITE_KEY] = site.pk
    return redirect("home")


@never_cache
@require_GET
def healthz(request):
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return HttpResponse("ok", content_type="text/plain")


@never_cache
@require_GET
def healthz_live(request):
    """The live layer, for monitoring: is the channel layer answering, and how long since a
    live update went out. 503 while it does not answer. Liveness stays /healthz/: a Redis
    outage must not get the web service restarted (pages and check-ins still work)."""
    from queues.health import live_layer_state

    state = live_layer_state()
    return JsonResponse(state, status=200 if state["reachable"] else 503)
