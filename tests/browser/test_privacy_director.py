"""The privacy officer and the director in the browser: a packet is handed over only after a
confirmation that records how and to whom (by keyboard); the access log is filtered by a
person found by name and by days; a director lands on the dashboard. Headless Chromium
against a real server, at 1024x768 and 390x844, every page checked with axe-core and for
sideways scrolling."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from clinic import roles
from clinic.models import AccessLog
from releases.models import HandOver
from releases.services import outgoing as services
from tests.browser.axe import assert_accessible
from tests.browser.conftest import launched_chromium
from tests.conftest import session_cookie_for
from tests.factories import PersonFactory, make_staff
from tests.releases.factories import make_consent
from tests.releases.outgoing_data import drug_court, make_record

try:
    from playwright.sync_api import expect
except ImportError:  # the "browser" marker skips (or, in CI, fails) these tests with a reason
    expect = None

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

VIEWPORTS = [(1024, 768), (390, 844)]


def fits(page, width: int) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    assert_accessible(page)


def browse(server, cookie, viewport, steps) -> list[str]:
    """Run `steps(page)` in a fresh Chromium signed in with `cookie`; the page errors seen."""
    width, height = viewport
    errors: list[str] = []
    with launched_chromium() as browser:
        context = browser.new_context(
            base_url=server.url, viewport={"width": width, "height": height}
        )
        context.add_cookies([{**cookie, "url": server.url}])
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        steps(page)
        browser.close()
    return errors


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_a_packet_is_handed_over_only_after_confirming_how_and_to_whom(
    asgi_server, site, clinician, second_clinician, privacy_officer, viewport
):
    person = make_record(site=site, name="Robin Quill").person
    court = drug_court(site)
    make_consent(person=person, recipients=[court], purposes=["attendance"], scope=["attendance"])
    request = services.release_request_create(
        site=site, person=person, recipient=court, purpose="attendance",
        scope=["attendance"], by=make_staff(site=site, roles=[roles.CLINICIAN]),
    )  # fmt: skip
    services.release_approve(request=request, by=privacy_officer)
    services.release_approve(request=request, by=second_clinician)
    packet = services.packet_generate(request=request, by=clinician)
    cookie = session_cookie_for(clinician)  # before Chromium: no ORM calls while it runs
    detail = reverse("releases:outgoing_detail", args=[request.pk])
    width = viewport[0]

    def steps(page):
        page.goto(detail)
        fits(page, width)
        page.get_by_role("link", name="Hand over…").focus()
        page.keyboard.press("Enter")
        confirm = page.get_by_test_id("hand-over-confirm")
        expect(confirm).to_contain_text("County Drug Court")
        fits(page, width)
        # Confirming without saying how hands nothing over and keeps what was typed.
        page.get_by_label("To whom, or where it is sent").fill("Clerk of the drug court")
        page.get_by_role("button", name="Confirm: hand it over").click()
        expect(page.get_by_text("Please choose how it is delivered.")).to_be_visible()
        expect(page.get_by_label("To whom, or where it is sent")).to_have_value(
            "Clerk of the drug court"
        )
        fits(page, width)
        page.get_by_role("radio", name="By fax").focus()
        page.keyboard.press("Space")
        page.get_by_role("button", name="Confirm: hand it over").focus()
        page.keyboard.press("Enter")
        expect(page.get_by_text("Recorded as handed over.")).to_be_visible()
        expect(page.get_by_test_id("hand-over-record")).to_contain_text(
            "By fax — Clerk of the drug court"
        )
        fits(page, width)

    assert browse(asgi_server, cookie, viewport, steps) == []
    record = HandOver.objects.get()
    assert (record.packet_id, record.by, record.how) == (packet.pk, clinician, "fax")


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_the_access_log_is_filtered_by_a_person_found_by_name_and_by_days(
    asgi_server, site, clinician, privacy_officer, viewport
):
    marcus = PersonFactory(site=site, name="Marcus Bell")
    PersonFactory(site=site, name="Lee")
    AccessLog.objects.create(user=clinician, site=site, person=marcus, what=AccessLog.What.PERSON)
    today = timezone.localdate(timezone.now(), site.tz)
    cookie = session_cookie_for(privacy_officer)
    width = viewport[0]

    def steps(page):
        page.goto(reverse("visits:access_log"))
        fits(page, width)
        page.get_by_label("About a person (their name)").fill("marc")
        page.keyboard.press("Enter")
        found = page.get_by_test_id("access-log-found")
        expect(found).to_contain_text("Entries about Marcus Bell")
        assert "marc" not in page.url.lower()  # the name went in the body, never the URL
        fits(page, width)
        found.get_by_role("link", name="Entries about Marcus Bell").click()
        expect(page.get_by_test_id("person-filter")).to_contain_text("Marcus Bell")
        page.get_by_label("From").fill((today - timedelta(days=7)).isoformat())
        page.get_by_label("Until").fill(today.isoformat())
        page.get_by_role("button", name="Show").click()
        expect(page.get_by_test_id("access-log")).to_contain_text("Marcus Bell")
        fits(page, width)
        page.get_by_label("From").fill("2001-01-01")
        page.get_by_label("Until").fill("2000-01-01")
        page.get_by_role("button", name="Show").click()
        expect(page.get_by_role("alert")).to_contain_text("The last day cannot be before")
        fits(page, width)

    assert browse(asgi_server, cookie, viewport, steps) == []


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_a_director_lands_on_the_dashboard(asgi_server, site, director, viewport):
    cookie = session_cookie_for(director)
    width = viewport[0]

    def steps(page):
        page.goto("/")
        expect(page.get_by_role("heading", name="Process measures")).to_be_visible()
        expect(
            page.get_by_role("link", name="Emergency releases and their reviews")
        ).to_be_visible()
        fits(page, width)

    assert browse(asgi_server, cookie, viewport, steps) == []
