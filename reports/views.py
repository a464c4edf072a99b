"""The director's dashboard, its CSV downloads, and the care team's outreach list.

Who sees what (PRODUCT.md roles):
- directors (reports.view_reports at the current site): aggregates only, for any site where
  they hold the role, or all of those together. Aggregates are not a clinical record, so
  reading them writes no access-log row. The M10 figure is a count, never names.
- the care team (reports.view_outreach): the names behind M10 at the current site, to reach
  out. The list tells who is in care here and, through "days since", whether they have
  medication on hand: clinical information about each named person. So each person shown
  gets an access-log row, in the request's transaction (a page that failed to log was not
  shown), exactly as opening their page would.
"""

import io
from datetime import timedelta

from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from django_tables2 import RequestConfig

from clinic.access import access_log_record_many
from clinic.models import AccessLog, Person
from clinic.sites import can, site_permission_required
from reports import charts, measures
from reports.forms import ReportFilterForm
from reports.tables import TABLES, measure_cards, summary_csv_rows, write_csv

TABLE_CAPTIONS = {
    "sites": gettext_lazy("By site"),
    "weeks": gettext_lazy("By week"),
    "services": gettext_lazy("By service"),
}


def _today(site):
    return timezone.localdate(timezone=site.tz)


def _form(request) -> ReportFilterForm:
    return ReportFilterForm(
        request.GET, user=request.user, current_site=request.site, today=_today(request.site)
    )


def _table(request, name: str, rows: list[dict]):
    table = TABLES[name](
        rows, prefix=f"{name}-", attrs={"id": f"table-{name}", "class": "queue report-table"}
    )
    table.caption = TABLE_CAPTIONS[name]
    RequestConfig(request, paginate=False).configure(table)
    return table


def _charts(period, weeks: list[dict], curve: list[dict]) -> list:
    def points(key):
        return charts.week_points(weeks, key, start=period.start, end=period.end)

    return [
        charts.bar_chart(
            points("visits"),
            chart_id="chart-contacts",
            title=_("Contacts per week"),
            y_caption=_("Completed visits"),
        ),
        charts.line_chart(
            points("median_wait_minutes"),
            chart_id="chart-wait",
            title=_("Median wait per week"),
            y_caption=_("Minutes from arrival to first contact"),
            fmt=charts.fmt_minutes,
            integer=True,
            floor=10,
        ),
        charts.line_chart(
            points("lwbs_rate"),
            chart_id="chart-lwbs",
            title=_("Left before being seen, per week"),
            y_caption=_("Share of arrivals"),
            fmt=charts.fmt_percent,
            floor=0.1,
        ),
        charts.retention_chart(
            curve, chart_id="chart-retention", title=_("Medication on hand after a start")
        ),
    ]


@never_cache
@require_GET
@site_permission_required("reports.view_reports")
def dashboard(request):
    form = _form(request)
    context = {"form": form}
    if form.is_valid():
        period, site_ids = form.cleaned_data["period"], form.site_ids
        # One set of working tables (and one snapshot) for every number on the page.
        with measures.shared():
            figures = measures.measures(period, site_ids)
            weeks = measures.weekly(period, site_ids)
            curve = measures.retention_curve(period, site_ids)
            sites = measures.by_site(period, site_ids)
            services = measures.by_service(period, site_ids)
        context.update(
            period=period,
            period_days=(period.end - period.start).days + 1,
            scope=form.scope_name,
            cards=measure_cards(figures),
            charts=_charts(period, weeks, curve),
            tables=[
                _table(request, "sites", sites),
                _table(request, "weeks", weeks),
                _table(request, "services", services),
            ],
            query=request.GET.urlencode(),
            can_outreach=can(request.user, "reports.view_outreach", request.site),
        )
    return render(request, "reports/dashboard.html", context)


@never_cache
@require_GET
@site_permission_required("reports.view_reports")
def export_csv(request, name: str):
    """One CSV per table, and the measures summary; small counts of people become "<5"."""
    if name != "summary" and name not in TABLES:
        raise Http404(_("There is no such download."))
    form = _form(request)
    if not form.is_valid():
        # Back to the dashboard, which explains what is wrong with the period or site.
        return redirect(f"{reverse('reports:dashboard')}?{request.GET.urlencode()}")
    period, site_ids = form.cleaned_data["period"], form.site_ids
    scope = ", ".join(s.slug for s in form.cleaned_data["sites"])
    if name == "summary":
        rows = summary_csv_rows(measures.measures(period, site_ids), period=period, scope=scope)
    else:
        source = {"sites": measures.by_site, "weeks": measures.weekly}.get(
            name, measures.by_service
        )
        rows = _table(request, name, source(period, site_ids)).csv_rows()
    buffer = io.StringIO()
    write_csv(buffer, rows)
    response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
    slug = "all" if form.cleaned_data["site"] == "all" else scope
    filename = f"threshold-{name}-{slug}-{period.start:%Y%m%d}-{period.end:%Y%m%d}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@never_cache
@require_GET
@site_permission_required("reports.view_outreach")
def outreach(request):
    site = request.site
    today = _today(site)
    entries = measures.outreach_list([site.pk], as_of=today)
    people = Person.objects.filter(site=site).in_bulk([e["person_id"] for e in entries])
    access_log_record_many(
        user=request.user,
        site=site,
        what=AccessLog.What.OUTREACH,
        people=[people[entry["person_id"]] for entry in entries],
    )
    return render(
        request,
        "reports/outreach.html",
        {"entries": entries, "today": today, "since": today - timedelta(days=31)},
    )


urlpatterns = [
    path("", dashboard, name="dashboard"),
    path("export/<slug:name>.csv", export_csv, name="export"),
    path("outreach/", outreach, name="outreach"),
]
