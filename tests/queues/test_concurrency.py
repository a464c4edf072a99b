"""Two clinicians pressing Call next at the same moment never get the same person.

Real threads, each with its own database connection, released together by a barrier for every
round: on PostgreSQL (row locks, SKIP LOCKED) and on the SQLite default (IMMEDIATE transactions,
a file database). A double tap on Check in from two screens at once still creates one arrival.
"""

import threading
import uuid
from collections import Counter
from collections.abc import Callable

import pytest
from django.db import connection

from clinic import roles
from clinic.models import Discipline, Person
from queues import services
from queues.errors import QueueError
from queues.models import Arrival, ArrivalEvent, EventKind, State
from queues.selectors import queue_version
from tests.factories import PersonFactory, check_in, make_staff

# PostgreSQL: several hundred people waiting, drained by 8 clinicians in 50 barrier rounds.
POSTGRES_THREADS = 8
POSTGRES_ROUNDS = 50
POSTGRES_PEOPLE = POSTGRES_THREADS * POSTGRES_ROUNDS  # 400
# SQLite: the same race, smaller, to keep the suite quick.
SQLITE_THREADS = 6
SQLITE_ROUNDS = 20
SQLITE_PEOPLE = SQLITE_THREADS * SQLITE_ROUNDS  # 120
# Double taps: rounds of every thread checking in with one shared nonce (or one known person).
CHECK_IN_ROUNDS = 20

BARRIER_TIMEOUT = 60


def run_in_threads(count: int, rounds: int, work: Callable[[int, int], object]) -> list[list]:
    """Run `work(thread_index, round)` in `count` threads, all starting each round together.

    Returns, per round, the results in no particular order; an exception is a result too.
    """
    barrier = threading.Barrier(count, timeout=BARRIER_TIMEOUT)
    results: list[list] = [[] for _ in range(rounds)]
    lock = threading.Lock()

    def thread(index: int) -> None:
        try:
            for number in range(rounds):
                barrier.wait()
                try:
                    outcome = work(index, number)
                except Exception as exc:  # recorded and asserted on by the test
                    outcome = exc
                with lock:
                    results[number].append((index, outcome))
        except threading.BrokenBarrierError:
            pass
        finally:
            connection.close()

    threads = [threading.Thread(target=thread, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=BARRIER_TIMEOUT * 3)
    assert not any(t.is_alive() for t in threads), "a thread is stuck"
    assert not barrier.broken, "a thread never reached the barrier"
    return results


def clinicians(site, count: int) -> list:
    return [
        make_staff(
            site=site,
            roles=[roles.CLINICIAN],
            username=f"clinician{i}",
            discipline=Discipline.NURSE,
        )
        for i in range(count)
    ]


def assert_call_next_never_gives_two_clinicians_the_same_person(
    site, front_desk, *, threads: int, rounds: int
):
    people = threads * rounds
    arrivals = [
        check_in(
            site=site,
            by=front_desk,
            name=f"Person {i:03d}",
            urgent=i % 9 == 4,
            urgent_reason="bleeding" if i % 9 == 4 else "",
        )
        for i in range(people)
    ]
    line = sorted(arrivals, key=lambda a: (not a.urgent, a.arrived_at, a.pk))
    team = clinicians(site, threads)
    version = queue_version(site.pk)

    def call_next(index: int, number: int):
        if number == rounds:  # one more round once everyone has been called
            try:
                services.arrival_call_next(site=site, by=team[index])
            except QueueError as error:
                return error.code
            return "called someone who was already called"
        return services.arrival_call_next(site=site, by=team[index]).pk

    results = run_in_threads(threads, rounds + 1, call_next)

    outcomes = [outcome for round_results in results for _, outcome in round_results]
    errors = [o for o in outcomes if isinstance(o, Exception)]
    assert errors == []
    called = [o for round_results in results[:rounds] for _, o in round_results]
    assert len(called) == people
    assert Counter(called).most_common(1)[0][1] == 1, "someone was called twice"
    assert set(called) == {a.pk for a in arrivals}
    assert [o for _, o in results[rounds]] == ["nobody_waiting"] * threads
    # Each round called exactly the next people in line.
    for number, round_results in enumerate(results[:rounds]):
        expected = {a.pk for a in line[number * threads : (number + 1) * threads]}
        assert {pk for _, pk in round_results} == expected, f"round {number}"
    # Each clinician was given the people they were told they had.
    for index, user in enumerate(team):
        theirs = [pk for r in results[:rounds] for i, pk in r if i == index]
        assert Arrival.objects.filter(pk__in=theirs, staff=user, state=State.CALLED).count() == (
            len(theirs)
        )
    assert ArrivalEvent.objects.filter(kind=EventKind.CALLED).count() == people
    assert not Arrival.objects.filter(state=State.WAITING).exists()
    assert queue_version(site.pk) == version + people


def assert_a_double_tap_on_two_screens_checks_in_once(site, front_desk, *, threads: int):
    nonces = [uuid.uuid4() for _ in range(CHECK_IN_ROUNDS)]

    def tap(index: int, number: int):
        return check_in(site=site, by=front_desk, name=f"Tap {number}", nonce=nonces[number]).pk

    results = run_in_threads(threads, CHECK_IN_ROUNDS, tap)

    for number, round_results in enumerate(results):
        outcomes = [o for _, o in round_results]
        assert not [o for o in outcomes if isinstance(o, Exception)]
        assert len(set(outcomes)) == 1, f"round {number} made {len(set(outcomes))} arrivals"
    assert Arrival.objects.count() == CHECK_IN_ROUNDS
    assert Person.objects.count() == CHECK_IN_ROUNDS
    assert ArrivalEvent.objects.count() == CHECK_IN_ROUNDS
    # Every arrival its own number. The taps that lost a race took a number before they lost
    # (queues/services.py: arrival_check_in), so numbers may be skipped, never shared.
    numbers = list(Arrival.objects.values_list("ticket_number", flat=True))
    assert len(set(numbers)) == CHECK_IN_ROUNDS
    assert queue_version(site.pk) == CHECK_IN_ROUNDS


def assert_one_person_checked_in_on_two_screens_is_in_line_once(site, front_desk, *, threads):
    people = [PersonFactory(site=site, name=f"Known {n}") for n in range(CHECK_IN_ROUNDS)]

    def check_in_known(index: int, number: int):
        try:
            return check_in(site=site, by=front_desk, person=people[number]).pk
        except QueueError as error:
            return error.code

    results = run_in_threads(threads, CHECK_IN_ROUNDS, check_in_known)

    for number, round_results in enumerate(results):
        outcomes = [o for _, o in round_results]
        assert not [o for o in outcomes if isinstance(o, Exception)], outcomes
        assert outcomes.count("already_here") == threads - 1, f"round {number}: {outcomes}"
        assert Arrival.objects.filter(person=people[number]).count() == 1
    assert ArrivalEvent.objects.count() == CHECK_IN_ROUNDS


# --- PostgreSQL ---------------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_call_next_never_gives_two_clinicians_the_same_person_on_postgres(site, front_desk):
    assert_call_next_never_gives_two_clinicians_the_same_person(
        site, front_desk, threads=POSTGRES_THREADS, rounds=POSTGRES_ROUNDS
    )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_double_tap_on_check_in_creates_one_arrival_on_postgres(site, front_desk):
    assert_a_double_tap_on_two_screens_checks_in_once(site, front_desk, threads=POSTGRES_THREADS)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_one_person_checked_in_on_several_screens_at_once_is_in_line_once_on_postgres(
    site, front_desk
):
    assert_one_person_checked_in_on_two_screens_is_in_line_once(
        site, front_desk, threads=POSTGRES_THREADS
    )


# --- SQLite -------------------------------------------------------------------------------------


@pytest.mark.sqlite
@pytest.mark.django_db(transaction=True)
def test_call_next_never_gives_two_clinicians_the_same_person_on_sqlite(site, front_desk):
    assert_call_next_never_gives_two_clinicians_the_same_person(
        site, front_desk, threads=SQLITE_THREADS, rounds=SQLITE_ROUNDS
    )


@pytest.mark.sqlite
@pytest.mark.django_db(transaction=True)
def test_a_double_tap_on_check_in_creates_one_arrival_on_sqlite(site, front_desk):
    assert_a_double_tap_on_two_screens_checks_in_once(site, front_desk, threads=SQLITE_THREADS)


@pytest.mark.sqlite
@pytest.mark.django_db(transaction=True)
def test_one_person_checked_in_on_several_screens_at_once_is_in_line_once_on_sqlite(
    site, front_desk
):
    assert_one_person_checked_in_on_two_screens_is_in_line_once(
        site, front_desk, threads=SQLITE_THREADS
    )
