"""Visit pages: the permission matrix, the access log, editing while open, read-only when
closed, bad input (nothing saved, a clear message, never a 500), the language check, and the
board's way in (Start, "Open visit")."""

import pytest
from django.urls import reverse
from django.utils import timezone

from clinic.models import AccessLog
from queues import services as queue
from queues.models import State
from tests.factories import PersonFactory, ServiceFactory, check_in
from tests.helpers import PERSONAS, messages_of
from visits.models import Addendum, MedicationEvent, Visit
from visits.services import visits as services

pytestmark = pytest.mark.django_db

# Another site's clinician acts for their own site, where this visit does not exist.
EXPECTED = {
    "clinician": 200,
    "front_desk": 403,
    "director": 403,
    "privacy_officer": 403,
    "other_site_clinician": 404,
}


@pytest.fixture
def visit(site, front_desk, clinician):
    arrival = check_in(site=site, by=front_desk, name="Marcus", pronouns="he/him")
    queue.arrival_start(arrival=arrival, by=clinician, revision=None)
    arrival.refresh_from_db()
    return arrival.visit


def url(name, visit):
    return reverse(f"visits:{name}", args=[visit.pk])


def edit(client, visit, **data):
    fields = {
        "base": services.visit_fingerprint(visit),
        "priorities": "",
        "note": "",
        "services": [],
    }
    return client.post(url("visit_edit", visit), fields | data)


def medication(client, visit, **data):
    fields = {"medication": "bup_nx", "dose": "16 mg daily", "days_supply": "7"}
    return client.post(url("medication_add", visit), fields | {"action": "prescribed"} | data)


# --- permissions --------------------------------------------------------------------------------


@pytest.mark.parametrize("persona", PERSONAS)
def test_visit_page_permission_matrix(client, login, visit, persona):
    login(persona)
    response = client.get(url("visit", visit))
    if persona == "anonymous":
        assert response.status_code == 302
        assert response.url.startswith(reverse("login"))
        return
    assert response.status_code == EXPECTED[persona]
    if response.status_code == 200:
        assert "Marcus" in response.content.decode()


POSTS = ["visit_edit", "visit_join", "medication_add", "addendum_add"]


@pytest.mark.parametrize("persona", ["front_desk", "director", "privacy_officer"])
@pytest.mark.parametrize("name", POSTS)
def test_non_clinical_roles_get_403_posting_to_visit_urls(client, login, visit, persona, name):
    login(persona)
    response = client.post(url(name, visit), {"note": "x", "text": "x", "days_supply": "7"})
    assert response.status_code == 403
    visit.refresh_from_db()
    assert visit.note == ""
    assert not visit.medications.exists()


@pytest.mark.parametrize("name", POSTS)
def test_other_sites_clinician_gets_404_posting(client, login, visit, name):
    login("other_site_clinician")
    assert client.post(url(name, visit), {"note": "x"}).status_code == 404


@pytest.mark.parametrize("persona", ["front_desk", "director", "privacy_officer"])
def test_direct_visit_page_is_for_the_care_team(client, login, persona):
    login(persona)
    assert client.get(reverse("visits:visit_new")).status_code == 403
    assert client.post(reverse("visits:visit_new"), {"origin": "quick"}).status_code == 403
    assert not Visit.objects.exists()


def test_get_only_pages_refuse_other_methods(client, login, visit):
    login("clinician")
    assert client.post(url("visit", visit)).status_code == 405
    assert client.get(url("visit_edit", visit)).status_code == 405
    assert client.get(url("medication_add", visit)).status_code == 405


def test_unknown_visit_is_404(client, login):
    login("clinician")
    assert client.get(reverse("visits:visit", args=[987654321])).status_code == 404
    assert client.get("/visits/99999999999999999999999/").status_code == 404


# --- access log ---------------------------------------------------------------------------------


def test_every_opening_writes_an_access_log_row_with_who_whom_what(client, login, visit, clinician):
    login("clinician")
    client.get(url("visit", visit))
    client.get(url("visit", visit))
    rows = list(AccessLog.objects.order_by("pk"))
    assert len(rows) == 2
    for row in rows:
        assert row.user == clinician
        assert row.person == visit.person
        assert row.what == AccessLog.What.VISIT
        assert row.object_id == str(visit.pk)
        assert row.site == visit.site


@pytest.mark.parametrize("persona", ["front_desk", "director", "other_site_clinician"])
def test_refused_openings_write_no_access_log_row(client, login, visit, persona):
    login(persona)
    client.get(url("visit", visit))
    assert not AccessLog.objects.exists()


def test_anonymous_contact_opening_is_logged_without_a_person(client, login, site, clinician):
    visit = services.visit_open_direct(site=site, by=clinician, origin=Visit.Origin.QUICK)
    login("clinician")
    response = client.get(url("visit", visit))
    assert response.status_code == 200
    assert "Anonymous contact" in response.content.decode()
    row = AccessLog.objects.get()
    assert row.person is None and row.object_id == str(visit.pk)


# --- the page -----------------------------------------------------------------------------------


def test_page_shows_person_team_services_priorities_note_and_medication(
    client, login, visit, clinician, service
):
    services.visit_update(
        visit=visit,
        by=clinician,
        services=[service],
        priorities="Sleep somewhere warm",
        note="Talked about the shelter.",
    )
    services.visit_add_medication(
        visit=visit,
        by=clinician,
        medication="methadone",
        dose="60 mg",
        days_supply=1,
        action="administered",
    )
    login("clinician")
    page = client.get(url("visit", visit)).content.decode()
    assert reverse("visits:person", args=[visit.person.pk]) in page
    assert "he/him" in page
    assert "Alex — Nurse practitioner" in page
    assert "Wound care" in page
    assert "Sleep somewhere warm" in page
    assert "Talked about the shelter." in page
    assert "Methadone" in page and "Administered" in page


def test_page_puts_goals_and_tox_in_the_context(client, login, visit):
    login("clinician")
    response = client.get(url("visit", visit))
    assert response.context["visit"] == visit
    assert list(response.context["goals"]) == []
    assert list(response.context["tox_screens"]) == []


# --- editing while open -------------------------------------------------------------------------


def test_participant_saves_the_record(client, login, visit, service):
    login("clinician")
    response = edit(client, visit, services=[service.pk], priorities="My foot", note="Dressed.")
    assert response.status_code == 302
    visit.refresh_from_db()
    assert (visit.priorities, visit.note) == ("My foot", "Dressed.")
    assert list(visit.services.all()) == [service]


def test_a_clinician_who_is_not_a_participant_joins_first(client, login, visit, second_clinician):
    login("second_clinician")
    page = client.get(url("visit", visit)).content.decode()
    assert "Join this visit" in page
    assert 'id="visit-form"' not in page

    response = edit(client, visit, note="sneaky")
    assert "Join this visit first" in " ".join(messages_of(response))
    visit.refresh_from_db()
    assert visit.note == ""

    client.post(url("visit_join", visit))
    page = client.get(url("visit", visit)).content.decode()
    assert "Sam — Peer navigator" in page
    assert 'id="visit-form"' in page


def test_save_and_end_closes_the_visit_and_the_arrival(client, login, visit):
    login("clinician")
    response = edit(client, visit, note="All set.", end="1")
    assert response.status_code == 302
    visit.refresh_from_db()
    visit.arrival.refresh_from_db()
    assert not visit.is_open
    assert visit.arrival.state == State.DONE
    page = client.get(url("visit", visit)).content.decode()
    assert "Ended — read-only" in page
    assert 'id="visit-form"' not in page
    assert "Add an addendum" in page


def test_someone_elses_newer_save_keeps_my_text_in_the_form(client, login, visit, clinician):
    base = services.visit_fingerprint(visit)
    services.visit_update(visit=visit, by=clinician, services=[], priorities="", note="first")
    login("clinician")
    response = edit(client, visit, base=base, note="my long careful note")
    assert response.status_code == 200
    page = response.content.decode()
    assert "Someone else saved this visit" in page
    assert "my long careful note" in page
    visit.refresh_from_db()
    assert visit.note == "first"
    # The form now carries the new fingerprint: saving again works.
    assert response.context["edit_form"]["base"].value() == services.visit_fingerprint(visit)


def test_unknown_service_id_is_a_clear_message_not_a_500(client, login, visit, other_site):
    login("clinician")
    foreign = ServiceFactory(site=other_site)
    for bad in ([foreign.pk], ["abc"], ["99999999999999999999"]):
        response = edit(client, visit, services=bad, note="x")
        assert response.status_code == 200
        assert "Please pick services this site offers." in response.content.decode()
    visit.refresh_from_db()
    assert visit.note == ""


# --- closed: read-only ---------------------------------------------------------------------------


def test_edit_posts_on_a_closed_visit_change_nothing_and_say_why(client, login, visit, clinician):
    services.visit_update(visit=visit, by=clinician, services=[], priorities="", note="final")
    services.visit_end(visit=visit, by=clinician)
    login("clinician")
    response = edit(client, visit, note="rewritten")
    assert "can no longer be changed" in response.content.decode()
    for response in (
        edit(client, visit, note="final", priorities="changed"),
        medication(client, visit),
        client.post(url("visit_join", visit)),
    ):
        assert response.status_code == 302
        assert any("can no longer be changed" in m for m in messages_of(response))
    visit.refresh_from_db()
    assert (visit.note, visit.priorities) == ("final", "")
    assert not MedicationEvent.objects.exists()


def test_addendum_on_a_closed_visit(client, login, visit, clinician):
    services.visit_end(visit=visit, by=clinician)
    login("clinician")
    response = client.post(url("addendum_add", visit), {"text": "Called back: feeling better."})
    assert response.status_code == 302
    addendum = Addendum.objects.get()
    assert addendum.author == clinician
    page = client.get(url("visit", visit)).content.decode()
    assert "Called back: feeling better." in page
    assert "Alex, " in page  # author and time


def test_empty_addendum_and_addendum_on_an_open_visit_save_nothing(client, login, visit, clinician):
    login("clinician")
    response = client.post(url("addendum_add", visit), {"text": "x"})
    assert any("still open" in m for m in messages_of(response))
    services.visit_end(visit=visit, by=clinician)
    response = client.post(url("addendum_add", visit), {"text": "   "})
    assert response.status_code == 200
    assert "Please write the addendum." in response.content.decode()
    assert not Addendum.objects.exists()


# --- medication: bad input ----------------------------------------------------------------------


@pytest.mark.parametrize("days", ["0", "-1", "366", "abc", "", "1e3", "7.5"])
def test_bad_days_supply_shows_a_clear_message_and_saves_nothing(client, login, visit, days):
    login("clinician")
    response = medication(client, visit, days_supply=days)
    assert response.status_code == 200
    page = response.content.decode()
    assert "Days&#x27; supply must be a whole number from 1 to 365." in page
    assert 'Not saved yet. <a href="#medications">' in page
    assert not MedicationEvent.objects.exists()


@pytest.mark.parametrize(
    "data",
    [{"medication": "heroin"}, {"action": "stopped"}, {"dose": ""}, {"medication": ""}],
)
def test_bad_medication_fields_save_nothing(client, login, visit, data):
    login("clinician")
    response = medication(client, visit, **data)
    assert response.status_code == 200
    assert not MedicationEvent.objects.exists()


def test_medication_is_added_and_shown(client, login, visit):
    login("clinician")
    response = medication(client, visit, days_supply="28")
    assert response.status_code == 302
    assert MedicationEvent.objects.get().days_supply == 28
    page = client.get(url("visit", visit)).content.decode()
    assert "Buprenorphine/naloxone (sublingual)" in page
    assert "16 mg daily" in page


# --- language check -----------------------------------------------------------------------------


def test_saving_a_note_with_stigmatising_words_highlights_them_with_suggestions(
    client, login, visit
):
    login("clinician")
    response = edit(client, visit, note="Clean urine today. Says she is not an addict.")
    assert any("suggestions are shown below" in m for m in messages_of(response))
    visit.refresh_from_db()
    # Never rewritten: saved exactly as written.
    assert visit.note == "Clean urine today. Says she is not an addict."
    page = client.get(url("visit", visit)).content.decode()
    assert "Words to reconsider" in page
    assert '<mark class="language">Clean urine</mark> → negative / positive result' in page
    assert '<mark class="language">addict</mark> → person who uses drugs' in page


def test_addendum_language_is_checked_too(client, login, visit, clinician):
    services.visit_end(visit=visit, by=clinician)
    login("clinician")
    client.post(url("addendum_add", visit), {"text": "Was non-compliant with meds."})
    page = client.get(url("visit", visit)).content.decode()
    assert "Words to reconsider" in page
    assert "not taking medication as prescribed" in page
    assert Addendum.objects.get().text == "Was non-compliant with meds."


def test_note_text_is_escaped(client, login, visit):
    login("clinician")
    edit(client, visit, note="<script>alert(1)</script> clean")
    services.visit_end(visit=visit, by=visit.opened_by)
    page = client.get(url("visit", visit)).content.decode()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;" in page


# --- direct visits ------------------------------------------------------------------------------


def test_anonymous_contact_needs_no_name(client, login, site, clinician):
    naloxone = ServiceFactory(site=site, name="Naloxone kit")
    login("clinician")
    page = client.get(reverse("visits:visit_new"))
    assert page.status_code == 200
    start = page.context["form"]["started_at"].value()
    response = client.post(
        reverse("visits:visit_new"),
        {"origin": "quick", "person": "", "services": [naloxone.pk], "started_at": start},
    )
    visit = Visit.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("visits:visit", args=[visit.pk])
    assert visit.person is None
    assert visit.origin == Visit.Origin.QUICK
    assert list(visit.services.all()) == [naloxone]
    assert not visit.is_open  # a quick contact ends itself


def test_direct_visit_for_a_known_person_found_by_search(client, login, site):
    jess = PersonFactory(site=site, name="Jess")
    login("clinician")
    page = client.post(reverse("visits:visit_new"), {"find": "1", "q": "jes"}).content.decode()
    assert f'name="person" value="{jess.pk}"' in page
    assert not Visit.objects.exists()  # finding records nothing
    local = timezone.localtime(timezone.now(), site.tz)
    client.post(
        reverse("visits:visit_new"),
        {
            "origin": "outreach",
            "person": str(jess.pk),
            "started_at": (local - timezone.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
            "ended_at": (local - timezone.timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M"),
        },
    )
    visit = Visit.objects.get()
    assert visit.person == jess
    assert visit.ended_at - visit.started_at == timezone.timedelta(minutes=30)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"started_at": "2026-01-01T10:00", "ended_at": "2026-01-01T09:00"},
            "The visit cannot end before it starts.",
        ),
        ({"started_at": "yesterday"}, "Please give the start as a date and time."),
        ({"started_at": ""}, "Please give the start time."),
        ({"started_at": "2026-01-01T10:00", "person": "abc"}, "That person is not known"),
        (
            {"started_at": "2026-01-01T10:00", "person": "99999999999999999999999"},
            "That person is not known",
        ),
        ({"started_at": "2026-01-01T10:00", "origin": "queue"}, "Select a valid choice"),
    ],
)
def test_direct_visit_bad_input_saves_nothing(client, login, data, message):
    login("clinician")
    response = client.post(reverse("visits:visit_new"), {"origin": "quick"} | data)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Visit.objects.exists()


def test_direct_visit_refuses_another_sites_person(client, login, other_site):
    stranger = PersonFactory(site=other_site, name="Stranger")
    login("clinician")
    response = client.post(
        reverse("visits:visit_new"),
        {"origin": "quick", "person": str(stranger.pk), "started_at": "2026-01-01T10:00"},
    )
    assert "That person is not known at this site." in response.content.decode()
    assert "Stranger" not in response.content.decode()
    assert not Visit.objects.exists()


# --- the board's way in -------------------------------------------------------------------------


def test_start_on_the_board_takes_the_clinician_to_the_visit(client, login, site, front_desk):
    arrival = check_in(site=site, by=front_desk, name="Marcus")
    login("clinician")
    response = client.post(
        reverse("queues:arrival_action", args=[arrival.pk, "start"]),
        {"revision": arrival.revision},
    )
    arrival.refresh_from_db()
    assert response.status_code == 302
    assert response.url == reverse("visits:visit", args=[arrival.visit.pk])
    assert client.get(response.url).status_code == 200


def test_board_shows_open_visit_on_rows_with_staff_for_clinicians_only(
    client, login, site, front_desk, visit
):
    link = reverse("visits:visit_for_arrival", args=[visit.arrival.pk])
    waiting = check_in(site=site, by=front_desk, name="Jess")
    login("clinician")
    page = client.get(reverse("queues:board")).content.decode()
    assert page.count(">Open visit<") == 1
    assert link in page
    assert reverse("visits:visit_for_arrival", args=[waiting.pk]) not in page
    login("front_desk")
    assert "Open visit" not in client.get(reverse("queues:board")).content.decode()


def test_visit_for_arrival_without_a_visit_is_404_and_front_desk_is_403(
    client, login, site, front_desk
):
    waiting = check_in(site=site, by=front_desk, name="Jess")
    login("clinician")
    assert client.get(reverse("visits:visit_for_arrival", args=[waiting.pk])).status_code == 404
    login("front_desk")
    assert client.get(reverse("visits:visit_for_arrival", args=[waiting.pk])).status_code == 403


def test_record_a_contact_is_in_the_menu_for_the_care_team_only(client, login):
    login("clinician")
    link = f'href="{reverse("visits:visit_new")}"'
    assert link in client.get(reverse("queues:board")).content.decode()
    login("front_desk")
    assert link not in client.get(reverse("queues:board")).content.decode()


def test_a_note_typed_in_a_tab_left_open_after_the_visit_ended_becomes_a_draft_addendum(
    client, login, visit, clinician
):
    services.visit_end(visit=visit, by=clinician)
    login("clinician")
    response = edit(client, visit, note="Typed in a stale tab")
    assert response.status_code == 200
    page = response.content.decode()
    assert "can no longer be changed" in page
    assert "Your note is in the addendum box below" in page
    assert ">Typed in a stale tab</textarea>" in page
    visit.refresh_from_db()
    assert visit.note == ""
    assert not Addendum.objects.exists()
