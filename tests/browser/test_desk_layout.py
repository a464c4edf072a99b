"""The front desk and the board at the sizes a clinic has: a 1024 x 768 touchscreen and a
390 x 844 phone. Check-in never needs a scroll to reach its button (before and after the first
check-in, and with a phone's keyboard taking half the screen); the board fits a phone's width;
no control is smaller than 44 x 44 px; every focus ring stands out 3:1; axe-core finds nothing.

Set SHOTS_DIR to keep a screenshot of each state for a person to look at."""

import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from clinic.models import Person
from queues import services
from tests.browser.axe import assert_accessible
from tests.browser.targets import undersized_targets, weak_focus_rings
from tests.browser.test_live_queue import DESK, Screen
from tests.conftest import session_cookie_for
from tests.factories import ServiceFactory, check_in

try:
    from playwright.sync_api import expect
except ImportError:  # the "browser" marker skips (or, in CI, fails) these tests with a reason
    expect = None

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
# A phone with its on-screen keyboard open: about half the screen is left for the page.
PHONE_TYPING = {"width": 390, "height": 420}
# A clinic's services, as the demo has them: the longest list the desk is likely to show.
SERVICES = [
    "Primary care",
    "MOUD (buprenorphine, methadone)",
    "Wound care",
    "HIV/HCV testing",
    "Naloxone and safer-use supplies",
    "Counselling",
    "Social services",
    "Shower and laundry",
]


@pytest.fixture
def clinic_services(site):
    return [ServiceFactory(site=site, name=name) for name in SERVICES]


@pytest.fixture
def desk_cookie(front_desk):
    return session_cookie_for(front_desk)


@pytest.fixture
def clinician_cookie(clinician):
    return session_cookie_for(clinician)


def shoot(page, name: str, *, full_page: bool = False) -> None:
    folder = os.environ.get("SHOTS_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=full_page)


def in_sight(page, locator) -> bool:
    """Wholly inside the viewport as the page is now, without scrolling."""
    box = locator.bounding_box()
    size = page.viewport_size
    return box["y"] >= 0 and box["y"] + box["height"] <= size["height"] and box["x"] >= 0


def assert_fits_and_reachable(page) -> None:
    assert page.evaluate("window.scrollY") == 0
    assert page.evaluate("document.documentElement.scrollWidth") <= page.viewport_size["width"]
    assert undersized_targets(page) == []
    tabbed, weak = weak_focus_rings(page)
    assert tabbed > 5 and weak == []
    page.evaluate("window.scrollTo(0, 0)")
    assert_accessible(page)


@pytest.mark.parametrize("viewport", [DESK, PHONE], ids=["desk", "phone"])
def test_check_in_needs_no_scroll_before_or_after_the_first_check_in(
    asgi_server, site, clinic_services, desk_cookie, viewport, chromium
):
    screen = Screen(chromium, asgi_server, viewport=viewport, cookie=desk_cookie)
    page = screen.page
    label = "desk" if viewport is DESK else "phone"
    page.goto("/queue/")
    button = page.get_by_role("button", name="Check in", exact=True)
    name = page.get_by_label("Name", exact=True)
    assert in_sight(page, name) and in_sight(page, button)
    assert in_sight(page, page.get_by_role("radio", name=SERVICES[-1]))
    shoot(page, f"check-in-{label}-{viewport['width']}x{viewport['height']}")
    assert_fits_and_reachable(page)

    page.evaluate("window.scrollTo(0, 0)")
    name.fill("Marcus Bell")
    page.get_by_role("radio", name="Wound care").check()
    button.click()
    expect(page.get_by_role("heading", name="Marcus Bell is checked in")).to_be_visible()
    # The ticket card is shown above the form: the form's button must still be in sight.
    assert in_sight(page, page.get_by_test_id("ticket-code"))
    assert in_sight(page, name) and in_sight(page, button)
    assert in_sight(page, page.get_by_role("radio", name=SERVICES[-1]))
    shoot(page, f"check-in-{label}-after-first-{viewport['width']}x{viewport['height']}")
    assert_fits_and_reachable(page)
    assert screen.errors == []


def test_check_in_button_stays_in_sight_with_a_phone_keyboard_open(
    asgi_server, site, clinic_services, desk_cookie, chromium
):
    """The on-screen keyboard leaves about half the screen: the button stays in it."""
    screen = Screen(chromium, asgi_server, viewport=PHONE, cookie=desk_cookie)
    page = screen.page
    page.goto("/queue/")
    page.get_by_label("Name", exact=True).fill("Marcus Bell")
    page.get_by_role("radio", name="Wound care").check()
    page.get_by_role("button", name="Check in", exact=True).click()
    expect(page.get_by_test_id("ticket-code")).to_have_text("K-1")

    page.set_viewport_size(PHONE_TYPING)
    name = page.get_by_label("Name", exact=True)
    name.focus()
    name.press_sequentially("Ana")
    assert in_sight(page, name)
    assert in_sight(page, page.get_by_role("button", name="Check in", exact=True))
    shoot(page, "check-in-phone-keyboard-open-390x420")

    # Further down the form (More details), the button is still there at the bottom.
    page.get_by_text("More details").click()
    page.get_by_label("Phone").focus()
    assert in_sight(page, page.get_by_label("Phone"))
    assert in_sight(page, page.get_by_role("button", name="Check in", exact=True))
    assert_accessible(page)


# The button's box against the visual viewport (what is on the glass), not the layout one.
_IN_VISUAL_VIEWPORT = """button => {
  const box = button.getBoundingClientRect(), view = window.visualViewport;
  return box.top >= view.offsetTop - 1 && box.bottom <= view.offsetTop + view.height + 1;
}"""


def test_check_in_button_stays_in_sight_when_only_the_visual_viewport_shrinks(
    asgi_server, site, clinic_services, desk_cookie, chromium
):
    """Phones' browsers open the keyboard over the page: the layout viewport keeps its size
    and only the visual one shrinks (a pinch zoom, emulated here, does the same)."""
    screen = Screen(chromium, asgi_server, viewport=PHONE, cookie=desk_cookie)
    page = screen.page
    page.goto("/queue/")
    button = page.get_by_role("button", name="Check in", exact=True)
    page.context.new_cdp_session(page).send("Emulation.setPageScaleFactor", {"pageScaleFactor": 2})
    page.wait_for_function("window.visualViewport.height < 500")
    expect(button).to_be_visible()
    page.wait_for_function(_IN_VISUAL_VIEWPORT, arg=button.element_handle(), timeout=5000)
    assert screen.errors == []


@pytest.fixture
def busy_day(site, clinic_services, front_desk, clinician, room):
    """Three waiting (one urgent, one stepped out), one called, one with staff, one done."""
    now = timezone.now()
    people = [
        Person.objects.create(site=site, name=name, pronouns=pronouns)
        for name, pronouns in [
            ("Marcus Reyes", "he/him"),
            ("Zoë O'Brien-Ngata", "she/her"),
            ("Alexandria Whitehorse-Delacroix", "they/them"),
            ("Jo Smith", ""),
            ("Sam Lee", ""),
            ("Kim Park", ""),
        ]
    ]
    wound, primary = clinic_services[2], clinic_services[0]
    arrivals = [
        check_in(
            site=site, by=front_desk, person=person, service=service, now=now - timedelta(minutes=m)
        )
        for person, service, m in zip(
            people,
            [wound, primary, None, wound, primary, wound],
            [50, 40, 30, 20, 10, 5],
            strict=True,
        )
    ]
    services.arrival_step_out(arrival=arrivals[2], by=front_desk, revision=None)
    services.arrival_call(arrival=arrivals[3], by=clinician, revision=None, room=room)
    services.arrival_start(arrival=arrivals[4], by=clinician, revision=None)
    services.arrival_start(arrival=arrivals[5], by=clinician, revision=None)
    services.arrival_finish(arrival=arrivals[5], by=clinician, revision=None)
    return arrivals


def test_board_on_a_phone_fits_its_width(asgi_server, busy_day, clinician_cookie, chromium):
    screen = Screen(chromium, asgi_server, viewport=PHONE, cookie=clinician_cookie)
    page = screen.page
    page.goto("/queue/board/")
    expect(page.locator("#live-status")).to_have_text("Live: this list updates by itself.")
    waiting = page.get_by_test_id("waiting")
    expect(waiting.get_by_role("rowheader")).to_have_count(3)
    width = PHONE["width"]
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    # Every row's controls are within the screen's width, none cut off.
    for control in page.locator("[data-focus-key]").all():
        box = control.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= width, control.text_content()
    shoot(page, "board-phone-390x844")
    shoot(page, "board-phone-390-whole-page", full_page=True)
    assert_fits_and_reachable(page)
    assert screen.errors == []


def test_board_at_the_desk_has_large_targets_and_visible_focus(
    asgi_server, busy_day, clinician_cookie, chromium
):
    screen = Screen(chromium, asgi_server, viewport=DESK, cookie=clinician_cookie)
    page = screen.page
    page.goto("/queue/board/")
    expect(page.locator("#live-status")).to_have_text("Live: this list updates by itself.")
    assert undersized_targets(page) == []
    tabbed, weak = weak_focus_rings(page)
    assert tabbed > 15 and weak == []
    assert screen.errors == []
