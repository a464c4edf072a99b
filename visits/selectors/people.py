"""Reads for the person page and the privacy officer's access log.

The person page has two parts. `person_overview` is the non-clinical part (what the front desk
may see); `person_timeline` reads visits and is for the care team only, and the view writes an
access-log row before showing it.
"""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.contrib.auth import get_user_model
from django.core.paginator import Page, Paginator
from django.db.models import Max, Prefetch, Q, QuerySet

from clinic.models import AccessLog, Membership, Person, Site
from clinic.people import with_merged
from queues.models import ACTIVE_STATES, Arrival
from visits.models import Visit, VisitParticipant

ACCESS_LOG_PAGE_SIZE = 50


def person_at_site(*, site: Site, pk: int) -> Person | None:
    """The person, if they are known at `site`; another site's people do not exist here."""
    return Person.objects.filter(site=site, pk=pk).first()


@dataclass(frozen=True)
class PersonOverview:
    """What anyone who may see the person's page sees: nothing clinical."""

    person: Person
    last_here: datetime | None
    here_now: Arrival | None


def person_overview(*, person: Person, ids: list[int] | None = None) -> PersonOverview:
    # "Last here" is the last arrival at the front door or the last visit at the clinic (a
    # quick contact at the door may have no arrival). Outreach happens elsewhere. Records
    # merged into this one count as theirs (clinic/people.py; `ids` when already known).
    ids = ids or with_merged(person)
    last_arrival = Arrival.objects.filter(person__in=ids).aggregate(at=Max("arrived_at"))["at"]
    last_visit = (
        Visit.objects.filter(person__in=ids, site_id=person.site_id)
        .exclude(origin=Visit.Origin.OUTREACH)
        .aggregate(at=Max("started_at"))["at"]
    )
    times = [t for t in (last_arrival, last_visit) if t is not None]
    here_now = (
        Arrival.objects.filter(person__in=ids, state__in=ACTIVE_STATES)
        .select_related("service")
        .first()
    )
    return PersonOverview(person=person, last_here=max(times) if times else None, here_now=here_now)


def person_timeline(*, person: Person, ids: list[int] | None = None) -> list[Visit]:
    """The person's visits at their site, newest first, with who took part and what was done.

    Clinical: only for the care team, and only after the opening is written to the access log.
    Visits of records merged into this one are theirs too (a merge moves them; any recorded
    under the merged record a moment after are still shown).
    """
    return list(
        Visit.objects.filter(person__in=ids or with_merged(person), site_id=person.site_id)
        .order_by("-started_at", "-pk")
        .prefetch_related(
            Prefetch(
                "participants",
                queryset=VisitParticipant.objects.select_related("user").order_by(
                    "joined_at", "pk"
                ),
            ),
            "services",
        )
    )


# --- access log -------------------------------------------------------------------------------


def access_log_staff_choices(*, site: Site) -> QuerySet:
    """Staff who work at the site, and anyone who ever opened a record there (they may have
    left since: their entries must stay findable)."""
    User = get_user_model()
    return (
        User.objects.filter(
            Q(pk__in=Membership.objects.filter(site=site).values("user_id"))
            | Q(pk__in=AccessLog.objects.filter(site=site).values("user_id"))
        )
        .distinct()
        .order_by("first_name", "last_name", "username")
    )


def access_log_page(
    *,
    site: Site,
    person: Person | None = None,
    user=None,
    since: date | None = None,
    until: date | None = None,
    page: str | int | None = 1,
) -> Page:
    """One page of the site's access log, newest first, optionally about one person (with the
    records merged into theirs: those entries stay with the record that was read), by one
    staff member, and/or from `since` to `until` (days at the site, both included). An
    out-of-range or garbled page number gives the nearest real page."""
    entries = AccessLog.objects.filter(site=site).select_related("user", "person")
    if person is not None:
        entries = entries.filter(person__in=with_merged(person))
    if user is not None:
        entries = entries.filter(user=user)
    if since is not None:
        entries = entries.filter(at__gte=datetime.combine(since, time(), tzinfo=site.tz))
    if until is not None:
        next_day = datetime.combine(until + timedelta(days=1), time(), tzinfo=site.tz)
        entries = entries.filter(at__lt=next_day)
    entries = entries.order_by("-at", "-pk")
    return Paginator(entries, ACCESS_LOG_PAGE_SIZE).get_page(page)
