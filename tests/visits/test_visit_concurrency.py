"""Ending a visit on its page while someone presses "Done" on the board at the same moment:
no deadlock, one of them wins, and the queue and the visit agree. Real threads on a real
database (PostgreSQL row locks; SQLite IMMEDIATE transactions)."""

import pytest

from queues import services as queue
from queues.errors import QueueError
from queues.models import ArrivalEvent, EventKind, State
from tests.factories import check_in
from tests.queues.test_concurrency import run_in_threads
from visits.errors import VisitError
from visits.services import visits as services

ROUNDS = 15


@pytest.mark.django_db(transaction=True)
def test_end_visit_and_board_done_together_never_deadlock_and_agree(
    site, front_desk, clinician, second_clinician
):
    visits = []
    for number in range(ROUNDS):
        arrival = check_in(site=site, by=front_desk, name=f"Person {number}")
        queue.arrival_start(arrival=arrival, by=clinician, revision=None)
        arrival.refresh_from_db()
        visits.append(arrival.visit)

    def work(index: int, number: int):
        visit = visits[number]
        if index == 0:
            return services.visit_end(visit=visit, by=clinician)
        # Another screen: a note being saved with "Save and end" by a second participant.
        if index == 1:
            return queue.arrival_finish(arrival=visit.arrival, by=second_clinician, revision=None)
        return services.visit_update(
            visit=visit, by=clinician, services=[], priorities="", note="n", end=True
        )

    results = run_in_threads(3, ROUNDS, work)

    for number, outcomes in enumerate(results):
        winners = [o for _, o in outcomes if not isinstance(o, Exception)]
        losers = [o for _, o in outcomes if isinstance(o, Exception)]
        assert len(winners) == 1, outcomes
        assert all(isinstance(e, (QueueError, VisitError)) for e in losers), outcomes
        visit = visits[number]
        visit.refresh_from_db()
        visit.arrival.refresh_from_db()
        assert visit.arrival.state == State.DONE
        assert visit.ended_at == visit.arrival.state_changed_at
        assert ArrivalEvent.objects.filter(arrival=visit.arrival, kind=EventKind.DONE).count() == 1
