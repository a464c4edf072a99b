from django.db.models import Case, IntegerField, Prefetch, Value, When

from clinic.people import with_merged
from visits.models import Goal, GoalProgress


def person_goals(*, person, ids: list[int] | None = None) -> list[Goal]:
    """The person's goals (with those of records merged into theirs), active ones first (the
    conversation starts from them), newest first."""
    return list(
        Goal.objects.filter(person__in=ids or with_merged(person))
        .annotate(
            active_first=Case(
                When(status=Goal.Status.ACTIVE, then=Value(0)),
                default=Value(1),
                output_field=IntegerField(),
            )
        )
        .order_by("active_first", "-set_on", "-pk")
        .prefetch_related(
            Prefetch("progress", queryset=GoalProgress.objects.select_related("author"))
        )
    )
