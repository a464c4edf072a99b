"""Nothing typed on the visit page is lost (issue 15), as people meet it: headless Chromium
against a real daphne process. Type in every field, press every other button, reload, let the
screen lock, sign in again: every word is still there until its own button saves it. Also why
they came, and the hand-off's note reaching the next team member.

Data is set up by fixtures before Chromium starts; anything later goes through `in_thread`.
Screenshots go to $SHOTS_DIR when it is set (to look at, not asserted).
"""

# The screen lock's fixtures are shared from its own tests: their names come back as arguments.
# ruff: noqa: F811

import os
from pathlib import Path

import pytest

from tests.browser.axe import assert_accessible
from tests.browser.test_live_queue import DESK, Screen, in_thread
from tests.browser.test_screen_lock import (  # noqa: F401 (fixtures)
    LOCK_MS,
    NAME,
    REASON,
    alex_password,
    chromium,
    clinician_cookie,
    idle_seconds,
    lock_dialog,
    lock_server,
    marcus_waiting,
    open_visit,
    with_password,
)
from tests.conftest import session_cookie_for
from visits.models import Draft, Goal, HandOffNote, MedicationEvent, Visit
from visits.services import goals as goal_services
from visits.services import visits as visit_services

try:
    from playwright.sync_api import expect
except ImportError:  # the "browser" marker skips (or, in CI, fails) these tests with a reason
    expect = None

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

PHONE = {"width": 390, "height": 844}
PRIORITIES = "Housing letter first, then the wound on my leg"
NOTE = "Talked about the shelter on 5th. Wound dressed; looks better than last week."
DOSE = "60 mg daily"
GOAL = "See my daughter at Christmas"
STEP = "Found a vet who takes payment plans"
FIELDS = {
    "Their priorities today, in their words": PRIORITIES,
    "Note": NOTE,
    "Dose": DOSE,
    "Days' supply": "3",
    "A new goal, in their own words": GOAL,
    "A step (any step counts)": STEP,
}


def shot(page, name: str) -> None:
    folder = os.environ.get("SHOTS_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=f"{folder}/{name}.png", full_page=True)


@pytest.fixture
def goal(open_visit, clinician) -> Goal:
    return goal_services.goal_set(person=open_visit.person, words="Keep my dog", by=clinician)


def dog(page):
    """The goal the step is typed for (each goal has its own step and status forms)."""
    return page.locator("li.goal", has_text="Keep my dog")


def field(page, label):
    if label == "A step (any step counts)":
        return dog(page).get_by_label(label, exact=True)
    return page.get_by_label(label, exact=True)


def type_everything(page, skip=()) -> None:
    for label, value in FIELDS.items():
        if label not in skip:
            field(page, label).fill(value)
    if "Medication" not in skip:
        field(page, "Medication").select_option(label="Methadone")
        page.get_by_label("Dispensed").check()
    if "Wound care" not in skip:
        page.get_by_label("Wound care").check()


def expect_everything(page, skip=()) -> None:
    for label, value in FIELDS.items():
        if label not in skip:
            expect(field(page, label)).to_have_value(value)
    if "Medication" not in skip:
        expect(field(page, "Medication")).to_have_value("methadone")
        expect(page.get_by_label("Dispensed")).to_be_checked()
    if "Wound care" not in skip:
        expect(page.get_by_label("Wound care")).to_be_checked()


def expect_kept(page) -> None:
    """Every draft form on the page has reached the server."""
    for form in page.locator("form[data-draft]").all():
        expect(form).to_have_attribute("data-draft-state", "saved")


@pytest.mark.parametrize("idle_seconds", [600])
def test_every_other_button_and_a_reload_keep_what_was_typed_in_every_field(
    lock_server, open_visit, goal, clinician_cookie, chromium
):
    screen = Screen(chromium, lock_server, viewport=DESK, cookie=clinician_cookie)
    page = screen.page
    page.goto(f"/visits/{open_visit.pk}/")
    # Why they came, on the visit itself; the service they came for starts ticked.
    expect(page.get_by_text(REASON)).to_be_visible()
    expect(page.get_by_label("Wound care")).to_be_checked()
    page.get_by_label("Wound care").uncheck()

    # Type in every field and at once press "Save goal" (the reported defect): no waiting.
    type_everything(page)
    page.get_by_role("button", name="Save goal").click()
    expect(page.get_by_text("Goal saved.")).to_be_visible()
    expect_everything(page, skip=("A new goal, in their own words",))
    expect(field(page, "A new goal, in their own words")).to_have_value("")

    # The goal box again, then every other button in turn: the rest stays each time.
    field(page, "A new goal, in their own words").fill(GOAL)
    dog(page).get_by_role("button", name="Add step").click()
    expect(page.get_by_text("Step saved.")).to_be_visible()
    expect_everything(page, skip=("A step (any step counts)",))

    dog(page).get_by_label("Status").select_option(label="Reached")
    dog(page).get_by_role("button", name="Change status").click()
    expect(page.get_by_text("Goal marked")).to_be_visible()
    expect_everything(page, skip=("A step (any step counts)",))

    page.get_by_role("button", name="Add medication").click()
    expect(page.get_by_text("Medication recorded.")).to_be_visible()
    expect_everything(page, skip=("A step (any step counts)", "Dose", "Days' supply", "Medication"))

    # A reload: everything not saved yet comes back from its draft.
    page.reload()
    expect(page.get_by_text("is back in its boxes")).to_be_visible()
    expect_everything(page, skip=("A step (any step counts)", "Dose", "Days' supply", "Medication"))
    assert_accessible(page)
    shot(page, "visit-drafts-restored-desk")

    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text("Saved.", exact=True)).to_be_visible()
    expect(field(page, "A new goal, in their own words")).to_have_value(GOAL)

    visit = in_thread(lambda: Visit.objects.get(pk=open_visit.pk))
    assert (visit.priorities, visit.note) == (PRIORITIES, NOTE)
    assert in_thread(lambda: list(visit.services.values_list("name", flat=True))) == ["Wound care"]
    assert in_thread(lambda: MedicationEvent.objects.get(visit=visit).dose) == DOSE
    assert in_thread(lambda: sorted(Goal.objects.values_list("words", flat=True))) == [
        "Keep my dog",
        GOAL,
    ]
    assert in_thread(lambda: goal.progress.get().note) == STEP
    # What is left is the second goal, still only typed.
    assert in_thread(lambda: list(Draft.objects.values_list("form", flat=True))) == ["goal"]
    assert screen.errors == []


@pytest.mark.parametrize("idle_seconds", [600])
def test_leaving_with_text_not_kept_yet_asks_first(
    lock_server, open_visit, clinician_cookie, chromium
):
    screen = Screen(chromium, lock_server, viewport=PHONE, cookie=clinician_cookie)
    page = screen.page
    page.goto(f"/visits/{open_visit.pk}/")
    asked = []

    def answer(dialog):
        asked.append(dialog.type)
        dialog.dismiss()  # stay on the page

    page.on("dialog", answer)
    page.route("**/draft/", lambda route: route.abort())  # offline: nothing can be kept
    note = field(page, "Note")
    note.click()
    note.press_sequentially("Rest")
    page.close(run_before_unload=True)
    expect(note).to_have_value("Rest")  # still here: the person was asked
    assert asked == ["beforeunload"]

    # Online again: once the text is kept, leaving asks nothing.
    page.unroute("**/draft/")
    note.press_sequentially(" first")
    expect_kept(page)
    shot(page, "visit-drafts-phone")
    page.close(run_before_unload=True)
    page.wait_for_event("close")
    assert asked == ["beforeunload"]


def test_the_screen_lock_and_a_new_sign_in_lose_nothing(
    lock_server, open_visit, goal, alex_password, clinician, clinician_cookie, chromium
):
    screen = Screen(chromium, lock_server, viewport=DESK, cookie=clinician_cookie)
    page = screen.page
    page.goto(f"/visits/{open_visit.pk}/")
    type_everything(page)
    expect_kept(page)

    # Nobody touches the screen: it locks and the session ends on the server.
    expect(lock_dialog(page)).to_be_visible(timeout=LOCK_MS)
    assert NOTE not in page.content()

    # The tablet is taken away; someone signs in again on another one: it is all there.
    other = Screen(
        chromium, lock_server, viewport=DESK, cookie=in_thread(session_cookie_for, clinician)
    )
    other.page.goto(f"/visits/{open_visit.pk}/")
    expect_everything(other.page)
    other.context.close()

    # And on the locked screen itself, after the password, as it was.
    page.get_by_label("Password").fill(alex_password)
    page.get_by_role("button", name="Unlock").click()
    expect_everything(page)

    # Typed and the lock pressed at once: kept once the screen is open again.
    field(page, "Note").fill(NOTE + " More.")
    page.get_by_role("button", name="Lock screen").click()
    expect(lock_dialog(page)).to_be_visible()
    page.get_by_label("Password").fill(alex_password)
    page.get_by_role("button", name="Unlock").click()
    expect(lock_dialog(page)).to_have_count(0)
    expect(field(page, "Note")).to_have_value(NOTE + " More.")
    expect_kept(page)
    page.reload()
    expect(field(page, "Note")).to_have_value(NOTE + " More.")
    assert screen.errors == []


@pytest.mark.parametrize("idle_seconds", [600])
def test_text_left_in_a_visit_that_ended_meanwhile_is_offered_as_an_addendum(
    lock_server, open_visit, clinician, clinician_cookie, chromium
):
    screen = Screen(chromium, lock_server, viewport=DESK, cookie=clinician_cookie)
    page = screen.page
    page.goto(f"/visits/{open_visit.pk}/")
    field(page, "Note").fill(NOTE)
    expect_kept(page)
    in_thread(lambda: visit_services.visit_end(visit=open_visit, by=clinician))  # Done elsewhere

    page.reload()
    expect(page.get_by_text("in the addendum box below")).to_be_visible()
    expect(page.get_by_label("Add an addendum")).to_have_value(f"Note: {NOTE}")
    assert_accessible(page)
    shot(page, "visit-ended-addendum-offered")
    page.get_by_role("button", name="Save addendum").click()
    expect(page.get_by_text("Addendum saved.")).to_be_visible()
    assert in_thread(lambda: Draft.objects.exists()) is False


@pytest.fixture
def sam(second_clinician):
    second_clinician.first_name = "Sam"
    second_clinician.save()
    return second_clinician


@pytest.fixture
def sam_cookie(sam):
    return session_cookie_for(sam)


@pytest.mark.parametrize("idle_seconds", [600])
def test_the_hand_off_note_reaches_the_next_team_member(
    lock_server, open_visit, sam_cookie, clinician_cookie, chromium
):
    words = "Wound dressed. He wants to talk about housing next; prefers the quiet room."
    screen = Screen(chromium, lock_server, viewport=DESK, cookie=clinician_cookie)
    page = screen.page
    page.goto(f"/queue/arrivals/{open_visit.arrival_id}/handoff/")
    page.get_by_label("Sam", exact=False).check()
    page.get_by_label("Note for the next team member (optional)").fill(words)
    assert_accessible(page)
    shot(page, "hand-off-with-note")
    page.get_by_role("button", name="Hand off").click()
    expect(page.get_by_text("is now with Sam")).to_be_visible()
    assert in_thread(lambda: HandOffNote.objects.get().text) == words

    theirs = Screen(chromium, lock_server, viewport=PHONE, cookie=sam_cookie)
    theirs.page.goto(f"/visits/{open_visit.pk}/")
    expect(theirs.page.get_by_text(words)).to_be_visible()
    expect(theirs.page.get_by_text(REASON)).to_be_visible()
    expect(theirs.page.get_by_role("heading", name=f"Visit with {NAME}")).to_be_visible()
    assert_accessible(theirs.page)
    shot(theirs.page, "visit-hand-off-note-phone")


@pytest.mark.parametrize("idle_seconds", [600])
def test_leaving_the_hand_off_page_with_a_note_typed_asks_first(
    lock_server, open_visit, sam, clinician_cookie, chromium
):
    screen = Screen(chromium, lock_server, viewport=PHONE, cookie=clinician_cookie)
    page = screen.page
    page.goto(f"/queue/arrivals/{open_visit.arrival_id}/handoff/")
    asked = []

    def answer(dialog):
        asked.append(dialog.type)
        dialog.dismiss()  # stay on the page

    page.on("dialog", answer)
    note = page.get_by_label("Note for the next team member (optional)")
    note.click()
    note.press_sequentially("Prefers the quiet room")
    page.get_by_role("link", name="Cancel").click()
    expect(note).to_have_value("Prefers the quiet room")  # still here: the person was asked
    assert asked == ["beforeunload"]

    # Handing off sends the note: that is not leaving it behind, so nothing is asked.
    page.get_by_label("Sam", exact=False).check()
    page.get_by_role("button", name="Hand off").click()
    expect(page.get_by_text("is now with Sam")).to_be_visible()
    assert asked == ["beforeunload"]
    assert in_thread(lambda: HandOffNote.objects.get().text) == "Prefers the quiet room"
    assert screen.errors == []
