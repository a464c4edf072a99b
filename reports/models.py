"""The report permissions' home, and the summaries the measures read.

`Report` holds no rows: it exists so the two report permissions have a home.

The other models are derived data, never edited by hand: per person (and site) and day, what
the process measures need from the visit, medication, service and queue tables, kept in step
by `reports.summaries` (see there how). They hold day numbers (days since 1970-01-01, see
reports/_sql.py), not dates, so that the measures' day arithmetic is plain integer arithmetic
on both database engines, and plain ids instead of foreign keys: a summary row never stops a
clinical row from changing, and is rebuilt when it does.
"""

from django.db import models
from django.utils.translation import gettext_lazy as _


class Report(models.Model):
    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("view_reports", _("Can see the process measures for a site")),
            ("view_outreach", _("Can see the haven't-seen-in-a-while outreach list")),
        ]

    def __str__(self) -> str:
        return "report"


class VisitDay(models.Model):
    """A day on which a person had at least one completed visit at a site."""

    site_id = models.BigIntegerField()
    person_id = models.BigIntegerField()
    d = models.IntegerField(help_text="Day number of the visits' local date.")
    visits = models.IntegerField()
    # 1 when more than one staff member opened visits that day (M2's same-day initiation).
    multi = models.SmallIntegerField()
    medication_events = models.IntegerField()
    # The person's previous and next such day at the site (NULL: none), all history.
    prev = models.IntegerField(null=True)
    next = models.IntegerField(null=True)

    class Meta:
        default_permissions = ()
        constraints = [
            models.UniqueConstraint(
                fields=["person_id", "site_id", "d"], name="visitday_unique_person_site_day"
            )
        ]
        indexes = [models.Index(fields=["site_id", "d"], name="visitday_site_day_idx")]

    def __str__(self) -> str:
        return f"VisitDay {self.pk}"


class ServiceDay(models.Model):
    """How often a service was delivered on one day at a site: to one person (with the day
    that person last had it there), or, with no person, at anonymous contacts."""

    site_id = models.BigIntegerField()
    person_id = models.BigIntegerField(null=True)
    service_id = models.BigIntegerField()
    d = models.IntegerField()
    deliveries = models.IntegerField()
    prev = models.IntegerField(null=True)

    class Meta:
        default_permissions = ()
        indexes = [
            models.Index(fields=["site_id", "d"], name="serviceday_site_day_idx"),
            models.Index(fields=["person_id"], name="serviceday_person_idx"),
        ]

    def __str__(self) -> str:
        return f"ServiceDay {self.pk}"


class VisitWait(models.Model):
    """One completed visit of a person that came through the queue: milliseconds from
    arrival to the visit's start (M16), NULL when the arrival was imported (no clock times)."""

    site_id = models.BigIntegerField()
    person_id = models.BigIntegerField()
    d = models.IntegerField()
    ms = models.BigIntegerField(null=True)

    class Meta:
        default_permissions = ()
        indexes = [
            # Covering: the percentiles of a period read the index alone.
            models.Index(fields=["site_id", "d", "ms"], name="visitwait_site_day_idx"),
            models.Index(fields=["person_id"], name="visitwait_person_idx"),
        ]

    def __str__(self) -> str:
        return f"VisitWait {self.pk}"


class CoverageRun(models.Model):
    """A run of days a person had medication on hand from one site's events (supplies
    stacked, POD rule): first and last covered day, the previous run's last day and the
    next run's first day (NULL: none)."""

    site_id = models.BigIntegerField()
    person_id = models.BigIntegerField()
    cs = models.IntegerField()
    ce = models.IntegerField()
    pce = models.IntegerField(null=True)
    ncs = models.IntegerField(null=True)

    class Meta:
        default_permissions = ()
        indexes = [
            models.Index(fields=["site_id", "cs"], name="coveragerun_site_start_idx"),
            models.Index(fields=["person_id", "cs"], name="coveragerun_person_idx"),
        ]

    def __str__(self) -> str:
        return f"CoverageRun {self.pk}"


class SiteDay(models.Model):
    """Per site and day: arrivals by outcome (M17, M18) and completed visits (M12)."""

    site_id = models.BigIntegerField()
    d = models.IntegerField()
    arrivals = models.IntegerField(help_text="Arrivals with a known outcome.")
    lwbs = models.IntegerField()
    waiting = models.IntegerField(help_text="Arrivals without an outcome yet.")
    named = models.IntegerField(help_text="People's arrivals with a known outcome.")
    walk_in = models.IntegerField(help_text="Of those, without an appointment.")
    named_waiting = models.IntegerField()
    visits = models.IntegerField(help_text="Completed visits, anonymous contacts included.")
    named_visits = models.IntegerField()

    class Meta:
        default_permissions = ()
        constraints = [
            models.UniqueConstraint(fields=["site_id", "d"], name="siteday_unique_site_day")
        ]

    def __str__(self) -> str:
        return f"SiteDay {self.pk}"


class Stale(models.Model):
    """What changed since the summaries were last brought up to date: a person (all their
    summary rows) or a site's day. Written by database triggers on the clinical tables, in
    the same transaction as the change; emptied by `reports.summaries.refresh()`."""

    person_id = models.BigIntegerField(null=True)
    site_id = models.BigIntegerField(null=True)
    day = models.DateField(null=True)

    class Meta:
        default_permissions = ()

    def __str__(self) -> str:
        return f"Stale {self.pk}"
