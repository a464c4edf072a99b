"""The header on a phone: its links fold behind "Menu" (static/js/menu.js), so none is off the
edge of the screen; by touch and by keyboard alone it opens, every link then within the screen
and reachable, and Escape closes it with the focus back on the button. At the desk's size the
links show as they are and there is no button."""

import pytest

from tests.browser.axe import assert_accessible
from tests.browser.test_live_queue import DESK, Screen
from tests.conftest import session_cookie_for

try:
    from playwright.sync_api import expect
except ImportError:  # the "browser" marker skips (or, in CI, fails) these tests with a reason
    expect = None

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
LINKS = ["Check in", "Queue", "Record a contact", "Your account"]


@pytest.fixture
def clinician_cookie(clinician):
    return session_cookie_for(clinician)


def within_width(page, locator) -> bool:
    box = locator.bounding_box()
    width = page.viewport_size["width"]
    return box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width


def test_on_a_phone_the_links_fold_behind_menu_and_open_by_touch_and_keyboard(
    asgi_server, site, clinician_cookie, chromium
):
    context = chromium.new_context(
        base_url=asgi_server.url, viewport=PHONE, has_touch=True, is_mobile=True
    )
    context.add_cookies([{**clinician_cookie, "url": asgi_server.url}])
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto("/account/")
    header = page.get_by_role("banner")
    nav = page.get_by_role("navigation", name="Main")
    menu = header.get_by_role("button", name="Menu")

    expect(menu).to_be_visible()
    expect(menu).to_have_attribute("aria-expanded", "false")
    expect(nav).to_be_hidden()
    assert within_width(page, menu)
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")
    assert_accessible(page)

    menu.tap()
    expect(menu).to_have_attribute("aria-expanded", "true")
    for name in LINKS:
        link = nav.get_by_role("link", name=name, exact=True)
        expect(link).to_be_visible()
        assert within_width(page, link), name
    log_out = nav.get_by_role("button", name="Log out")
    expect(log_out).to_be_visible()
    assert within_width(page, log_out)
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")
    assert_accessible(page)

    # A tap on the page outside the header closes it.
    page.get_by_role("main").tap(position={"x": 20, "y": 300})
    expect(menu).to_have_attribute("aria-expanded", "false")
    expect(nav).to_be_hidden()

    # The keyboard alone: the skip link, then Menu; Enter opens, Tab reaches the first link,
    # Escape closes and gives the focus back to the button. (The board: the account page puts
    # the focus in its first field.)
    page.goto("/queue/board/")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    expect(menu).to_be_focused()
    page.keyboard.press("Enter")
    expect(menu).to_have_attribute("aria-expanded", "true")
    page.keyboard.press("Tab")
    expect(nav.get_by_role("link", name="Check in")).to_be_focused()
    page.keyboard.press("Escape")
    expect(nav).to_be_hidden()
    expect(menu).to_be_focused()

    # Going on to a link from the menu goes there.
    menu.tap()
    nav.get_by_role("link", name="Your account", exact=True).tap()
    expect(page).to_have_url(f"{asgi_server.url}/account/")
    assert errors == []


def test_at_the_desk_the_links_show_and_there_is_no_menu_button(
    asgi_server, site, clinician_cookie, chromium
):
    screen = Screen(chromium, asgi_server, viewport=DESK, cookie=clinician_cookie)
    page = screen.page
    page.goto("/account/")
    nav = page.get_by_role("navigation", name="Main")

    expect(page.get_by_role("button", name="Menu")).to_be_hidden()
    for name in LINKS:
        expect(nav.get_by_role("link", name=name, exact=True)).to_be_visible()
    expect(nav.get_by_role("button", name="Log out")).to_be_visible()
    assert screen.errors == []
