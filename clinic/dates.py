"""Sane bounds for the dates people type: a birth between 1900 and today, and a record (a visit,
a tox screen, an imported day) between the day the site opened and today, both at the site's
local date. 0001-01-01 or 9999-12-31 is a typing slip or a broken export, never a fact; counted,
it would spoil every report."""

from datetime import date

from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from clinic.models import Site

EARLIEST_BIRTH = date(1900, 1, 1)
# The first day of records of a site whose opening day is not set (Site.opened_on).
EARLIEST_RECORD = date(2000, 1, 1)


def site_today(site: Site) -> date:
    return timezone.localdate(timezone.now(), site.tz)


def site_first_day(site: Site) -> date:
    return site.opened_on or EARLIEST_RECORD


def birth_date_problem(born: date, *, today: date) -> tuple[str, str] | None:
    """(code, message) saying why `born` cannot be a date of birth, or None. `today` is the
    date at the person's site."""
    if born > today:
        return "birth_in_future", _("The date of birth cannot be in the future.")
    if born < EARLIEST_BIRTH:
        return "birth_too_early", _("Please check the year of birth: it is before %(year)d.") % {
            "year": EARLIEST_BIRTH.year
        }
    return None


def record_day_problem(day: date, *, site: Site, today: date | None = None) -> str | None:
    """Why `day` cannot be the day of a record at `site`, or None when it can."""
    first = site_first_day(site)
    if day < first:
        return _("The date cannot be before this site's first day of records (%(day)s).") % {
            "day": date_format(first, "j M Y")
        }
    if day > (today or site_today(site)):
        return _("The date cannot be in the future.")
    return None
