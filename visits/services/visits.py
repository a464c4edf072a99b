"""Visit writes used by the queue. The visit record itself grows with the visits issue."""

from django.db import transaction

from clinic.models import Discipline, Membership
from visits.models import Visit, VisitParticipant


def _discipline(user, site) -> str:
    membership = Membership.objects.filter(user=user, site=site).only("discipline").first()
    return membership.discipline if membership else Discipline.OTHER


def visit_open_from_arrival(*, arrival, by, at) -> Visit:
    """Open the visit for an arrival that a team member starts seeing. Caller holds the lock."""
    visit = Visit.objects.create(
        site=arrival.site, person=arrival.person, arrival=arrival, started_at=at, opened_by=by
    )
    visit_add_participant(visit=visit, user=by, at=at)
    return visit


def visit_add_participant(*, visit: Visit, user, at) -> None:
    VisitParticipant.objects.get_or_create(
        visit=visit,
        user=user,
        defaults={"discipline": _discipline(user, visit.site), "joined_at": at},
    )


def visit_remove_participant(*, visit: Visit, user) -> None:
    if user.pk != visit.opened_by_id:
        VisitParticipant.objects.filter(visit=visit, user=user).delete()


@transaction.atomic
def visit_discard_unstarted(*, visit: Visit) -> None:
    """Undoing "Start" removes the visit it opened; it holds nothing but who opened it."""
    visit.participants.all().delete()
    visit.delete()


def visit_close(*, visit: Visit, at) -> None:
    visit.ended_at = at
    visit.save(update_fields=["ended_at"])


def visit_reopen(*, visit: Visit) -> None:
    visit.ended_at = None
    visit.save(update_fields=["ended_at"])
