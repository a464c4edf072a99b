"""Visit services: opening (queue, direct, anonymous), the record while open, read-only once
closed, addenda, medication events and their bad input, and agreement with the queue."""

from datetime import timedelta

import pytest
from django.utils import timezone

from clinic.models import Discipline
from queues import services as queue
from queues.errors import QueueError
from queues.models import State
from tests.factories import PersonFactory, ServiceFactory, check_in
from visits.errors import VisitError
from visits.models import Addendum, Medication, MedicationEvent, Visit, VisitParticipant
from visits.services import visits as services

pytestmark = pytest.mark.django_db

BUP = Medication.BUPRENORPHINE_NALOXONE
PRESCRIBED = MedicationEvent.Action.PRESCRIBED


def started_visit(site, front_desk, clinician, **kwargs) -> Visit:
    arrival = check_in(site=site, by=front_desk, name="Marcus", **kwargs)
    queue.arrival_start(arrival=arrival, by=clinician, revision=None)
    arrival.refresh_from_db()
    return arrival.visit


@pytest.fixture
def visit(site, front_desk, clinician):
    return started_visit(site, front_desk, clinician)


def add_medication(visit, by, **overrides):
    fields = {"medication": BUP, "dose": "16 mg daily", "days_supply": 7, "action": PRESCRIBED}
    return services.visit_add_medication(visit=visit, by=by, **(fields | overrides))


# --- opening ------------------------------------------------------------------------------------


def test_start_from_the_queue_opens_a_visit_with_the_clinician_and_their_discipline(visit):
    assert visit.is_open
    assert visit.origin == Visit.Origin.QUEUE
    assert visit.person.name == "Marcus"
    [participant] = visit.participants.all()
    assert participant.user.username == "alex"
    assert participant.discipline == Discipline.NURSE_PRACTITIONER


def test_direct_visit_for_a_known_person_records_services_and_starts_now(site, clinician, service):
    person = PersonFactory(site=site, name="Jess")
    before = timezone.now()
    visit = services.visit_open_direct(
        site=site,
        by=clinician,
        origin=Visit.Origin.OUTREACH,
        person=person,
        services=[service],
        priorities="Get my ID back",
    )
    assert visit.person == person
    assert visit.arrival is None
    assert visit.started_at >= before
    assert visit.is_open
    assert list(visit.services.all()) == [service]
    assert visit.participants.get().user == clinician


def test_anonymous_quick_contact_needs_no_name_and_can_be_closed_at_once(site, clinician):
    naloxone = ServiceFactory(site=site, name="Naloxone kit")
    start = timezone.now() - timedelta(minutes=3)
    visit = services.visit_open_direct(
        site=site,
        by=clinician,
        origin=Visit.Origin.QUICK,
        services=[naloxone],
        started_at=start,
        ended_at=start + timedelta(minutes=2),
    )
    assert visit.person is None
    assert not visit.is_open
    assert list(visit.services.all()) == [naloxone]


@pytest.mark.parametrize(
    ("shift_start", "shift_end", "code"),
    [
        (timedelta(0), timedelta(minutes=-1), "ends_before_start"),
        (timedelta(hours=2), None, "starts_in_future"),
        (timedelta(0), timedelta(hours=3), "ends_in_future"),
    ],
)
def test_direct_visit_with_impossible_times_is_refused_and_nothing_saved(
    site, clinician, shift_start, shift_end, code
):
    start = timezone.now() + shift_start
    end = None if shift_end is None else start + shift_end
    with pytest.raises(VisitError) as error:
        services.visit_open_direct(
            site=site, by=clinician, origin=Visit.Origin.QUICK, started_at=start, ended_at=end
        )
    assert error.value.code == code
    assert not Visit.objects.exists()


def test_direct_visit_refuses_another_sites_person_and_service(site, other_site, clinician):
    with pytest.raises(VisitError) as error:
        services.visit_open_direct(
            site=site,
            by=clinician,
            origin=Visit.Origin.QUICK,
            person=PersonFactory(site=other_site),
        )
    assert error.value.code == "unknown_person"
    with pytest.raises(VisitError) as error:
        services.visit_open_direct(
            site=site,
            by=clinician,
            origin=Visit.Origin.QUICK,
            services=[ServiceFactory(site=other_site)],
        )
    assert error.value.code == "unknown_service"
    with pytest.raises(VisitError) as error:
        services.visit_open_direct(site=site, by=clinician, origin=Visit.Origin.QUEUE)
    assert error.value.code == "unknown_origin"
    assert not Visit.objects.exists()


# --- while open ---------------------------------------------------------------------------------


def test_participant_records_services_priorities_and_note(visit, clinician, service):
    services.visit_update(
        visit=visit,
        by=clinician,
        services=[service],
        priorities="Housing first, then my foot",
        note="Wound on left foot cleaned and dressed.",
    )
    visit.refresh_from_db()
    assert visit.priorities == "Housing first, then my foot"
    assert visit.note == "Wound on left foot cleaned and dressed."
    assert list(visit.services.all()) == [service]


def test_a_team_member_must_join_before_recording_and_joining_records_their_discipline(
    visit, second_clinician
):
    with pytest.raises(VisitError) as error:
        services.visit_update(
            visit=visit, by=second_clinician, services=[], priorities="", note="hello"
        )
    assert error.value.code == "not_participant"

    services.visit_join(visit=visit, by=second_clinician)
    services.visit_join(visit=visit, by=second_clinician)  # twice is harmless

    participant = VisitParticipant.objects.get(visit=visit, user=second_clinician)
    assert participant.discipline == Discipline.PEER_NAVIGATOR
    services.visit_update(visit=visit, by=second_clinician, services=[], priorities="", note="hi")
    visit.refresh_from_db()
    assert visit.note == "hi"


def test_saving_over_someone_elses_newer_save_is_refused_so_no_text_is_lost(
    visit, clinician, second_clinician
):
    services.visit_join(visit=visit, by=second_clinician)
    base = services.visit_fingerprint(visit)
    services.visit_update(
        visit=visit, by=second_clinician, services=[], priorities="", note="Sam's words", base=base
    )
    with pytest.raises(VisitError) as error:
        services.visit_update(
            visit=visit, by=clinician, services=[], priorities="", note="Alex's words", base=base
        )
    assert error.value.code == "changed_elsewhere"
    visit.refresh_from_db()
    assert visit.note == "Sam's words"


def test_services_from_another_site_are_refused(visit, clinician, other_site):
    with pytest.raises(VisitError) as error:
        services.visit_update(
            visit=visit,
            by=clinician,
            services=[ServiceFactory(site=other_site)],
            priorities="",
            note="x",
        )
    assert error.value.code == "unknown_service"
    visit.refresh_from_db()
    assert visit.note == ""


def test_too_long_note_is_refused(visit, clinician):
    with pytest.raises(VisitError) as error:
        services.visit_update(
            visit=visit, by=clinician, services=[], priorities="", note="x" * 20001
        )
    assert error.value.code == "too_long"


# --- ending -------------------------------------------------------------------------------------


def test_ending_a_queue_visit_finishes_the_arrival_so_board_and_visit_agree(visit, clinician):
    services.visit_end(visit=visit, by=clinician)
    visit.refresh_from_db()
    visit.arrival.refresh_from_db()
    assert not visit.is_open
    assert visit.arrival.state == State.DONE
    assert visit.ended_at == visit.arrival.state_changed_at


def test_save_and_end_saves_the_note_and_ends(visit, clinician):
    services.visit_update(
        visit=visit, by=clinician, services=[], priorities="", note="ok", end=True
    )
    visit.refresh_from_db()
    assert visit.note == "ok"
    assert not visit.is_open
    assert visit.arrival.state == State.DONE


def test_done_on_the_board_closes_the_visit(visit, clinician):
    queue.arrival_finish(arrival=visit.arrival, by=clinician, revision=None)
    visit.refresh_from_db()
    assert not visit.is_open


def test_ending_a_direct_visit_sets_ended_at(site, clinician):
    visit = services.visit_open_direct(site=site, by=clinician, origin=Visit.Origin.OUTREACH)
    services.visit_end(visit=visit, by=clinician)
    visit.refresh_from_db()
    assert visit.ended_at is not None and visit.ended_at >= visit.started_at


def test_only_participants_end_a_visit(visit, second_clinician):
    with pytest.raises(VisitError) as error:
        services.visit_end(visit=visit, by=second_clinician)
    assert error.value.code == "not_participant"
    visit.refresh_from_db()
    assert visit.is_open


# --- closed: read-only, addenda -----------------------------------------------------------------


def test_closed_visit_is_read_only_for_every_edit(visit, clinician, second_clinician, service):
    services.visit_update(visit=visit, by=clinician, services=[], priorities="p", note="n")
    services.visit_end(visit=visit, by=clinician)
    attempts = [
        lambda: services.visit_update(
            visit=visit, by=clinician, services=[service], priorities="x", note="changed"
        ),
        lambda: add_medication(visit, clinician),
        lambda: services.visit_end(visit=visit, by=clinician),
        lambda: services.visit_join(visit=visit, by=second_clinician),
    ]
    for attempt in attempts:
        with pytest.raises(VisitError) as error:
            attempt()
        assert error.value.code == "visit_closed"
    visit.refresh_from_db()
    assert (visit.note, visit.priorities) == ("n", "p")
    assert not visit.services.exists()
    assert not visit.medications.exists()
    assert visit.participants.count() == 1


def test_addendum_on_a_closed_visit_keeps_author_and_time(visit, clinician, second_clinician):
    services.visit_end(visit=visit, by=clinician)
    # Any care-team member may add one, not only those who took part.
    addendum = services.visit_add_addendum(
        visit=visit, by=second_clinician, text="  Lab result came back: HCV negative.  "
    )
    assert addendum.author == second_clinician
    assert addendum.text == "Lab result came back: HCV negative."
    assert addendum.written_at is not None


def test_addendum_refused_while_open_and_when_empty(visit, clinician):
    with pytest.raises(VisitError) as error:
        services.visit_add_addendum(visit=visit, by=clinician, text="later")
    assert error.value.code == "visit_still_open"
    services.visit_end(visit=visit, by=clinician)
    with pytest.raises(VisitError) as error:
        services.visit_add_addendum(visit=visit, by=clinician, text="   ")
    assert error.value.code == "addendum_empty"
    assert not Addendum.objects.exists()


# --- medication events --------------------------------------------------------------------------


def test_medication_event_is_recorded_on_an_open_visit(visit, clinician):
    event = add_medication(visit, clinician, days_supply=28, action="dispensed")
    assert event.days_supply == 28
    assert event.recorded_by == clinician
    assert event.get_medication_display() == "Buprenorphine/naloxone (sublingual)"


@pytest.mark.parametrize("days", [0, -1, 366, 100000, "abc", "", "7.5", "²", None, True, 3.0])
def test_bad_days_supply_is_refused_with_a_clear_message_and_nothing_saved(visit, clinician, days):
    with pytest.raises(VisitError) as error:
        add_medication(visit, clinician, days_supply=days)
    assert error.value.code == "bad_days_supply"
    assert "1 to 365" in error.value.message
    assert not MedicationEvent.objects.exists()


@pytest.mark.parametrize("days", [1, 365, "30"])
def test_days_supply_edges_are_accepted(visit, clinician, days):
    assert add_medication(visit, clinician, days_supply=days).days_supply == int(days)


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"medication": "fentanyl"}, "unknown_medication"),
        ({"action": "stopped"}, "unknown_action"),
        ({"dose": "  "}, "dose_missing"),
        ({"dose": "x" * 121}, "dose_too_long"),
    ],
)
def test_bad_medication_fields_are_refused(visit, clinician, overrides, code):
    with pytest.raises(VisitError) as error:
        add_medication(visit, clinician, **overrides)
    assert error.value.code == code
    assert not MedicationEvent.objects.exists()


def test_only_participants_record_medication(visit, second_clinician):
    with pytest.raises(VisitError) as error:
        add_medication(visit, second_clinician)
    assert error.value.code == "not_participant"


# --- undo on the board --------------------------------------------------------------------------


def test_undoing_start_is_refused_once_something_is_recorded(visit, clinician):
    add_medication(visit, clinician)
    with pytest.raises(QueueError) as error:
        queue.arrival_undo(arrival=visit.arrival, by=clinician, revision=None)
    assert error.value.code == "visit_has_record"
    visit.arrival.refresh_from_db()
    assert visit.arrival.state == State.WITH_STAFF
    assert Visit.objects.filter(pk=visit.pk).exists()


def test_undoing_an_empty_start_still_removes_the_visit(visit, clinician):
    queue.arrival_undo(arrival=visit.arrival, by=clinician, revision=None)
    assert not Visit.objects.filter(pk=visit.pk).exists()
