"""Print every process measure for a period: `manage.py metrics --start … --end …`.

An operator's tool (and the check after migrating from a previous system): it prints the
numbers as computed, without the small-count suppression that exports apply.
"""

import json
from datetime import date

from django.core.management.base import BaseCommand, CommandError

from clinic.models import Site
from reports.measures import MEASURE_IDS, Period, measures

TITLES = {
    "M2": "Initiation within 14 days",
    "M3": "Engagement within 34 days",
    "M4": "180-day medication continuity",
    "M5": "Medication on hand at day 90",
    "M6": "Two visits at least 90 days apart",
    "M7": "Still connected (second half)",
    "M8": "Visit constancy (30-day blocks)",
    "M9": "Welcome-backs",
    "M10": "Haven't seen in a while",
    "M12": "Contacts (completed visits)",
    "M13": "Naloxone kits",
    "M14": "Services per completed visit",
    "M16": "Arrival to first staff contact",
    "M17": "Left before being seen",
    "M18": "Walk-in share",
}


def _date(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{option} must be a date like 2025-01-31, not {value!r}.") from None


def _pct(rate) -> str:
    return "—" if rate is None else f"{rate * 100:.1f}%"


def _num(value, unit: str = "") -> str:
    return "—" if value is None else f"{value:g}{unit}"


def _ratio(m: dict) -> str:
    return f"{m['numerator']} / {m['denominator']} = {_pct(m['rate'])}"


def describe(measure_id: str, m: dict) -> str:
    """One line of figures for a measure, as the table format prints it."""
    if measure_id == "M5":
        days = "; ".join(
            f"day {k}: {_ratio(m[f'day_{k}'])} (not yet evaluable {m[f'day_{k}']['not_evaluable']})"
            for k in (30, 90, 180)
        )
        pdc = m["pdc_180"]
        return f"{days}; days covered to day 180: {_pct(pdc['value'])} of {pdc['denominator']}"
    if measure_id == "M8":
        return f"mean share {_pct(m['value'])} over {m['denominator']} people"
    if measure_id == "M9":
        return f"{m['count']} (median interruption {_num(m['median_days'], ' days')})"
    if measure_id == "M10":
        return f"{m['count']} people"
    if measure_id == "M12":
        return (
            f"{m['count']} visits ({m['anonymous']} anonymous), {m['people']} people "
            f"({m['new_people']} new, {m['returning_people']} returning)"
        )
    if measure_id == "M13":
        return f"{m['count']} kits; people given naloxone: {_ratio(m)}"
    if measure_id == "M14":
        return f"{_num(m['value'])} ({m['numerator']} services / {m['denominator']} visits)"
    if measure_id == "M16":
        return (
            f"median {_num(m['median_minutes'], ' min')}, 90th percentile "
            f"{_num(m['p90_minutes'], ' min')} over {m['denominator']} visits"
        )
    if measure_id == "M18":
        return (
            f"{_ratio(m)}; visits per staff-hour {_num(m['visits_per_staff_hour'])} "
            f"({m['staff_hours']:g} hours on shift)"
        )
    return _ratio(m)


class Command(BaseCommand):
    help = "Print the process measures (METRICS.md) for a period, as a table or as JSON."

    def add_arguments(self, parser):
        parser.add_argument("--start", required=True, help="First day, YYYY-MM-DD.")
        parser.add_argument("--end", required=True, help="Last day (included), YYYY-MM-DD.")
        parser.add_argument("--site", help="A site's short name (default: every site).")
        parser.add_argument("--format", choices=["table", "json"], default="table")

    def handle(self, *args, **options):
        start = _date(options["start"], "--start")
        end = _date(options["end"], "--end")
        try:
            period = Period(start, end)
        except ValueError as exc:
            raise CommandError(f"{exc} (--start {start}, --end {end})") from None
        if options["site"]:
            site = Site.objects.filter(slug=options["site"]).first()
            if site is None:
                known = ", ".join(Site.objects.order_by("slug").values_list("slug", flat=True))
                raise CommandError(f"No site {options['site']!r}. Known sites: {known or 'none'}.")
            site_ids = [site.pk]
        else:
            site_ids = list(Site.objects.values_list("pk", flat=True))
        result = measures(period, site_ids)
        if options["format"] == "json":
            self.stdout.write(json.dumps(result, indent=2))
            return
        scope = options["site"] or "all sites"
        self.stdout.write(f"Process measures {start} to {end} ({scope})")
        for measure_id in MEASURE_IDS:
            m = result[measure_id]
            line = f"{measure_id:<4} {TITLES[measure_id]:<36} {describe(measure_id, m)}"
            if m.get("not_evaluable"):
                line += f"  [not yet evaluable: {m['not_evaluable']}]"
            self.stdout.write(line)
