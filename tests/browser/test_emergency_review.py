"""Reviewing a medical emergency release, in the browser: the privacy officer finds it on the
privacy home, reads what was sent and records the review by keyboard; the director opens the
list of reviews. Headless Chromium against a real server, at the front desk's 1024x768 and a
phone's 390x844, every page checked with axe-core and for sideways scrolling."""

import pytest

from releases.models import Category, EmergencyReview, Scope
from releases.services import outgoing as services
from tests.browser.axe import assert_accessible
from tests.browser.conftest import launched_chromium
from tests.conftest import session_cookie_for
from tests.releases.factories import make_recipient
from tests.releases.outgoing_data import make_record

try:
    from playwright.sync_api import expect
except ImportError:  # the "browser" marker skips (or, in CI, fails) these tests with a reason
    expect = None

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def fits(page, width: int) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    assert_accessible(page)


@pytest.mark.parametrize("viewport", [(1024, 768), (390, 844)])
def test_the_privacy_officer_reviews_an_emergency_release_by_keyboard(
    asgi_server, site, clinician, privacy_officer, director, viewport
):
    person = make_record(site=site, name="Robin Quill").person
    ed = make_recipient(
        site=site, category=Category.TREATMENT_PROVIDER, organisation="County General ED"
    )
    released = services.emergency_release(
        site=site,
        person=person,
        recipient=ed,
        personnel_name="Dr. Ana Ruiz",
        reason="Unresponsive, brought to the ED",
        scope=[Scope.MEDICATIONS],
        by=clinician,
    )
    cookies = {
        "officer": session_cookie_for(privacy_officer),
        "director": session_cookie_for(director),
    }  # before Chromium: no ORM calls while it runs

    width, height = viewport
    with launched_chromium() as browser:
        errors = []

        def open_as(who):
            context = browser.new_context(
                base_url=asgi_server.url, viewport={"width": width, "height": height}
            )
            context.add_cookies([{**cookies[who], "url": asgi_server.url}])
            page = context.new_page()
            page.on("pageerror", lambda error: errors.append(str(error)))
            return page

        page = open_as("officer")
        page.goto("/privacy/")
        waiting = page.get_by_role("region", name="Emergency releases awaiting your review")
        expect(waiting).to_contain_text("Awaiting review")
        fits(page, width)
        waiting.get_by_role("link", name=f"Emergency release {released.pk}").click()
        review = page.get_by_role("region", name="Review")
        expect(review).to_contain_text("Awaiting review")
        fits(page, width)
        finding = review.get_by_role("group", name="Finding")
        finding.get_by_role("radio", name="Appropriate: a medical emergency").focus()
        page.keyboard.press("Space")
        page.keyboard.press("ArrowDown")
        expect(finding.get_by_role("radio", name="Appropriate, with concerns")).to_be_checked()
        page.keyboard.press("Tab")
        page.keyboard.type("Confirmed with the ED that only medications were needed.")
        page.keyboard.press("Tab")
        page.keyboard.press("Enter")
        expect(page.get_by_text("The review is recorded.")).to_be_visible()
        expect(page.get_by_role("region", name="Review")).to_contain_text(
            "Confirmed with the ED that only medications were needed."
        )
        fits(page, width)

        page = open_as("director")
        page.goto("/privacy/emergencies/")
        expect(
            page.get_by_role("heading", name="Emergency releases and their reviews")
        ).to_be_visible()
        expect(page.get_by_role("table")).to_contain_text("Reviewed")
        fits(page, width)
        assert "Robin Quill" not in page.content()
        assert errors == []
        browser.close()

    stored = EmergencyReview.objects.get()
    assert (stored.by, stored.finding) == (privacy_officer, EmergencyReview.Finding.CONCERNS)
