"""Merging two records of one person (visits.services.merge): proposed by a clinician,
approved by the site's privacy officer, carried out in one transaction. What moves, what never
changes, what the history says, and every refusal. Both engines; on PostgreSQL with two roles
as the application's role (the append-only tables and the history may not be changed by it).
"""

import uuid

import pytest
from django.apps import apps
from django.core.exceptions import ValidationError
from django.forms.models import model_to_dict

from clinic import roles
from clinic.models import AccessLog, ChangeHistory, Person, PersonMerge
from clinic.people import with_merged
from queues import services as queue
from queues.errors import QueueError
from queues.models import ArrivalEvent
from queues.selectors import people_search
from releases.accounting import person_accounting
from releases.models import Consent, DisclosureLog, EmergencyRelease
from tests.factories import PersonFactory, check_in, make_staff
from tests.visits.merging import propose, two_records
from visits.models import Addendum, Visit
from visits.selectors.history import person_history
from visits.selectors.people import access_log_page, person_overview, person_timeline
from visits.services import merge as services

# The append-only tables, and the other rows that never move; each is compared in full.
UNCHANGED = (AccessLog, ChangeHistory, DisclosureLog, EmergencyRelease, ArrivalEvent, Addendum)


@pytest.fixture
def records(site, front_desk, clinician, privacy_officer):
    return two_records(
        site=site, front_desk=front_desk, clinician=clinician, privacy_officer=privacy_officer
    )


def everything(model) -> dict:
    return {row.pk: model_to_dict(row) for row in model.objects.order_by("pk")}


def code_of(info) -> str:
    error = info.value
    if hasattr(error, "error_dict"):
        return next(e.code for errors in error.error_dict.values() for e in errors)
    return error.code


# --- the whole flow ------------------------------------------------------------------------------


def test_approving_moves_everything_that_may_change_to_the_kept_record(
    records, clinician, privacy_officer
):
    kept, duplicate = records.kept, records.duplicate
    merge = propose(records, by=clinician, take_from_duplicate=["phone"], append_what_helps=True)
    assert merge.status == PersonMerge.Status.PROPOSED
    assert Visit.objects.filter(person=duplicate).count() == 2  # nothing moved yet

    merge = services.person_merge_approve(merge=merge, by=privacy_officer)

    assert (merge.status, merge.decided_by, merge.proposed_by) == (
        PersonMerge.Status.APPROVED,
        privacy_officer,
        clinician,
    )
    assert merge.moved == records.rows
    for table, model in services.MOVED:
        now_kept = set(model.objects.filter(person=kept).values_list("pk", flat=True))
        assert now_kept >= set(records.rows[table]), table
        assert not model.objects.filter(person=duplicate).exists(), table
    duplicate.refresh_from_db()
    kept.refresh_from_db()
    assert duplicate.merged_into == kept
    # The kept record's own details, but B's phone as chosen, and nothing that helps is lost.
    assert (kept.name, kept.phone, kept.what_helps) == (
        "Sam Rivera",
        "555-0147",
        "Likes the quiet room\nHas a dog called Pepper",
    )
    # B's record itself is left as it was, marked merged.
    assert (duplicate.name, duplicate.phone, duplicate.what_helps) == (
        "Sammy",
        "555-0147",
        "Has a dog called Pepper",
    )


def test_sealed_visits_move_still_sealed_with_everything_they_recorded(
    records, clinician, privacy_officer
):
    sealed = Visit.objects.get(person=records.duplicate, sealed_at__isnull=False)
    before = (sealed.sealed_at, sealed.note, sealed.medications.count(), sealed.tox_screens.count())
    services.person_merge_approve(merge=propose(records, by=clinician), by=privacy_officer)
    sealed.refresh_from_db()
    assert sealed.person == records.kept
    assert (
        sealed.sealed_at,
        sealed.note,
        sealed.medications.count(),
        sealed.tox_screens.count(),
    ) == before
    assert sealed.addenda.count() == 1


def test_audit_rows_never_change_and_stay_with_the_second_record(
    records, clinician, privacy_officer
):
    before = {model: everything(model) for model in UNCHANGED}
    consents = everything(Consent)
    services.person_merge_approve(merge=propose(records, by=clinician), by=privacy_officer)
    for model in UNCHANGED:
        after = everything(model)
        # Nothing changed or went; only the merge's own history and logging was added.
        assert {pk: after[pk] for pk in before[model]} == before[model], model
    assert everything(Consent) == consents
    duplicate = records.duplicate
    assert Consent.objects.get(pk=records.stays["releases_consent"][0]).person == duplicate
    assert EmergencyRelease.objects.get().person == duplicate
    assert AccessLog.objects.filter(person=duplicate).exists()
    assert DisclosureLog.objects.filter(person=duplicate).count() == 3


def test_the_kept_record_reads_the_second_records_audit_rows(
    records, clinician, privacy_officer, site
):
    kept, duplicate = records.kept, records.duplicate
    services.person_merge_approve(merge=propose(records, by=clinician), by=privacy_officer)
    assert with_merged(kept) == [kept.pk, duplicate.pk]
    log = access_log_page(site=site, person=kept).object_list
    assert {entry.person_id for entry in log} == {duplicate.pk}
    accounting = person_accounting(person=kept)
    lines = accounting["disclosures"] + accounting["attempts"]
    assert {line.row.person_id for line in lines} == {duplicate.pk}
    assert {line.path for line in accounting["disclosures"]} == {"emergency_release"}
    history = person_history(person=kept, limit=500)
    assert {c.person_id for c in history.changes} == {kept.pk, duplicate.pk}
    assert len(person_timeline(person=kept)) == 3
    assert person_overview(person=kept).last_here is not None


def test_every_table_that_points_at_a_person_moves_or_stays_on_purpose():
    """A new table pointing at people must be decided about here (visits.services.merge)."""
    pointing = {
        model._meta.db_table
        for model in apps.get_models(include_auto_created=True)
        for f in model._meta.concrete_fields
        if f.is_relation and f.related_model is Person
    }
    decided = {table for table, _model in services.MOVED} | set(services.STAYS)
    # The person's own merge columns, and the merge record itself.
    assert pointing - decided == {"clinic_person", "clinic_personmerge"}
    assert decided <= pointing


# --- saying so in both histories ----------------------------------------------------------------


def test_the_history_says_what_moved_for_the_kept_record_and_the_merge_in_both(
    records, clinician, privacy_officer
):
    kept, duplicate = records.kept, records.duplicate
    since = ChangeHistory.objects.order_by("-pk").values_list("pk", flat=True).first()
    merge = propose(records, by=clinician, take_from_duplicate=["phone"])
    services.person_merge_approve(merge=merge, by=privacy_officer)
    rows = list(ChangeHistory.objects.filter(pk__gt=since).order_by("pk"))

    def of(table, **where):
        return [
            r
            for r in rows
            if r.table_name == table and all(getattr(r, k) == v for k, v in where.items())
        ]

    # The merge itself: proposed by the clinician, approved by the officer, about B.
    inserted, approved = of("clinic_personmerge")
    assert (inserted.operation, inserted.actor_id, inserted.person_id) == (
        "insert",
        None,  # services called outside a request: nobody named (a request names them)
        duplicate.pk,
    )
    assert approved.operation == "update"
    assert approved.changes["status"] == ["proposed", "approved"]
    # B marked merged (B's history); A's new phone (A's history).
    [marked] = of("clinic_person", row_id=duplicate.pk)
    assert marked.changes == {"merged_into_id": [None, kept.pk]}
    assert marked.person_id == duplicate.pk
    [phone] = of("clinic_person", row_id=kept.pk)
    assert phone.changes == {"phone": ["", "555-0147"]}
    # Every moved visit, goal and appointment: for A now.
    for table in ("visits_visit", "visits_goal", "visits_appointment"):
        moved = of(table)
        assert sorted(r.row_id for r in moved) == records.rows[table], table
        assert {r.person_id for r in moved} == {kept.pk}
        assert all(r.changes == {"person_id": [duplicate.pk, kept.pk]} for r in moved)

    assert [line.summary for line in person_history(person=kept).merges] == [
        f"Sammy (record #{duplicate.pk}) was merged into this record."
    ]
    assert [line.summary for line in person_history(person=duplicate).merges] == [
        f"This record was merged into Sam Rivera (record #{kept.pk})."
    ]
    # B's own history is still B's, and part of A's.
    b_rows = {c.pk for c in person_history(person=duplicate, limit=500).changes}
    a_rows = {c.pk for c in person_history(person=kept, limit=500).changes}
    assert b_rows and b_rows <= a_rows


# --- refusals ------------------------------------------------------------------------------------


def test_a_record_cannot_be_merged_into_itself(records, clinician):
    records.kept = records.duplicate
    with pytest.raises(ValidationError) as info:
        propose(records, by=clinician)
    assert code_of(info) == "same_person"


def test_both_records_must_be_of_this_site(records, clinician, other_site):
    records.kept = PersonFactory(site=other_site, name="Sam Rivera")
    with pytest.raises(ValidationError) as info:
        propose(records, by=clinician)
    assert code_of(info) == "other_site"


def test_a_merged_record_is_not_merged_again_either_way(records, clinician, privacy_officer, site):
    services.person_merge_approve(merge=propose(records, by=clinician), by=privacy_officer)
    third = PersonFactory(site=site, name="Sam R.")
    for kept, duplicate in ((third, records.duplicate), (records.duplicate, third)):
        records.kept, records.duplicate = kept, duplicate
        with pytest.raises(ValidationError) as info:
            propose(records, by=clinician)
        assert code_of(info) == "already_merged"


def test_someone_in_line_is_not_merged_away_until_they_are_seen_or_leave(
    records, clinician, privacy_officer, front_desk, site
):
    arrival = check_in(site=site, by=front_desk, person=records.duplicate)
    with pytest.raises(ValidationError) as info:
        propose(records, by=clinician)
    assert code_of(info) == "in_line"
    assert arrival.ticket in info.value.messages[0]
    queue.arrival_mark_left(arrival=arrival, by=front_desk, revision=None)
    merge = propose(records, by=clinician)
    # In line again by the time the officer decides: refused then too.
    again = check_in(site=site, by=front_desk, person=records.duplicate)
    with pytest.raises(ValidationError) as info:
        services.person_merge_approve(merge=merge, by=privacy_officer)
    assert code_of(info) == "in_line"
    queue.arrival_mark_left(arrival=again, by=front_desk, revision=None)
    assert services.person_merge_approve(merge=merge, by=privacy_officer).status == "approved"


def test_the_kept_record_may_be_here_now(records, clinician, privacy_officer, front_desk, site):
    check_in(site=site, by=front_desk, person=records.kept)
    merge = propose(records, by=clinician)
    assert services.person_merge_approve(merge=merge, by=privacy_officer).status == "approved"


def test_whoever_proposed_cannot_approve_or_decline(records, site, privacy_officer):
    # Even a privacy officer who is also a clinician there: four eyes.
    both = make_staff(site=site, roles=[roles.CLINICIAN, roles.PRIVACY_OFFICER], username="bo")
    merge = propose(records, by=both)
    for decide in (services.person_merge_approve, services.person_merge_decline):
        with pytest.raises(ValidationError) as info:
            decide(merge=merge, by=both)
        assert code_of(info) == "own_proposal"
    assert services.person_merge_approve(merge=merge, by=privacy_officer).status == "approved"


@pytest.mark.parametrize("who", ["second_clinician", "front_desk", "director"])
def test_only_the_privacy_officer_decides(records, clinician, request, who):
    merge = propose(records, by=clinician)
    for decide in (services.person_merge_approve, services.person_merge_decline):
        with pytest.raises(ValidationError) as info:
            decide(merge=merge, by=request.getfixturevalue(who))
        assert code_of(info) == "not_officer"
    merge.refresh_from_db()
    assert merge.status == "proposed"


def test_a_privacy_officer_of_another_site_does_not_decide(records, clinician, other_site):
    elsewhere = make_staff(site=other_site, roles=[roles.PRIVACY_OFFICER], username="pat")
    with pytest.raises(ValidationError) as info:
        services.person_merge_approve(merge=propose(records, by=clinician), by=elsewhere)
    assert code_of(info) == "not_officer"


def test_a_double_tap_proposes_once_and_approves_once(records, clinician, privacy_officer):
    nonce = uuid.uuid4()
    first = propose(records, by=clinician, nonce=nonce)
    assert propose(records, by=clinician, nonce=nonce) == first
    assert PersonMerge.objects.count() == 1
    services.person_merge_approve(merge=first, by=privacy_officer)
    history = ChangeHistory.objects.count()
    again = services.person_merge_approve(merge=first, by=privacy_officer)
    assert (again.pk, again.status) == (first.pk, "approved")
    assert ChangeHistory.objects.count() == history  # the second tap changed nothing


def test_a_second_proposal_waits_for_the_first_decision(records, clinician, second_clinician):
    propose(records, by=clinician)
    with pytest.raises(ValidationError) as info:
        propose(records, by=second_clinician)
    assert code_of(info) == "already_proposed"


def test_a_decision_is_made_once(records, clinician, privacy_officer, site):
    other_officer = make_staff(site=site, roles=[roles.PRIVACY_OFFICER], username="oli")
    merge = services.person_merge_decline(
        merge=propose(records, by=clinician), by=privacy_officer, reason="Two siblings"
    )
    for decide in (services.person_merge_approve, services.person_merge_decline):
        with pytest.raises(ValidationError) as info:
            decide(merge=merge, by=other_officer)
        assert code_of(info) == "already_decided"
    with pytest.raises(ValidationError) as info:
        services.person_merge_approve(merge=merge, by=privacy_officer)
    assert code_of(info) == "already_decided"


def test_declining_moves_nothing_and_a_new_proposal_can_follow(records, clinician, privacy_officer):
    merge = services.person_merge_decline(
        merge=propose(records, by=clinician), by=privacy_officer, reason="Two siblings"
    )
    assert (merge.status, merge.decline_reason, merge.moved) == ("declined", "Two siblings", {})
    records.duplicate.refresh_from_db()
    assert records.duplicate.merged_into is None
    assert Visit.objects.filter(person=records.duplicate).count() == 2
    assert propose(records, by=clinician).status == "proposed"


def test_a_page_older_than_the_records_cannot_propose(records, clinician):
    seen = services.merge_fingerprint(records.kept, records.duplicate)
    Person.objects.filter(pk=records.kept.pk).update(phone="555-0100")
    with pytest.raises(ValidationError) as info:
        propose(records, by=clinician, seen=seen)
    assert code_of(info) == "stale"


def test_a_proposal_older_than_the_records_is_not_approved(records, clinician, privacy_officer):
    merge = propose(records, by=clinician)
    Person.objects.filter(pk=records.duplicate.pk).update(name="Sam")
    with pytest.raises(ValidationError) as info:
        services.person_merge_approve(merge=merge, by=privacy_officer)
    assert code_of(info) == "stale"
    merge.refresh_from_db()
    assert merge.status == "proposed"
    assert Visit.objects.filter(person=records.duplicate).count() == 2


def test_what_helps_that_would_grow_too_long_is_refused_for_its_field(records, clinician):
    Person.objects.filter(pk=records.kept.pk).update(what_helps="x" * 990)
    with pytest.raises(ValidationError) as info:
        propose(records, by=clinician, append_what_helps=True)
    assert list(info.value.error_dict) == ["append_what_helps"]
    assert code_of(info) == "what_helps_too_long"


# --- after the merge -----------------------------------------------------------------------------


def test_the_merged_record_is_no_longer_offered_at_check_in(
    records, clinician, privacy_officer, front_desk, site
):
    services.person_merge_approve(merge=propose(records, by=clinician), by=privacy_officer)
    assert people_search(site=site, query="Sam") == [records.kept]
    with pytest.raises(QueueError) as info:
        check_in(site=site, by=front_desk, person=records.duplicate)
    assert info.value.code == "person_merged"


def test_a_record_merged_into_one_merged_later_still_belongs_to_the_kept_record(
    records, clinician, privacy_officer, site
):
    """C into B, then B into A: C's records moved to B, then on to A; C's audit rows stay
    with C, and A's reads find them."""
    third = PersonFactory(site=site, name="S. Rivera")
    visit = Visit.objects.create(site=site, person=third, started_at=records.kept.created_at,
                                 opened_by=clinician)  # fmt: skip
    first = services.person_merge_propose(
        site=site, kept=records.duplicate, duplicate=third, by=clinician, reason="Same person",
        seen=services.merge_fingerprint(records.duplicate, third), nonce=uuid.uuid4(),
    )  # fmt: skip
    services.person_merge_approve(merge=first, by=privacy_officer)
    services.person_merge_approve(merge=propose(records, by=clinician), by=privacy_officer)
    visit.refresh_from_db()
    assert visit.person == records.kept
    assert with_merged(records.kept) == [records.kept.pk, records.duplicate.pk, third.pk]
