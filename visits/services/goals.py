"""Goals belong to the person, in their own words. Writes only; reads are in selectors/goals.py.

There is no "failed": a goal is active, reached, changed or set aside, and any step counts as
progress. Nothing here is ever used to decide anything about the person's care.
"""

from datetime import date, datetime

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from clinic.models import Person
from visits.errors import VisitError
from visits.models import Goal, GoalProgress, Visit
from visits.services.visits import visit_add_participant

WORDS_MAX = Goal._meta.get_field("words").max_length
PROGRESS_MAX = GoalProgress._meta.get_field("note").max_length


def _text(value: str | None, *, max_length: int, empty_code: str, empty_message: str) -> str:
    value = (value or "").strip()
    if not value:
        raise VisitError(empty_code, empty_message)
    if len(value) > max_length:
        raise VisitError(
            "too_long",
            _("Please keep it to %(max)d characters (this is %(n)d).")
            % {"max": max_length, "n": len(value)},
        )
    return value


def _check_visit(visit: Visit | None, person: Person) -> Visit | None:
    if visit is None:
        return None
    if visit.person_id != person.pk or visit.site_id != person.site_id:
        raise VisitError("wrong_visit", _("That visit is not this person's."))
    if not visit.is_open:
        raise VisitError(
            "visit_closed",
            _("That visit is closed. Add this from the person's page, or as an addendum."),
        )
    return visit


def _local_today(person: Person, now: datetime) -> date:
    return timezone.localdate(now, person.site.tz)


def goal_set(
    *,
    person: Person,
    words: str,
    by,
    visit: Visit | None = None,
    set_on: date | None = None,
    now: datetime | None = None,
) -> Goal:
    """Record a new goal in the person's own words. Locks the visit it was set in, if any."""
    now = now or timezone.now()
    words = _text(
        words,
        max_length=WORDS_MAX,
        empty_code="goal_empty",
        empty_message=_("Please write the goal in the person's own words."),
    )
    with transaction.atomic():
        if visit is not None:
            visit = Visit.objects.select_for_update().get(pk=visit.pk)
        visit = _check_visit(visit, person)
        today = _local_today(person, now)
        set_on = set_on or today
        if set_on > today:
            raise VisitError("future_date", _("The date a goal was set cannot be in the future."))
        goal = Goal.objects.create(
            person=person,
            words=words,
            set_on=set_on,
            status=Goal.Status.ACTIVE,
            status_changed_at=now,
            visit=visit,
            created_by=by,
        )
        if visit is not None:
            visit_add_participant(visit=visit, user=by, at=now)
    return goal


def goal_change_status(*, goal: Goal, status: str, by, now: datetime | None = None) -> Goal:
    """Mark a goal active, reached, changed or set aside. Locks the goal."""
    if status not in Goal.Status.values:
        raise VisitError("unknown_status", _("Please pick one of the statuses listed."))
    now = now or timezone.now()
    with transaction.atomic():
        goal = Goal.objects.select_for_update().get(pk=goal.pk)
        if goal.status != status:
            goal.status = status
            goal.status_changed_at = now
            goal.save(update_fields=["status", "status_changed_at"])
    return goal


def goal_add_progress(
    *,
    goal: Goal,
    note: str,
    by,
    on: date | None = None,
    visit: Visit | None = None,
    now: datetime | None = None,
) -> GoalProgress:
    """Add a dated step towards a goal. Any step counts. Locks the visit it was written in."""
    now = now or timezone.now()
    note = _text(
        note,
        max_length=PROGRESS_MAX,
        empty_code="progress_empty",
        empty_message=_("Please write a few words about the step."),
    )
    with transaction.atomic():
        if visit is not None:
            visit = Visit.objects.select_for_update().get(pk=visit.pk)
        visit = _check_visit(visit, goal.person)
        today = _local_today(goal.person, now)
        on = on or today
        if on > today:
            raise VisitError("future_date", _("The date of a step cannot be in the future."))
        progress = GoalProgress.objects.create(
            goal=goal, on=on, note=note, visit=visit, author=by, written_at=now
        )
        if visit is not None:
            visit_add_participant(visit=visit, user=by, at=now)
    return progress
