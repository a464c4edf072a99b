"""What the database itself keeps about merging two records of one person (clinic migration
0012, visits migration 0006), whatever code asks: a sealed visit moves only from a record to
the record it was merged into by an approved merge, and nothing else about it changes; a
record is marked merged only by an approved merge, and stays so; a decided merge never
changes. Both engines; on PostgreSQL with two roles, as the application's role.
"""

import datetime as dt
import uuid

import pytest
from django.apps import apps
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone

from clinic import roles
from clinic.models import Person, PersonMerge
from tests.factories import PersonFactory, make_staff
from visits.models import Addendum, MedicationEvent, Visit

NOW = timezone.now()


@pytest.fixture
def people(site):
    return PersonFactory(site=site, name="Sam Rivera"), PersonFactory(site=site, name="Sammy")


@pytest.fixture
def staff(site):
    return (
        make_staff(site=site, roles=[roles.CLINICIAN], username="prop"),
        make_staff(site=site, roles=[roles.PRIVACY_OFFICER], username="offi"),
    )


def proposal(site, kept, duplicate, by, **fields) -> PersonMerge:
    return PersonMerge.objects.create(
        site=site,
        kept=kept,
        duplicate=duplicate,
        reason="Same person",
        snapshot={},
        nonce=uuid.uuid4(),
        proposed_by=by,
        proposed_at=NOW,
        **fields,
    )


def decide(merge, by, status=PersonMerge.Status.APPROVED) -> PersonMerge:
    PersonMerge.objects.filter(pk=merge.pk).update(status=status, decided_by=by, decided_at=NOW)
    merge.refresh_from_db()
    return merge


def sealed_visit(site, person, by) -> Visit:
    visit = Visit.objects.create(
        site=site, person=person, started_at=NOW - dt.timedelta(hours=2), opened_by=by,
        ended_at=NOW - dt.timedelta(hours=1), note="Talked about housing",
    )  # fmt: skip
    MedicationEvent.objects.create(
        visit=visit, medication="bup_nx", dose="16 mg", days_supply=7, action="prescribed",
        recorded_by=by, recorded_at=NOW,
    )  # fmt: skip
    Visit.objects.filter(pk=visit.pk).update(sealed_at=NOW)
    Addendum.objects.create(visit=visit, author=by, written_at=NOW, text="Dose corrected")
    visit.refresh_from_db()
    return visit


def refused(change) -> None:
    with pytest.raises((DatabaseError, IntegrityError)), transaction.atomic():
        change()


# --- sealed visits ------------------------------------------------------------------------------


def test_a_sealed_visit_moves_to_the_kept_record_once_its_merge_is_approved(site, people, staff):
    kept, duplicate = people
    clinician, officer = staff
    visit = sealed_visit(site, duplicate, clinician)
    merge = proposal(site, kept, duplicate, clinician)
    # Proposed is not approved: the seal holds.
    refused(lambda: Visit.objects.filter(pk=visit.pk).update(person=kept))
    decide(merge, officer)
    Visit.objects.filter(pk=visit.pk).update(person=kept)
    visit.refresh_from_db()
    assert visit.person_id == kept.pk
    assert visit.sealed_at is not None
    assert visit.medications.count() == 1  # what it recorded points at the visit: unchanged


def test_a_sealed_visit_refuses_every_other_change_even_with_an_approved_merge(site, people, staff):
    kept, duplicate = people
    clinician, officer = staff
    third = PersonFactory(site=site, name="Someone else")
    visit = sealed_visit(site, duplicate, clinician)
    decide(proposal(site, kept, duplicate, clinician), officer)
    for change in (
        # Anything else, on its own.
        lambda: Visit.objects.filter(pk=visit.pk).update(note="rewritten"),
        lambda: Visit.objects.filter(pk=visit.pk).update(sealed_at=None),
        lambda: Visit.objects.filter(pk=visit.pk).update(ended_at=NOW),
        lambda: Visit.objects.filter(pk=visit.pk).delete(),
        # The person and something else in the same statement.
        lambda: Visit.objects.filter(pk=visit.pk).update(person=kept, note="rewritten"),
        lambda: Visit.objects.filter(pk=visit.pk).update(person=kept, site=site, priorities="x"),
        # The person, to a record no approved merge names.
        lambda: Visit.objects.filter(pk=visit.pk).update(person=third),
        lambda: Visit.objects.filter(pk=visit.pk).update(person=None),
        # What the visit recorded.
        lambda: visit.medications.update(dose="32 mg"),
        lambda: visit.medications.all().delete(),
        lambda: Addendum.objects.filter(visit=visit).update(text="x"),
    ):
        refused(change)
    visit.refresh_from_db()
    assert (visit.person_id, visit.note, visit.sealed_at is not None) == (
        duplicate.pk,
        "Talked about housing",
        True,
    )


def test_a_sealed_visit_does_not_move_without_an_approved_merge_of_that_record_into_that_one(
    site, people, staff
):
    kept, duplicate = people
    clinician, officer = staff
    third = PersonFactory(site=site, name="Sam R.")
    visit = sealed_visit(site, duplicate, clinician)
    # No merge at all; a declined one; one the other way round; one into a third record.
    refused(lambda: Visit.objects.filter(pk=visit.pk).update(person=kept))
    decide(proposal(site, kept, duplicate, clinician), officer, PersonMerge.Status.DECLINED)
    refused(lambda: Visit.objects.filter(pk=visit.pk).update(person=kept))
    decide(proposal(site, duplicate, kept, clinician), officer)
    refused(lambda: Visit.objects.filter(pk=visit.pk).update(person=kept))
    decide(proposal(site, third, duplicate, clinician), officer)
    refused(lambda: Visit.objects.filter(pk=visit.pk).update(person=kept))
    Visit.objects.filter(pk=visit.pk).update(person=third)  # ... which is allowed
    visit.refresh_from_db()
    assert visit.person_id == third.pk


def test_an_unsealed_visit_is_not_affected(site, people, staff):
    kept, duplicate = people
    visit = Visit.objects.create(site=site, person=duplicate, started_at=NOW, opened_by=staff[0])
    Visit.objects.filter(pk=visit.pk).update(person=kept, note="Still open")
    visit.refresh_from_db()
    assert (visit.person_id, visit.note) == (kept.pk, "Still open")


def test_the_sqlite_seal_names_every_column_of_a_visit_today(db):
    """SQLite's trigger lists the columns "nothing else may change" (visits migration 0006):
    a column added to visits since must make it again."""
    if connection.vendor != "sqlite":
        pytest.skip("PostgreSQL's trigger compares the whole row")
    with connection.cursor() as cursor:
        cursor.execute("SELECT sql FROM sqlite_master WHERE name = 'visits_visit_sealed_update'")
        (sql,) = cursor.fetchone()
    for field in apps.get_model("visits", "Visit")._meta.concrete_fields:
        if field.column != "person_id":
            assert f'NEW."{field.column}" IS OLD."{field.column}"' in sql, field.column


# --- a merged record ---------------------------------------------------------------------------


def test_a_record_is_marked_merged_only_by_an_approved_merge_and_stays_so(site, people, staff):
    kept, duplicate = people
    clinician, officer = staff
    third = PersonFactory(site=site, name="Third")
    merge = proposal(site, kept, duplicate, clinician)
    refused(lambda: Person.objects.filter(pk=duplicate.pk).update(merged_into=kept))
    decide(merge, officer)
    refused(lambda: Person.objects.filter(pk=duplicate.pk).update(merged_into=third))
    refused(lambda: Person.objects.filter(pk=kept.pk).update(merged_into=duplicate))
    Person.objects.filter(pk=duplicate.pk).update(merged_into=kept)
    for change in (
        lambda: Person.objects.filter(pk=duplicate.pk).update(merged_into=None),
        lambda: Person.objects.filter(pk=duplicate.pk).update(merged_into=third),
        lambda: Person.objects.create(site=site, name="New", merged_into=kept),
    ):
        refused(change)
    duplicate.refresh_from_db()
    assert duplicate.merged_into_id == kept.pk
    # Its other details are ordinary: the merge does not freeze them.
    Person.objects.filter(pk=duplicate.pk).update(phone="555-0199")


# --- the merge row -----------------------------------------------------------------------------


def test_a_merge_is_proposed_first_and_never_changes_once_decided(site, people, staff):
    kept, duplicate = people
    clinician, officer = staff
    refused(
        lambda: proposal(
            site, kept, duplicate, clinician, status="approved", decided_by=officer, decided_at=NOW
        )
    )
    merge = proposal(site, kept, duplicate, clinician)
    # A proposal changes only by being decided.
    refused(lambda: PersonMerge.objects.filter(pk=merge.pk).update(reason="Something else"))
    refused(lambda: PersonMerge.objects.filter(pk=merge.pk).update(kept=duplicate, duplicate=kept))
    refused(lambda: PersonMerge.objects.filter(pk=merge.pk).update(take_from_duplicate=["name"]))
    # Four eyes, who and when: the database's own constraints.
    refused(lambda: decide(merge, clinician))
    refused(lambda: PersonMerge.objects.filter(pk=merge.pk).update(status="approved"))
    decide(merge, officer)
    for change in (
        lambda: PersonMerge.objects.filter(pk=merge.pk).update(status="declined"),
        lambda: PersonMerge.objects.filter(pk=merge.pk).update(moved={}),
        lambda: PersonMerge.objects.filter(pk=merge.pk).update(reason="x"),
        lambda: PersonMerge.objects.filter(pk=merge.pk).delete(),
    ):
        refused(change)
    merge.refresh_from_db()
    assert (merge.status, merge.decided_by_id, merge.reason) == (
        "approved",
        officer.pk,
        "Same person",
    )


def test_a_record_is_merged_once(site, people, staff):
    kept, duplicate = people
    clinician, officer = staff
    decide(proposal(site, kept, duplicate, clinician), officer)
    other = PersonFactory(site=site, name="Other")
    refused(lambda: decide(proposal(site, other, duplicate, clinician), officer))


def test_a_merge_is_two_records(site, people, staff):
    kept, _duplicate = people
    refused(lambda: proposal(site, kept, kept, staff[0]))
