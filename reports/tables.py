"""The dashboard's tables (django-tables2, over the engine's lists of dicts), the measure
cards with their plain-language explanations, and the CSV forms of both.

Screens show the director real numbers. Every CSV goes through reports.privacy: counts of
1-4 become "<5", and a rate, mean or median computed from such a count is withheld.
There is deliberately no table by staff member (METRICS.md: never a ranking of staff).
"""

import csv
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import django_tables2 as tables
from django.utils.formats import number_format
from django.utils.translation import gettext_lazy as _

from reports.privacy import suppress_row

EMPTY = "—"


def percent(rate: float | None, places: int = 0) -> str:
    if rate is None:
        return EMPTY
    return f"{number_format(round(rate * 100, places), places)}%"


def number(value: float | int | None, places: int = 0) -> str:
    if value is None:
        return EMPTY
    return number_format(round(value, places), places, force_grouping=True)


# --- django-tables2 tables ---------------------------------------------------------------


class RateColumn(tables.Column):
    def render(self, value):
        return percent(value, 1)


class MinutesColumn(tables.Column):
    def render(self, value):
        return number(value, 1 if value % 1 else 0)


class CountColumn(tables.Column):
    def render(self, value):
        return number(value)


class ReportTable(tables.Table):
    """Sortable by clicking a header (the table's own prefix keeps the tables' sort orders
    apart in the query string); a missing value shows as a dash and sorts first ascending.
    Subclasses must subclass this Meta too: django-tables2 does not inherit it by itself."""

    # Which fields are people-ish counts and which figures derive from them (for CSV).
    export_counts: tuple[str, ...] = ()
    export_derived: Mapping[str, tuple[str, ...]] = {}

    class Meta:
        attrs = {"class": "queue report-table"}
        template_name = "reports/_table.html"
        default = EMPTY
        orderable = True
        empty_text = _("Nothing in this period.")

    def csv_rows(self) -> Iterable[list]:
        """Header then rows, every count through small_count, in the table's current order."""
        columns = [c for c in self.columns if c.visible]
        yield [str(c.header) for c in columns]
        for row in self.rows:
            record = dict(row.record)
            if "arrivals" in record and "lwbs" in record:
                # The median wait is over arrivals that were seen (imports aside): few seen,
                # few waits, each one nearly someone's own.
                record["seen"] = record["arrivals"] - record["lwbs"]
            safe = suppress_row(record, counts=self.export_counts, derived=self.export_derived)
            yield [_csv_value(safe.get(c.name)) for c in columns]


class SiteTable(ReportTable):
    site = tables.Column(verbose_name=_("Site"))
    visits = CountColumn(verbose_name=_("Completed visits"))
    people = CountColumn(verbose_name=_("People"))
    arrivals = CountColumn(verbose_name=_("Arrivals"))
    lwbs = CountColumn(verbose_name=_("Left before being seen"))
    lwbs_rate = RateColumn(verbose_name=_("Left before being seen, share"))
    median_wait_minutes = MinutesColumn(verbose_name=_("Median wait (minutes)"))
    walk_in_rate = RateColumn(verbose_name=_("Walk-in share (known people, as M18)"))

    export_counts = ("visits", "people", "arrivals", "lwbs")
    export_derived = {
        "lwbs_rate": ("lwbs", "arrivals"),
        "median_wait_minutes": ("visits", "seen"),
        "walk_in_rate": ("arrivals",),
    }

    class Meta(ReportTable.Meta):
        order_by = ("site",)


class WeekTable(ReportTable):
    week = tables.DateColumn(verbose_name=_("Week of (Monday)"), format="j M Y")
    visits = CountColumn(verbose_name=_("Completed visits"))
    people = CountColumn(verbose_name=_("People"))
    arrivals = CountColumn(verbose_name=_("Arrivals"))
    lwbs = CountColumn(verbose_name=_("Left before being seen"))
    lwbs_rate = RateColumn(verbose_name=_("Left before being seen, share"))
    median_wait_minutes = MinutesColumn(verbose_name=_("Median wait (minutes)"))

    export_counts = ("visits", "people", "arrivals", "lwbs")
    export_derived = {
        "lwbs_rate": ("lwbs", "arrivals"),
        "median_wait_minutes": ("visits", "seen"),
    }

    class Meta(ReportTable.Meta):
        order_by = ("week",)


class ServiceTable(ReportTable):
    service = tables.Column(verbose_name=_("Service"))
    visits = CountColumn(verbose_name=_("Completed visits"))
    people = CountColumn(verbose_name=_("People"))

    export_counts = ("visits", "people")

    class Meta(ReportTable.Meta):
        order_by = ("-visits",)


TABLES = {"sites": SiteTable, "weeks": WeekTable, "services": ServiceTable}


def _csv_value(value):
    if value is None:
        return ""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def write_csv(stream, rows: Iterable[Iterable]) -> None:
    writer = csv.writer(stream)
    for row in rows:
        # A cell starting with = + - @ would run as a formula in a spreadsheet.
        writer.writerow(
            ["'" + v if isinstance(v, str) and v[:1] and v[0] in "=+-@" else v for v in row]
        )


# --- the measures: cards on screen, rows in the summary CSV -------------------------------


@dataclass(frozen=True)
class Measure:
    id: str
    name: str
    what: str  # what it counts, in plain words
    why: str  # why it is a process measure
    source: str  # where the definition comes from
    group: str
    # (key, label, kind) figures for the card and the CSV; kind: count | rate | number
    figures: tuple[tuple[str, str, str], ...] = field(default=())


ENGAGEMENT = _("Engagement and retention")
HARM_REDUCTION = _("Harm reduction")
OPERATIONS = _("Clinic operations")

NOT_EVALUABLE = ("not_evaluable", _("not yet evaluable"), "count")


def rate_figures(counted, out_of) -> tuple[tuple[str, str, str], ...]:
    return (
        ("rate", _("share"), "rate"),
        ("numerator", counted, "count"),
        ("denominator", out_of, "count"),
        NOT_EVALUABLE,
    )


MEASURES: tuple[Measure, ...] = (
    Measure(
        "M2",
        _("Care started within 14 days"),
        _(
            "People whose first visit in the period was a fresh start (no visit in the 194 "
            "days before), and how many had another contact within 14 days: a visit, "
            "medication, or a same-day visit with a different team member."
        ),
        _("It shows how quickly the clinic connects people to care, not what they use."),
        _("HEDIS IET (Initiation and Engagement of Substance Use Disorder Treatment), adapted."),
        ENGAGEMENT,
        rate_figures(_("started care within 14 days"), _("fresh starts")),
    ),
    Measure(
        "M3",
        _("Stayed engaged within 34 days"),
        _(
            "Of the same fresh starts, how many had at least two more contacts in the 34 days "
            "after care started. A visit with a prescription on the same day counts as two."
        ),
        _("It measures whether the clinic kept in touch early on."),
        _("HEDIS IET (engagement), adapted to visit data."),
        ENGAGEMENT,
        rate_figures(_("engaged within 34 days"), _("fresh starts")),
    ),
    Measure(
        "M4",
        _("Medication kept up for 180 days"),
        _(
            "Medication starts (no medication on hand in the month before), and how many had "
            "medication on hand for 180 days without a gap of 8 days or more. Refills stack."
        ),
        _("It shows whether refills reached people in time; it says nothing about use."),
        _("HEDIS POD / NQF 3175 (Pharmacotherapy for Opioid Use Disorder)."),
        ENGAGEMENT,
        rate_figures(_("no gap of 8 days or more"), _("medication starts")),
    ),
    Measure(
        "M5",
        _("Medication on hand at day 30, 90 and 180"),
        _(
            "Of medication starts far enough in the past, the share with medication on hand "
            "on day 30, 90 and 180, and the share of days covered through day 180. "
            "The large number is day 90."
        ),
        _("A cohort curve of continuity of care, the same rule as above."),
        _("HEDIS POD / NQF 3175 coverage rule, shown as a cohort curve."),
        ENGAGEMENT,
        rate_figures(_("on hand at day 90"), _("starts evaluable at day 90")),
    ),
    Measure(
        "M6",
        _("Two visits at least 90 days apart"),
        _(
            "People with a visit in the period (early enough to tell), and how many had "
            "their first and last visits in the period at least 90 days apart."
        ),
        _("A retention measure: did people keep coming back over months."),
        _("CMS eCQM HIV retention in care / Institute of Medicine (IOM) indicator."),
        ENGAGEMENT,
        rate_figures(_("visits 90+ days apart"), _("people seen early enough")),
    ),
    Measure(
        "M7",
        _("Still connected"),
        _(
            "People seen in the first half of the period, and how many were seen again in "
            "the second half."
        ),
        _("It counts the people who stayed in touch with the clinic."),
        _("HRSA HAB (HIV/AIDS Bureau) gap measure, turned the right way up."),
        ENGAGEMENT,
        rate_figures(_("seen again in the second half"), _("seen in the first half")),
    ),
    Measure(
        "M8",
        _("Visit constancy"),
        _(
            "For each person, the share of 30-day blocks since their first visit in the "
            "period that include a visit; the average over people."
        ),
        _("Steady contact over time, whatever happens between visits."),
        _(
            "Visit constancy, a retention measure used beside the HRSA HAB measures "
            "(Threshold METRICS.md M8)."
        ),
        ENGAGEMENT,
        (
            ("value", _("average share of blocks"), "rate"),
            ("denominator", _("people"), "count"),
            NOT_EVALUABLE,
        ),
    ),
    Measure(
        "M9",
        _("Welcome-backs"),
        _(
            "Visits in the period by someone who had been away 31 days or more (no visit "
            "and no medication on hand), and the median time away."
        ),
        _("Coming back is a success of the clinic's welcome, counted as such."),
        _('PEPFAR "returned to treatment".'),
        ENGAGEMENT,
        (
            ("count", _("welcome-backs"), "count"),
            ("median_days", _("median days away"), "number"),
            NOT_EVALUABLE,
        ),
    ),
    Measure(
        "M10",
        _("Haven't seen in a while"),
        _(
            "How many people have had no visit and no medication on hand for 31 days or "
            "more at the end of the period. A number only, never a rate: the care team has "
            "the names, to reach out."
        ),
        _("It is a prompt for outreach, never a mark on anyone's record."),
        _("Threshold METRICS.md M10, the other side of PEPFAR's interruption in treatment."),
        ENGAGEMENT,
        (
            ("count", _("people"), "count"),
            NOT_EVALUABLE,
        ),
    ),
    Measure(
        "M12",
        _("Contacts"),
        _(
            "Completed visits, anonymous contacts included; the unique people seen, those "
            "seen for the first time ever and those returning."
        ),
        _("How much contact the clinic had: the base of everything else."),
        _("SHaRP syringe services program indicator #06."),
        HARM_REDUCTION,
        (
            ("count", _("completed visits"), "count"),
            ("people", _("people"), "count"),
            ("new_people", _("new people"), "count"),
            ("returning_people", _("returning people"), "count"),
            ("anonymous", _("anonymous contacts"), "count"),
            NOT_EVALUABLE,
        ),
    ),
    Measure(
        "M13",
        _("Naloxone"),
        _(
            "Naloxone kits given at visits with a known person, and the share of people seen "
            "who were given one. Kits handed out anonymously count as contacts (M12)."
        ),
        _("Reach of a life-saving service, not a judgement of anyone."),
        _("SHaRP syringe services program indicator #11."),
        HARM_REDUCTION,
        (
            ("count", _("kits"), "count"),
            ("numerator", _("people given naloxone"), "count"),
            ("denominator", _("out of people seen"), "count"),
            ("rate", _("share"), "rate"),
            NOT_EVALUABLE,
        ),
    ),
    Measure(
        "M14",
        _("Services per visit"),
        _(
            "The average number of different services delivered at a completed visit with a "
            "known person (anonymous contacts count in M12)."
        ),
        _("How much each visit offered."),
        _("Threshold METRICS.md M14 (harm-reduction services)."),
        HARM_REDUCTION,
        (
            ("value", _("services per visit"), "number2"),
            ("numerator", _("services delivered"), "count"),
            ("denominator", _("completed visits with a known person"), "count"),
            NOT_EVALUABLE,
        ),
    ),
    Measure(
        "M16",
        _("Arrival to first contact"),
        _(
            "Minutes from arrival to the start of the visit, for completed visits: the "
            "median and the 90th percentile (9 in 10 waited no longer)."
        ),
        _("About the clinic's flow, never about a person; imported visits have no times."),
        _("Threshold METRICS.md M16, read beside left-before-seen (CMS OP-22)."),
        OPERATIONS,
        (
            ("median_minutes", _("median minutes"), "number"),
            ("p90_minutes", _("90th percentile minutes"), "number"),
            ("denominator", _("visits timed"), "count"),
            ("not_evaluable", _("not timed (imported)"), "count"),
        ),
    ),
    Measure(
        "M17",
        _("Left before being seen"),
        _("Arrivals who left before being seen, out of all arrivals (anonymous included)."),
        _("A signal about the clinic's capacity, never about the person who left."),
        _("CMS OP-22 (left without being seen)."),
        OPERATIONS,
        (
            ("numerator", _("left before being seen"), "count"),
            ("denominator", _("arrivals, anonymous contacts included"), "count"),
            ("rate", _("share"), "rate"),
            ("not_evaluable", _("still in the queue"), "count"),
        ),
    ),
    Measure(
        "M18",
        _("Walk-ins and workload"),
        _(
            "The share of arrivals of known people without an appointment, and completed "
            "visits per staff hour on shift. Anonymous contacts have no appointment to miss: "
            "they count in M12 and M17 only, so this counts fewer arrivals than M17."
        ),
        _("A workload and burnout signal about the clinic, never a ranking of staff."),
        _("Threshold METRICS.md M18."),
        OPERATIONS,
        (
            ("numerator", _("walk-in arrivals"), "count"),
            ("denominator", _("arrivals of known people"), "count"),
            ("rate", _("walk-in share"), "rate"),
            ("visits_per_staff_hour", _("visits per staff-hour"), "number2"),
            ("staff_hours", _("staff hours on shift"), "number"),
            ("not_evaluable", _("still in the queue"), "count"),
        ),
    ),
)

M5_HORIZONS = (("day_30", _("day 30")), ("day_90", _("day 90")), ("day_180", _("day 180")))

# Figures withheld in CSV when a count they come from is 1-4.
DERIVED = {
    "rate": ("numerator", "denominator"),
    "value": ("denominator",),
    "median_days": ("count",),
    "median_minutes": ("denominator",),
    "p90_minutes": ("denominator",),
    "visits_per_staff_hour": ("numerator", "denominator"),
}
# Staff hours are not a count of people.
NOT_PEOPLE = {"staff_hours"}


def _show(value, kind: str) -> str:
    if kind == "rate":
        return percent(value, 1 if value is not None and value < 0.1 else 0)
    if kind == "number2":
        return number(value, 2)
    if kind == "number":
        return number(value, 0 if value is None or float(value).is_integer() else 1)
    return number(value)


def _headline(measure: Measure, figures: Mapping) -> tuple[str, str, str]:
    """The large number on the card and what it is."""
    key, label, kind = next(
        ((k, lbl, kd) for k, lbl, kd in measure.figures if kd != "count"), measure.figures[0]
    )
    if measure.id in ("M9", "M10", "M12", "M13"):
        key, label, kind = measure.figures[0]
    if measure.id == "M5":
        key, label, kind = "rate", _("on hand at day 90"), "rate"
    return key, _show(figures.get(key), kind), label


def _anonymous_arrivals_line(results: Mapping[str, Mapping]) -> dict | None:
    """M17 and M18 count arrivals differently, on purpose (METRICS.md: an anonymous contact
    counts in M12 and M17 only): the M18 card says by how many, so the two never disagree
    without a reason on the page."""
    if "M17" not in results:
        return None
    left_out = (results["M17"].get("denominator") or 0) - (results["M18"].get("denominator") or 0)
    return {
        "label": _("anonymous arrivals left out (counted in M17)"),
        "value": number(left_out),
        "key": "anonymous_arrivals",
    }


def measure_cards(results: Mapping[str, Mapping]) -> list[dict]:
    """What the template shows per measure, in METRICS.md order, with real numbers."""
    cards = []
    for measure in MEASURES:
        figures = results.get(measure.id)
        if figures is None:
            continue
        headline_key, headline, headline_label = _headline(measure, figures)
        if headline == EMPTY:
            headline_label = _("nothing to count yet")
        lines = [
            {"label": label, "value": _show(figures.get(key), kind), "key": key}
            for key, label, kind in measure.figures
            if key != headline_key
        ]
        if measure.id == "M5":
            lines = [
                {
                    "label": horizon_label,
                    "value": _("%(rate)s (%(n)s of %(d)s)")
                    % {
                        "rate": percent(figures[key]["rate"]),
                        "n": number(figures[key]["numerator"]),
                        "d": number(figures[key]["denominator"]),
                    },
                    "key": key,
                    "not_evaluable": figures[key]["not_evaluable"],
                }
                for key, horizon_label in M5_HORIZONS
            ]
            lines.append(
                {
                    "label": _("days covered through day 180"),
                    "value": percent(figures["pdc_180"]["value"]),
                    "key": "pdc_180",
                }
            )
            lines.append(
                {
                    "label": _("not yet evaluable (day 30 / 90 / 180)"),
                    "value": " / ".join(
                        number(figures[key]["not_evaluable"]) for key, _label in M5_HORIZONS
                    ),
                    "key": "not_evaluable",
                }
            )
        if measure.id == "M18" and (line := _anonymous_arrivals_line(results)):
            lines.insert(2, line)
        cards.append(
            {
                "measure": measure,
                "headline": headline,
                "headline_label": headline_label,
                "lines": lines,
                "not_evaluable": figures.get("not_evaluable"),
            }
        )
    return cards


def _suppressed(figures: Mapping) -> dict:
    counts = [
        k
        for k, v in figures.items()
        if k not in NOT_PEOPLE and isinstance(v, int) and not isinstance(v, bool)
    ]
    derived = {k: v for k, v in DERIVED.items() if k in figures}
    return suppress_row(figures, counts=counts, derived=derived)


def summary_csv_rows(results: Mapping[str, Mapping], *, period, scope: str) -> Iterable[list]:
    """Long format, one figure a row: easy to filter in a spreadsheet, and M5's horizons fit."""
    yield ["measure", "name", "figure", "value", "period_start", "period_end", "scope"]
    tail = [period.start.isoformat(), period.end.isoformat(), scope]
    for measure in MEASURES:
        figures = results.get(measure.id)
        if figures is None:
            continue
        groups = [("", figures)]
        if measure.id == "M5":
            groups = [(f"{key}.", figures[key]) for key, _label in M5_HORIZONS]
            groups.append(("pdc_180.", figures["pdc_180"]))
        for prefix, group in groups:
            safe = _suppressed(group)
            for key, value in group.items():
                if isinstance(value, Mapping):
                    continue
                yield [measure.id, str(measure.name), prefix + key, _csv_value(safe[key]), *tail]
