"""A board patched in place: while others check people in and call them, the worker at a board
keeps the focus on the button they were at, and that button stays where it was on the screen;
the board gets patches, not whole snapshots, stays accessible (axe-core) and ends up as a
reload would show it."""

import json

import pytest

from tests.browser.axe import assert_accessible
from tests.browser.test_live_queue import (
    BOARD_LIVE_TEXT,
    DESK,
    LIVE_MS,
    Screen,
    clinician_cookie,  # noqa: F401  (fixture)
    front_desk_cookie,  # noqa: F401  (fixture)
)
from tests.factories import check_in

try:
    from playwright.sync_api import expect
except ImportError:  # the "browser" marker skips (or, in CI, fails) these tests with a reason
    expect = None

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# The live fragment as compared: no whitespace between tags, no wait labels (the page ticks
# them itself, so a patched page and a reload may be a minute apart).
SHOWN = """() => document.querySelector("[data-live]").innerHTML
  .replace(/>\\s+</g, "><")
  .replace(/(<span class="wait)(?: long)?("[^>]*>)[^<]*(<\\/span>)/g, "$1$2$3")
  .trim()"""
FOCUS_KEY = "() => document.activeElement && document.activeElement.dataset.focusKey"


def top_of(page, selector) -> float:
    return page.eval_on_selector(selector, "el => el.getBoundingClientRect().top")


def frames_of(page) -> list[str]:
    """The types of the frames the page's sockets receive, as they come."""
    types = []
    page.on(
        "websocket",
        lambda ws: ws.on(
            "framereceived", lambda payload: types.append(json.loads(payload)["type"])
        ),
    )
    return types


def desk_checks_in(desk, name):
    desk.page.goto("/queue/")
    desk.page.get_by_label("Name", exact=True).fill(name)
    desk.page.get_by_role("button", name="Check in", exact=True).click()
    expect(desk.page.get_by_role("heading", name=f"{name} is checked in")).to_be_visible()


@pytest.fixture
def forty_waiting(site, front_desk):
    return [check_in(site=site, by=front_desk, name=f"Person Number {i}") for i in range(40)]


@pytest.mark.parametrize("viewport", [DESK, {"width": 390, "height": 844}], ids=["desk", "phone"])
def test_focus_and_place_stay_while_others_check_in_and_call(
    asgi_server,
    forty_waiting,
    clinician_cookie,  # noqa: F811
    front_desk_cookie,  # noqa: F811
    chromium,
    viewport,
):
    waiting = forty_waiting
    target = f'[data-focus-key="{waiting[20].pk}-call"]'

    board = Screen(chromium, asgi_server, viewport=viewport, cookie=clinician_cookie)
    frames = frames_of(board.page)
    board.page.goto("/queue/board/")
    expect(board.page.locator("#live-status")).to_have_text(BOARD_LIVE_TEXT)
    board.mark_loaded()
    other_board = Screen(chromium, asgi_server, viewport=DESK, cookie=clinician_cookie)
    other_board.page.goto("/queue/board/")
    desk = Screen(chromium, asgi_server, viewport=DESK, cookie=front_desk_cookie)

    # The worker scrolls down to the 21st person and puts the focus on their Call button.
    page = board.page
    page.locator(target).focus()
    page.evaluate(
        f"window.scrollBy(0, document.querySelector('{target}')"
        ".getBoundingClientRect().top - window.innerHeight / 2)"
    )
    scrolled, top = page.evaluate("window.scrollY"), top_of(page, target)
    assert scrolled > 0
    assert page.evaluate(FOCUS_KEY) == f"{waiting[20].pk}-call"

    # Below them: two check-ins at the desk. Nothing moves.
    for name in ("Marcus Bell", "Jo Banks"):
        desk_checks_in(desk, name)
        expect(page.get_by_role("rowheader", name=name)).to_be_attached(timeout=LIVE_MS)
        assert page.evaluate(FOCUS_KEY) == f"{waiting[20].pk}-call"
        assert page.evaluate("window.scrollY") == scrolled
        assert top_of(page, target) == pytest.approx(top, abs=1)

    # Above them: a colleague calls the first person. The row the worker is at stays put.
    other_board.page.get_by_role("button", name="Call next", exact=True).click()
    called = page.get_by_test_id("in-progress").get_by_role("rowheader", name="Person Number 0")
    expect(called).to_be_attached(timeout=LIVE_MS)
    assert page.evaluate(FOCUS_KEY) == f"{waiting[20].pk}-call"
    assert top_of(page, target) == pytest.approx(top, abs=1)

    # Keyboard alone still works from there: Tab moves on to the next control of that row.
    page.keyboard.press("Tab")
    assert page.evaluate(FOCUS_KEY) == f"{waiting[20].pk}-step-out"

    assert frames[0] == "snapshot" and frames[1:] == ["patch"] * 3
    assert not board.reloaded()
    assert_accessible(page)
    patched = page.evaluate(SHOWN)
    page.reload()
    expect(page.locator("#live-status")).to_have_text(BOARD_LIVE_TEXT)
    assert page.evaluate(SHOWN) == patched
    assert board.errors == other_board.errors == desk.errors == []
