"""A clinician records a goal and a tox-screen conversation in headless Chromium, on a real
daphne process, finding every control by its role and label."""

import shutil
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections
from django.utils import timezone

from tests.conftest import session_cookie_for
from tests.factories import PersonFactory
from visits.models import Goal, ToxScreen, Visit

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # the "browser" marker skips (or, in CI, fails) these tests with a reason
    expect = sync_playwright = None

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

POLICY = (
    "The result does not change a prescription, a place in line or access to care. "
    "It is here to start a conversation."
)


def in_thread(fn, *args, **kwargs):
    def target():
        try:
            return fn(*args, **kwargs)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(target).result()


def test_a_clinician_records_a_goal_and_a_tox_conversation(asgi_server, site, clinician):
    person = PersonFactory(site=site, name="Jess")
    visit = Visit.objects.create(
        site=site, person=person, started_at=timezone.now(), opened_by=clinician
    )
    cookie = session_cookie_for(clinician)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=shutil.which("chromium"),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        context = browser.new_context(base_url=asgi_server.url)
        context.add_cookies([{**cookie, "url": asgi_server.url}])
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))

        page.goto(f"/visits/{visit.pk}/tox/new/")
        expect(page.get_by_text(POLICY)).to_be_visible()
        page.get_by_label("What they say they have used, in their words (optional)").fill(
            "Fentanyl on Friday"
        )
        page.get_by_role("group", name="Specimen").get_by_label("Oral fluid").check()
        page.get_by_role("group", name="Fentanyl").get_by_label("Positive").check()
        page.get_by_role("group", name="Buprenorphine").get_by_label(
            "Expected (medication present)"
        ).check()
        page.get_by_label("Test strips").check()
        page.get_by_label("What they decided").fill("Will carry naloxone")
        page.get_by_label("Note").fill("Worried the last dirty urine would count against her.")
        page.get_by_role("button", name="Save the conversation").click()

        expect(page.get_by_role("heading", name="Tox-screen conversation")).to_be_visible()
        expect(page.get_by_text("Tox-screen conversation saved.")).to_be_visible()
        expect(page.locator("mark.language").first).to_have_text("dirty urine")
        expect(page.get_by_text("Fentanyl: Positive")).to_be_visible()

        # Back on the visit page, the conversation starts from their goals.
        page.get_by_role("link", name="Back to the visit").first.click()
        page.get_by_label("A new goal, in their own words").fill("Keep my housing")
        page.get_by_role("button", name="Save goal").click()
        expect(page.get_by_text("Goal saved.")).to_be_visible()
        expect(page.get_by_text("“Keep my housing”")).to_be_visible()
        assert errors == []
        browser.close()

    screen = in_thread(lambda: ToxScreen.objects.prefetch_related("results").get())
    assert screen.specimen == "oral_fluid"
    assert screen.note == "Worried the last dirty urine would count against her."
    assert {r.substance: r.result for r in screen.results.all()} == {
        "fentanyl": "positive",
        "buprenorphine": "expected",
    }
    goal = in_thread(lambda: Goal.objects.get())
    assert (goal.words, goal.visit_id, goal.status) == ("Keep my housing", visit.pk, "active")
