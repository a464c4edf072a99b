"""The history of changes as the privacy officer sees it: headless Chromium against a real
daphne process, at the front desk's 1024x768 and a phone's 390x844, checked with axe-core."""

import pytest
from django.test import Client
from django.urls import reverse

from tests.browser.axe import assert_accessible
from tests.browser.conftest import launched_chromium, main_nav
from tests.conftest import session_cookie_for
from tests.factories import PersonFactory

try:
    from playwright.sync_api import expect
except ImportError:  # the "browser" marker skips (or, in CI, fails) these tests with a reason
    expect = None

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("viewport", [(1024, 768), (390, 844)])
def test_the_privacy_officer_reads_who_changed_a_name_on_the_person_page(
    asgi_server, site, front_desk, privacy_officer, viewport
):
    front_desk.first_name, front_desk.last_name = "Robin", "Park"
    front_desk.save()
    person = PersonFactory(site=site, name="Marcus")
    desk = Client()
    desk.force_login(front_desk)
    response = desk.post(
        reverse("visits:person_edit", args=[person.pk]),
        {"name": "Mark", "what_helps": "Likes the quiet room"},
    )
    assert response.status_code == 302
    cookie = session_cookie_for(privacy_officer)  # before Chromium: no ORM calls after

    width, height = viewport
    with launched_chromium() as browser:
        context = browser.new_context(
            base_url=asgi_server.url, viewport={"width": width, "height": height}
        )
        context.add_cookies([{**cookie, "url": asgi_server.url}])
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"/people/{person.pk}/")

        section = page.get_by_role("region", name="History of changes")
        expect(section).to_be_visible()
        change = section.get_by_role("table").first
        expect(change).to_contain_text("Changed Person's details")
        expect(change).to_contain_text("Robin Park (robin)")
        name_row = change.get_by_role("row").filter(has=page.get_by_role("rowheader", name="Name"))
        expect(name_row.get_by_role("cell")).to_have_text(["Marcus", "Mark"])
        expect(change.get_by_role("columnheader")).to_have_text(["Field", "Before", "After"])
        # Nothing sideways: the page fits the screen's width.
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        section.scroll_into_view_if_needed()
        assert_accessible(page)

        # The Changes page, from the navigation, by keyboard as well as by pointer.
        main_nav(page).get_by_role("link", name="Changes", exact=True).focus()
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", name="History of changes", level=1)).to_be_visible()
        expect(page.get_by_role("table").first).to_contain_text("about Mark")
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        assert_accessible(page)
        assert errors == []
        browser.close()
