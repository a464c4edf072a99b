"""Reads for merging two records of one person: the two side by side (enough to tell whether
they are one person: the details and the last visits), the merges waiting for the privacy
officer, and what the kept record will hold.

The comparison shows visits: clinical, so the views write an access-log row for each of the
two records before showing it.
"""

from dataclasses import dataclass
from datetime import date, datetime

from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils.formats import date_format
from django.utils.text import capfirst

from clinic.models import Person, PersonMerge, Site
from queues.models import Arrival
from queues.selectors import people_search
from visits.models import Visit
from visits.selectors.history import MOVED_LABELS
from visits.selectors.people import person_overview
from visits.services.merge import (
    DETAILS,
    merge_fingerprint,
    merged_details,
    person_details,
    person_merge_check,
    wants_what_helps,
)

LAST_VISITS = 3


@dataclass(frozen=True)
class DetailRow:
    field: str
    label: str
    kept: str  # "" when not given
    duplicate: str
    after: str  # what the kept record holds after the merge ("" when not known yet)
    same: bool


@dataclass(frozen=True)
class RecordSide:
    person: Person
    visits: list[Visit]  # the newest few
    visit_count: int
    last_here: datetime | None
    here_now: Arrival | None


@dataclass(frozen=True)
class Comparison:
    kept: RecordSide
    duplicate: RecordSide
    rows: list[DetailRow]
    fingerprint: str  # what this page showed of both records
    offer_what_helps: bool  # the second record's "what helps" adds something
    # A merge of either record waiting for the privacy officer (only one may wait at a time).
    waiting: PersonMerge | None
    problem: str  # why they cannot be merged now ("" when nothing stands in the way)


def _shown(field: str, value) -> str:
    if value in (None, ""):
        return ""
    if field == "date_of_birth":
        return date_format(date.fromisoformat(value), "j M Y")
    return str(value)


def _label(field: str) -> str:
    return str(capfirst(Person._meta.get_field(field).verbose_name))


def _side(person: Person) -> RecordSide:
    """One record on its own (not with records merged into it: this is about telling two
    records apart)."""
    visits = Visit.objects.filter(person=person, site_id=person.site_id)
    overview = person_overview(person=person, ids=[person.pk])
    return RecordSide(
        person=person,
        visits=list(
            visits.order_by("-started_at", "-pk").prefetch_related("services")[:LAST_VISITS]
        ),
        visit_count=visits.count(),
        last_here=overview.last_here,
        here_now=overview.here_now,
    )


def detail_rows(kept: dict, duplicate: dict, after: dict | None = None) -> list[DetailRow]:
    """The compared details (person_details() of both), with the kept record's after the merge
    when `after` is given."""
    return [
        DetailRow(
            field=field,
            label=_label(field),
            kept=_shown(field, kept[field]),
            duplicate=_shown(field, duplicate[field]),
            after=_shown(field, after[field]) if after else "",
            same=(kept[field] or "") == (duplicate[field] or ""),
        )
        for field in DETAILS
    ]


def merge_comparison(*, kept: Person, duplicate: Person) -> Comparison:
    """The two records as they are now, side by side."""
    details = person_details(kept), person_details(duplicate)
    waiting = (
        PersonMerge.objects.filter(
            Q(kept__in=(kept, duplicate)) | Q(duplicate__in=(kept, duplicate)),
            status=PersonMerge.Status.PROPOSED,
        )
        .order_by("-proposed_at")
        .first()
    )
    try:
        person_merge_check(site=kept.site, kept=kept, duplicate=duplicate)
    except ValidationError as error:
        problem = " ".join(error.messages)
    else:
        problem = ""
    return Comparison(
        kept=_side(kept),
        duplicate=_side(duplicate),
        rows=detail_rows(*details),
        fingerprint=merge_fingerprint(kept, duplicate),
        offer_what_helps=wants_what_helps(*details),
        waiting=waiting,
        problem=problem,
    )


@dataclass(frozen=True)
class Proposal:
    """A merge as the privacy officer decides it: the records now, the details the kept record
    will hold, and whether either record changed since it was proposed."""

    merge: PersonMerge
    comparison: Comparison
    rows: list[DetailRow]
    stale: bool
    waiting: bool
    moved: list[tuple[str, int]]  # what an approved merge moved: (what, how many)


def merge_proposal(*, merge: PersonMerge) -> Proposal:
    comparison = merge_comparison(kept=merge.kept, duplicate=merge.duplicate)
    now = {"kept": person_details(merge.kept), "duplicate": person_details(merge.duplicate)}
    waiting = merge.status == PersonMerge.Status.PROPOSED
    # Waiting: the records as they are now. Decided: as they were proposed (and merged).
    shown = now if waiting else merge.snapshot
    after = None
    if merge.status != PersonMerge.Status.DECLINED:
        after = merged_details(
            shown["kept"],
            shown["duplicate"],
            take=merge.take_from_duplicate,
            append=merge.append_what_helps,
        )
    return Proposal(
        merge=merge,
        comparison=comparison,
        rows=detail_rows(shown["kept"], shown["duplicate"], after),
        stale=waiting and now != merge.snapshot,
        waiting=waiting,
        moved=[(str(MOVED_LABELS.get(t, t)), len(ids)) for t, ids in merge.moved.items() if ids],
    )


def merge_at_site(*, site: Site, pk: int) -> PersonMerge | None:
    return (
        PersonMerge.objects.filter(site=site, pk=pk)
        .select_related("kept", "duplicate", "proposed_by", "decided_by", "site")
        .first()
    )


def merges_for_site(*, site: Site, decided: int = 20) -> tuple[list, list]:
    """(every merge waiting for the privacy officer, oldest first; the last `decided` ones)."""
    merges = PersonMerge.objects.filter(site=site).select_related(
        "kept", "duplicate", "proposed_by", "decided_by"
    )
    waiting = list(merges.filter(status=PersonMerge.Status.PROPOSED).order_by("proposed_at"))
    done = list(
        merges.exclude(status=PersonMerge.Status.PROPOSED).order_by("-decided_at", "-pk")[:decided]
    )
    return waiting, done


def merge_candidates(*, site: Site, person: Person, query: str) -> list[Person]:
    """Records at the site whose name contains the query (as at check-in), this one aside."""
    return [p for p in people_search(site=site, query=query) if p.pk != person.pk]


def merge_waiting_for(*, person: Person) -> PersonMerge | None:
    """A merge of this record waiting for the privacy officer, if any (for the person page)."""
    return (
        PersonMerge.objects.filter(
            Q(kept=person) | Q(duplicate=person), status=PersonMerge.Status.PROPOSED
        )
        .order_by("-proposed_at")
        .first()
    )
