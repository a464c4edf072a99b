"""The visit page keeps what is typed (issue 15): drafts per visit and author, put back when the
page is shown, kept across another form's button, deleted when their form is saved, offered as
an addendum once the visit has ended; why they came shown on the visit; the hand-off's note
for the next team member; a quick contact that ends itself.

The browser half (typing, every button, reload, the screen lock) is tests/browser/
test_visit_drafts.py."""

import logging

import pytest
from django.urls import reverse
from django.utils import timezone

from clinic.models import AccessLog
from queues import services as queue
from queues.errors import QueueError
from reports.measures import Period, measures
from tests.factories import PersonFactory, ServiceFactory, check_in
from tests.helpers import messages_of
from visits.models import Draft, Goal, HandOffNote, MedicationEvent, Visit
from visits.services import drafts as drafts_service
from visits.services import goals as goal_services
from visits.services import visits as services

pytestmark = pytest.mark.django_db

PRIORITIES = "Housing letter first, then the wound on my leg"
NOTE = "Talked about the shelter; wound dressed, looks better than last week."


@pytest.fixture
def arrival(site, front_desk, service):
    return check_in(
        site=site,
        by=front_desk,
        name="Marcus",
        service=service,
        urgent=True,
        urgent_reason="Chest pain since this morning",
    )


@pytest.fixture
def visit(arrival, clinician):
    queue.arrival_start(arrival=arrival, by=clinician, revision=None)
    arrival.refresh_from_db()
    return arrival.visit


def url(name, visit):
    return reverse(f"visits:{name}", args=[visit.pk])


def draft(client, visit, form, **fields):
    return client.post(url("draft_save", visit), {"form": form, **fields})


def page(client, visit) -> str:
    response = client.get(url("visit", visit))
    assert response.status_code == 200
    return response.content.decode()


# --- drafts -------------------------------------------------------------------------------------


def test_text_typed_in_the_record_survives_saving_a_goal(client, login, visit):
    """The reported defect: priorities and a note typed, then "Save goal": both come back."""
    login("clinician")
    base = services.visit_fingerprint(visit)
    assert draft(client, visit, "record", base=base, priorities=PRIORITIES, note=NOTE).json() == {
        "saved": True
    }
    response = client.post(
        reverse("visits:goal_add", args=[visit.person.pk]),
        {"words": "Get my ID back", "visit": visit.pk, "next": url("visit", visit)},
    )
    assert response.status_code == 302
    html = page(client, visit)
    assert PRIORITIES in html
    assert NOTE in html
    assert Goal.objects.get().words == "Get my ID back"
    visit.refresh_from_db()
    assert visit.note == ""  # still a draft: saved only by the record's own button


def test_medication_typed_survives_saving_the_record_and_vice_versa(client, login, visit):
    login("clinician")
    draft(client, visit, "medication", medication="methadone", dose="60 mg daily", days_supply="3")
    draft(client, visit, "record", base=services.visit_fingerprint(visit), note=NOTE)
    client.post(
        url("visit_edit", visit),
        {"base": services.visit_fingerprint(visit), "note": NOTE, "priorities": ""},
    )
    html = page(client, visit)
    assert 'value="60 mg daily"' in html
    assert '<option value="methadone" selected>' in html
    # The record's draft is done with; the medication's is not.
    assert set(Draft.objects.values_list("form", flat=True)) == {"medication"}
    client.post(
        url("medication_add", visit),
        {
            "medication": "methadone",
            "dose": "60 mg daily",
            "days_supply": "3",
            "action": "dispensed",
        },
    )
    assert MedicationEvent.objects.count() == 1
    assert not Draft.objects.exists()


def test_a_step_and_a_new_goal_are_kept_and_cleared_when_saved(client, login, visit, clinician):
    goal = goal_services.goal_set(person=visit.person, words="Keep my dog", by=clinician)
    login("clinician")
    draft(client, visit, f"step-{goal.pk}", note="Found a vet who takes payment plans")
    draft(client, visit, "goal", words="See my daughter")
    html = page(client, visit)
    assert "Found a vet who takes payment plans</textarea>" in html
    assert "See my daughter</textarea>" in html
    client.post(
        reverse("visits:goal_progress", args=[goal.pk]),
        {"note": "Found a vet who takes payment plans", "visit": visit.pk},
    )
    assert set(Draft.objects.values_list("form", flat=True)) == {"goal"}


def test_only_the_author_reads_a_draft(client, login, visit, second_clinician):
    services.visit_join(visit=visit, by=second_clinician)
    drafts_service.draft_save(
        visit=visit, author=second_clinician, form="record", data={"note": ["Sam's own words"]}
    )
    login("clinician")
    assert "Sam&#x27;s own words" not in page(client, visit)
    assert "Sam's own words" not in page(client, visit)


@pytest.mark.parametrize(
    ("persona", "status"),
    [
        ("front_desk", 403),
        ("director", 403),
        ("privacy_officer", 403),
        ("other_site_clinician", 404),
    ],
)
def test_only_the_care_team_at_the_visits_site_keeps_drafts(client, login, visit, persona, status):
    login(persona)
    assert draft(client, visit, "record", note=NOTE).status_code == status
    assert not Draft.objects.exists()


def test_a_draft_needs_a_signed_in_session_and_a_post(client, login, visit):
    assert draft(client, visit, "record", note=NOTE).status_code == 302  # to the login page
    login("clinician")
    assert client.get(url("draft_save", visit)).status_code == 405
    assert not Draft.objects.exists()


@pytest.mark.parametrize(
    "fields",
    [
        {"form": "everything"},
        {"form": "step-0"},
        {"form": "step-x"},
        {"form": ""},
        {"form": "record", "note": "x" * 50_000},
    ],
)
def test_a_broken_draft_is_refused_with_a_message_and_nothing_kept(client, login, visit, fields):
    login("clinician")
    response = client.post(url("draft_save", visit), {"note": "kept?", **fields})
    assert response.status_code == 400
    assert response.json()["saved"] is False
    assert response.json()["error"]
    assert not Draft.objects.exists()


def test_emptying_every_box_deletes_the_draft(client, login, visit):
    login("clinician")
    draft(client, visit, "record", base="abc", note=NOTE)
    draft(client, visit, "record", base="abc", note="  ")
    assert not Draft.objects.exists()


def test_a_draft_typed_over_an_older_version_never_overwrites_a_colleagues_save(
    client, login, visit, second_clinician
):
    login("clinician")
    draft(client, visit, "record", base=services.visit_fingerprint(visit), note=NOTE)
    services.visit_join(visit=visit, by=second_clinician)
    services.visit_update(
        visit=visit, by=second_clinician, services=[], priorities="", note="Sam's note"
    )
    html = page(client, visit)
    assert NOTE in html
    form = client.get(url("visit", visit)).context["edit_form"]
    response = client.post(
        url("visit_edit", visit), {"base": form["base"].value(), "note": NOTE, "priorities": ""}
    )
    assert response.status_code == 200
    assert "Someone else saved this visit" in response.content.decode()
    visit.refresh_from_db()
    assert visit.note == "Sam's note"


def test_drafts_of_a_visit_that_ended_are_offered_as_an_addendum(client, login, visit, clinician):
    login("clinician")
    draft(client, visit, "record", base=services.visit_fingerprint(visit), note=NOTE)
    draft(client, visit, "medication", medication="methadone", dose="60 mg daily")
    services.visit_end(visit=visit, by=clinician)  # e.g. "Done" on the board
    response = client.get(url("visit", visit))
    text = response.context["addendum_form"]["text"].value()
    assert NOTE in text
    assert "60 mg daily" in text
    assert "in the addendum box below" in response.content.decode()
    client.post(url("addendum_add", visit), {"text": text})
    assert visit.addenda.get().text == text.strip()
    assert not Draft.objects.exists()


def test_undoing_start_never_deletes_a_draft(client, login, visit, arrival, clinician):
    login("clinician")
    draft(client, visit, "record", base="x", note=NOTE)
    arrival.refresh_from_db()
    with pytest.raises(QueueError) as refused:
        queue.arrival_undo(arrival=arrival, by=clinician, revision=arrival.revision)
    assert refused.value.code == "visit_has_record"
    assert Draft.objects.filter(visit=visit).exists()


# --- why they came ------------------------------------------------------------------------------


def test_the_visit_says_what_they_came_for_and_why_it_is_urgent(client, login, visit, service):
    login("clinician")
    response = client.get(url("visit", visit))
    html = response.content.decode()
    assert "Came for" in html
    assert service.name in html
    assert "Chest pain since this morning" in html
    # The service they came for starts ticked; saving records it.
    assert response.context["edit_form"]["services"].value() == [service.pk]


def test_what_they_came_for_is_only_a_start(client, login, visit, service):
    other = ServiceFactory(site=visit.site, name="Counselling")
    login("clinician")
    client.post(
        url("visit_edit", visit),
        {"base": services.visit_fingerprint(visit), "services": [other.pk], "note": ""},
    )
    assert client.get(url("visit", visit)).context["edit_form"]["services"].value() == [other.pk]


# --- hand-off note ------------------------------------------------------------------------------


def hand_off(client, arrival, to_user, note):
    arrival.refresh_from_db()
    return client.post(
        reverse("queues:hand_off", args=[arrival.pk]),
        {"revision": arrival.revision, "to_user": to_user.pk, "note": note},
    )


def test_the_hand_off_note_reaches_the_next_team_member_on_the_visit(
    client, login, visit, arrival, second_clinician, caplog
):
    words = "Wound dressed; he wants to talk about housing next. Prefers the quiet room."
    login("clinician")
    caplog.set_level(logging.DEBUG)
    assert hand_off(client, arrival, second_clinician, words).status_code == 302
    note = HandOffNote.objects.get()
    assert note.text == words
    assert note.visit == visit
    assert note.event.to_staff == second_clinician
    assert words not in caplog.text
    client.force_login(second_clinician)
    before = AccessLog.objects.filter(user=second_clinician).count()
    html = page(client, visit)
    assert "Notes from hand-offs" in html
    assert words in html
    assert AccessLog.objects.filter(user=second_clinician).count() == before + 1


def test_the_hand_off_note_is_language_checked_after_saving_and_kept_as_written(
    client, login, arrival, visit, second_clinician
):
    login("clinician")
    words = "Frequent flyer, wants the quiet room"
    response = hand_off(client, arrival, second_clinician, words)
    assert HandOffNote.objects.get().text == words
    flagged = client.get(response.url).content.decode()
    assert "Language check (hand-off note)" in flagged
    assert "person who visits often" in flagged


def test_a_hand_off_note_in_the_clinics_own_words_gets_no_warning(
    client, login, arrival, visit, second_clinician
):
    login("clinician")
    response = hand_off(client, arrival, second_clinician, "Gave clean syringes; wound bed clean")
    assert "Language check" not in client.get(response.url).content.decode()


def test_a_hand_off_without_a_note_records_none(client, login, arrival, visit, second_clinician):
    login("clinician")
    hand_off(client, arrival, second_clinician, "   ")
    arrival.refresh_from_db()
    assert arrival.staff == second_clinician
    assert not HandOffNote.objects.exists()


def test_undoing_start_after_an_undone_hand_off_keeps_its_note(
    client, login, arrival, visit, clinician, second_clinician
):
    login("clinician")
    hand_off(client, arrival, second_clinician, "He needs the quiet room")
    arrival.refresh_from_db()
    queue.arrival_undo(arrival=arrival, by=clinician, revision=arrival.revision)  # the hand-off
    arrival.refresh_from_db()
    with pytest.raises(QueueError) as refused:
        queue.arrival_undo(arrival=arrival, by=clinician, revision=arrival.revision)  # Start
    assert refused.value.code == "visit_has_record"
    assert HandOffNote.objects.get().visit == visit


def test_a_refused_hand_off_keeps_the_note_typed(client, login, arrival, visit, clinician):
    login("clinician")
    response = hand_off(client, arrival, clinician, "x" * 2001)
    assert response.status_code == 200
    assert "x" * 2001 in response.content.decode()
    arrival.refresh_from_db()
    assert arrival.staff == clinician
    assert not HandOffNote.objects.exists()


def test_a_hand_off_from_a_stale_page_is_refused_and_the_note_is_still_there(
    client, login, arrival, visit, second_clinician
):
    login("clinician")
    response = client.post(
        reverse("queues:hand_off", args=[arrival.pk]),
        {"revision": arrival.revision - 1, "to_user": second_clinician.pk, "note": "Dog outside"},
    )
    assert response.status_code == 200
    assert "Dog outside</textarea>" in response.content.decode()
    arrival.refresh_from_db()
    assert arrival.staff != second_clinician


# --- quick contacts -----------------------------------------------------------------------------


def test_a_quick_contact_ends_itself_and_still_counts_as_a_contact(client, login, site):
    naloxone = ServiceFactory(site=site, name="Naloxone kit", code="naloxone")
    login("clinician")
    start = client.get(reverse("visits:visit_new")).context["form"]["started_at"].value()
    response = client.post(
        reverse("visits:visit_new"),
        {"origin": "quick", "person": "", "services": [naloxone.pk], "started_at": start},
    )
    visit = Visit.objects.get()
    assert not visit.is_open
    assert visit.ended_at == visit.started_at
    assert "Contact recorded; it has ended." in messages_of(response)
    today = timezone.localdate(timezone.now(), site.tz)
    counted = measures(Period(today, today), [site.pk])["M12"]
    assert (counted["count"], counted["anonymous"]) == (1, 1)


def test_outreach_left_without_an_end_stays_open(client, login, site):
    person = PersonFactory(site=site)
    visit = services.visit_open_direct(
        site=site, by=login("clinician"), origin=Visit.Origin.OUTREACH, person=person
    )
    assert visit.is_open
