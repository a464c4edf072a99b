"""The dashboard's period-and-site form (GET). Nothing is computed unless it is valid."""

from datetime import date, timedelta

from django import forms
from django.utils.formats import date_format
from django.utils.translation import gettext_lazy as _

from clinic.sites import can, user_sites
from reports.measures import Period

ALL_SITES = "all"
DEFAULT_DAYS = 90
# Older dates are certainly typing mistakes, and date arithmetic near year 1 overflows.
EARLIEST = date(1990, 1, 1)


def default_period(today: date) -> tuple[date, date]:
    """The last 90 complete days: ending yesterday, because today is still under way (people
    are waiting, counts still rising), and a number that changes while you read it is no use."""
    end = today - timedelta(days=1)
    return end - timedelta(days=DEFAULT_DAYS - 1), end


def report_sites(user) -> list:
    """The sites whose reports `user` may read: a membership there and the director's
    permission (checked per site, as everywhere else)."""
    return [s for s in user_sites(user) if can(user, "reports.view_reports", s)]


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self):
        super().__init__(format="%Y-%m-%d")


class ReportFilterForm(forms.Form):
    start = forms.DateField(label=_("From"), widget=DateInput())
    end = forms.DateField(label=_("To"), widget=DateInput())
    site = forms.ChoiceField(
        label=_("Site"),
        error_messages={
            "invalid_choice": _(
                "Reports can only be shown for sites you work at as a director. "
                "Pick one from the list."
            )
        },
    )

    def __init__(self, query, *, user, current_site, today: date):
        self.today = today
        self.sites = report_sites(user)
        start, end = default_period(today)
        # A director of one site lands on it; of several, on all of them together (one
        # site's slice can be empty, and the overview is where a director starts).
        default_site = current_site.slug if self.sites == [current_site] else ALL_SITES
        # Missing fields take their defaults; fields sent empty or wrong are errors.
        data = {"start": start.isoformat(), "end": end.isoformat(), "site": default_site}
        data.update({key: query.get(key) for key in data if key in query})
        super().__init__(data)
        choices = [(s.slug, s.name) for s in self.sites]
        if len(self.sites) > 1:
            choices.append((ALL_SITES, _("All my sites")))
        self.fields["site"].choices = choices

    def clean_start(self):
        start = self.cleaned_data["start"]
        if start < EARLIEST:
            raise forms.ValidationError(
                _("Please pick a start date from %(day)s on.")
                % {"day": date_format(EARLIEST, "j M Y")}
            )
        return start

    def clean_end(self):
        end = self.cleaned_data["end"]
        if end > self.today:
            raise forms.ValidationError(
                _("The period cannot end after today (%(today)s): nothing has happened yet.")
                % {"today": date_format(self.today, "j M Y")}
            )
        return end

    def clean(self):
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        if start and end:
            if start > end:
                raise forms.ValidationError(
                    _("The period starts after it ends. Please swap the dates.")
                )
            try:
                data["period"] = Period(start=start, end=end)
            except ValueError as error:
                # Period refuses spans over three years (and one day); say it our way.
                raise forms.ValidationError(
                    _("Please pick a period of at most three years.")
                ) from error
        if "site" in data:
            data["sites"] = (
                self.sites
                if data["site"] == ALL_SITES
                else [s for s in self.sites if s.slug == data["site"]]
            )
        return data

    @property
    def site_ids(self) -> list[int]:
        return [s.pk for s in self.cleaned_data["sites"]]

    @property
    def scope_name(self) -> str:
        sites = self.cleaned_data["sites"]
        if self.cleaned_data["site"] == ALL_SITES:
            return _("All my sites (%(names)s)") % {"names": ", ".join(s.name for s in sites)}
        return sites[0].name
