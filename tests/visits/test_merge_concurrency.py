"""Deciding a merge while the second record's person checks in, and two privacy officers
approving at once: real threads with their own connections, released together each round. On
PostgreSQL (row locks) and on SQLite (IMMEDIATE transactions). Whatever the order, a record is
never merged away while its person is in line, and a merge is carried out once."""

import uuid

import pytest
from django.core.exceptions import ValidationError

from clinic import roles
from clinic.models import PersonMerge
from queues.errors import QueueError
from queues.models import ACTIVE_STATES, Arrival
from tests.factories import PersonFactory, check_in, make_staff
from tests.queues.test_concurrency import run_in_threads
from visits.models import Visit
from visits.services import merge as services

ROUNDS = 12


def proposals(site, clinician, rounds: int) -> list[PersonMerge]:
    merges = []
    for number in range(rounds):
        kept = PersonFactory(site=site, name=f"Kept {number}")
        duplicate = PersonFactory(site=site, name=f"Second {number}")
        Visit.objects.create(
            site=site, person=duplicate, started_at=kept.created_at, opened_by=clinician
        )
        seen = services.merge_fingerprint(kept, duplicate)
        merges.append(
            services.person_merge_propose(
                site=site,
                kept=kept,
                duplicate=duplicate,
                by=clinician,
                reason="Same person",
                seen=seen,
                nonce=uuid.uuid4(),
            )
        )
    return merges


def outcome(work):
    try:
        return work()
    except (ValidationError, QueueError) as error:
        return error.code if hasattr(error, "code") and error.code else error.messages


@pytest.mark.django_db(transaction=True)
def test_a_check_in_and_an_approval_at_once_never_merge_someone_in_line(
    site, clinician, front_desk, privacy_officer
):
    officer2 = make_staff(site=site, roles=[roles.PRIVACY_OFFICER], username="oli")
    desk2 = make_staff(site=site, roles=[roles.FRONT_DESK], username="dee")
    merges = proposals(site, clinician, ROUNDS)

    def work(index: int, number: int):
        merge = merges[number]
        if index < 2:
            officer = (privacy_officer, officer2)[index]
            return outcome(lambda: services.person_merge_approve(merge=merge, by=officer).status)
        desk = (front_desk, desk2)[index - 2]
        return outcome(lambda: check_in(site=site, by=desk, person=merge.duplicate).ticket)

    results = run_in_threads(4, ROUNDS, work)

    for number, round_results in enumerate(results):
        merge = merges[number]
        merge.refresh_from_db()
        got = dict(round_results)
        assert not [o for o in got.values() if isinstance(o, Exception)], got
        in_line = Arrival.objects.filter(person=merge.duplicate, state__in=ACTIVE_STATES)
        merge.duplicate.refresh_from_db()
        if merge.status == "approved":
            # Approved first: nobody got the second record in line afterwards.
            assert not in_line.exists(), got
            assert merge.duplicate.merged_into_id == merge.kept_id
            assert {got[2], got[3]} == {"person_merged"}, got
            assert sorted([got[0], got[1]]) == ["already_decided", "approved"], got
            assert Visit.objects.filter(person=merge.kept).count() == 1
        else:
            # Checked in first: the person is in line once, and nothing was merged.
            assert in_line.count() == 1, got
            assert merge.duplicate.merged_into_id is None
            assert {got[0], got[1]} == {"in_line"}, got
            assert [got[2], got[3]].count("already_here") == 1, got
            assert in_line.get().ticket in (got[2], got[3])
            assert Visit.objects.filter(person=merge.duplicate).count() == 1
