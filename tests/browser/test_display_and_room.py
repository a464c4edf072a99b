"""The waiting-room TV and the clinician's room, in headless Chromium against a real server.

The TV: every waiting code fits on a 1920x1080 or 1280x720 screen however many are waiting
(smaller codes first, then pages that turn), an empty "also called" shows nothing, and a site
that wants a chime gets one for each new call once someone has tapped "Tap to turn sound on".
The board: the day's first call asks for the room, the remembered one chosen, by touch or by
keyboard. axe-core checks each of these screens.
"""

from datetime import timedelta

import pytest

from clinic.dates import site_today
from queues import services
from queues.models import StaffRoom
from tests.browser.axe import assert_accessible
from tests.browser.test_live_queue import LIVE_MS, Screen, in_thread
from tests.conftest import session_cookie_for
from tests.factories import RoomFactory, check_in

try:
    from playwright.sync_api import expect
except ImportError:  # the "browser" marker skips (or, in CI, fails) these tests with a reason
    expect = None

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

FULL_HD = {"width": 1920, "height": 1080}
HD = {"width": 1280, "height": 720}
DESK = {"width": 1024, "height": 768}
PHONE = {"width": 390, "height": 844}
PAGE_MS = 8000  # static/js/display.js

# Where each visible waiting code is, and the box of the list that clips them.
BOXES = """() => {
  const list = document.querySelector("ul[data-testid=waiting-codes]");
  const box = r => ({top: r.top, bottom: r.bottom, left: r.left, right: r.right});
  return {
    list: box(list.getBoundingClientRect()),
    codes: [...list.querySelectorAll("li:not([hidden])")].map(
      li => ({code: li.textContent, ...box(li.getBoundingClientRect())})),
  };
}"""


def waiting(site, by, count: int) -> list[str]:
    return [check_in(site=site, by=by, name=f"Person {n}").ticket for n in range(count)]


def open_display(browser, server, site, *, viewport, clock=False) -> Screen:
    display = Screen(browser, server, viewport=viewport)
    if clock:
        display.page.clock.install()
    display.page.goto(f"/queue/display/{site.display_token}/")
    return display


def shown_codes(page, viewport) -> list[str]:
    """The codes on screen now, each checked to be wholly inside the list and the screen."""
    boxes = page.evaluate(BOXES)
    ul = boxes["list"]
    assert ul["bottom"] <= viewport["height"] and ul["right"] <= viewport["width"]
    for code in boxes["codes"]:
        assert ul["top"] <= code["top"] and code["bottom"] <= ul["bottom"] + 0.5, code
        assert ul["left"] <= code["left"] and code["right"] <= ul["right"] + 0.5, code
    return [code["code"] for code in boxes["codes"]]


@pytest.mark.parametrize("viewport", [FULL_HD, HD], ids=["1920x1080", "1280x720"])
def test_forty_waiting_all_fit_on_the_tv(
    asgi_server, site, room, front_desk, clinician, viewport, chromium
):
    def setup():
        tickets = waiting(site, front_desk, 42)
        services.arrival_call_next(site=site, by=clinician, room=room)
        services.arrival_call_next(site=site, by=clinician)  # one "also called"
        return tickets

    tickets = in_thread(setup)

    display = open_display(chromium, asgi_server, site, viewport=viewport)

    expect(display.page.get_by_test_id("now-calling")).to_have_text("K-2")
    assert shown_codes(display.page, viewport) == tickets[2:]
    expect(display.page.get_by_test_id("page-of")).to_have_text("")
    for person in ("Person", "Alex"):
        expect(display.page.locator("body")).not_to_contain_text(person)
    assert_accessible(display.page)
    assert display.errors == []


def test_two_hundred_waiting_turn_pages_that_each_fit(
    asgi_server, site, room, front_desk, clinician, chromium
):
    def setup():
        tickets = waiting(site, front_desk, 202)
        services.arrival_call_next(site=site, by=clinician, room=room)
        services.arrival_call_next(site=site, by=clinician)
        return tickets[2:]

    tickets = in_thread(setup)

    display = open_display(chromium, asgi_server, site, viewport=FULL_HD, clock=True)

    label = display.page.get_by_test_id("page-of")
    expect(label).to_contain_text("Page 1 of ")
    pages = int(label.inner_text().rsplit(" ", 1)[1])
    assert pages > 1
    seen, sizes = [], []
    for number in range(1, pages + 1):
        expect(label).to_have_text(f"Page {number} of {pages}")
        codes = shown_codes(display.page, FULL_HD)
        assert codes and not set(codes) & set(seen)
        seen += codes
        sizes.append(len(codes))
        display.page.clock.run_for(PAGE_MS)
    assert seen == tickets
    # The rows shared out evenly: no page a lone row while the others are full.
    assert min(sizes) >= max(sizes) * 2 // 3, sizes
    expect(label).to_have_text(f"Page 1 of {pages}")  # round again
    assert_accessible(display.page)
    assert display.errors == []


def test_pages_keep_turning_while_snapshots_keep_coming(asgi_server, site, front_desk, chromium):
    in_thread(waiting, site, front_desk, 300)
    display = open_display(chromium, asgi_server, site, viewport=HD, clock=True)
    label = display.page.get_by_test_id("page-of")
    expect(label).to_contain_text("Page 1 of ")

    # A busy clinic: a new snapshot (as live.js puts it in) every 5 seconds, under the 8 a page.
    for _ in range(2):
        display.page.clock.run_for(5000)
        display.page.evaluate(
            "() => { const r = document.getElementById('display'); r.innerHTML = r.innerHTML; }"
        )

    expect(label).to_contain_text("Page 2 of ")
    assert display.errors == []


def test_a_quiet_tv_shows_sentences_not_dashes(asgi_server, site, chromium):
    display = open_display(chromium, asgi_server, site, viewport=HD)

    expect(display.page.get_by_test_id("waiting-codes")).to_have_text(
        "No one is waiting right now."
    )
    expect(display.page.get_by_role("heading", name="Also called")).to_have_count(0)
    expect(display.page.locator("li")).to_have_count(0)
    expect(display.page.get_by_role("button", name="Tap to turn sound on")).to_have_count(0)
    assert_accessible(display.page)


# Counts the notes the display starts; sound is "running" only after a tap resumes it.
FAKE_AUDIO = """
window.__notes = 0;
window.AudioContext = class {
  constructor() { this.state = "suspended"; this.currentTime = 0; this.destination = {}; }
  addEventListener() {}
  resume() { this.state = "running"; return Promise.resolve(); }
  createGain() { return {gain: {setValueAtTime() {}, exponentialRampToValueAtTime() {}},
                         connect() {}}; }
  createOscillator() { return {frequency: {}, connect(node) { return node; },
                               start() { window.__notes += 1; }, stop() {}}; }
};
"""


def notes(display) -> int:
    return display.page.evaluate("window.__notes")


def test_the_chime_plays_for_new_calls_once_sound_is_on(
    asgi_server, site, room, front_desk, clinician, chromium
):
    def setup():
        site.display_chime = True
        site.save()
        for _ in range(4):
            check_in(site=site, by=front_desk)
        services.arrival_call_next(site=site, by=clinician, room=room)  # K-1, before the TV loads
        services.staff_room_remember(site=site, user=clinician, room=room)
        return session_cookie_for(clinician)

    board = Screen(chromium, asgi_server, viewport=DESK, cookie=in_thread(setup))
    board.page.goto("/queue/board/")
    display = Screen(chromium, asgi_server, viewport=HD)
    display.page.add_init_script(FAKE_AUDIO)
    display.page.goto(f"/queue/display/{site.display_token}/")
    expect(display.page.locator("#live-status")).to_have_text("")
    button = display.page.get_by_role("button", name="Tap to turn sound on")
    expect(button).to_be_visible()
    assert_accessible(display.page)
    calling = display.page.get_by_test_id("now-calling")

    board.page.get_by_role("button", name="Call next", exact=True).click()
    expect(calling).to_have_text("K-2", timeout=LIVE_MS)
    assert notes(display) == 0  # no sound before a tap: the button stays
    expect(button).to_be_visible()

    button.click()
    expect(button).to_be_hidden()
    assert notes(display) == 2  # the tap's own chime (two notes), so whoever tapped hears it

    version = display.page.locator("#display").get_attribute("data-version")
    board.page.get_by_role("button", name="Stepped out K-3").click()  # a change, no new call
    expect(display.page.locator("#display")).not_to_have_attribute(
        "data-version", version, timeout=LIVE_MS
    )
    assert notes(display) == 2

    board.page.get_by_role("button", name="Call next", exact=True).click()
    expect(calling).to_have_text("K-4", timeout=LIVE_MS)
    display.page.wait_for_function("window.__notes === 4")

    board.page.get_by_role("button", name="Undo K-4").click()
    expect(calling).to_have_text("K-2", timeout=LIVE_MS)
    assert notes(display) == 4  # an undone call bringing an older one back is no new call
    assert board.errors == display.errors == []


def test_turning_the_chime_on_and_off_reaches_a_display_already_showing(
    asgi_server, site, room, front_desk, clinician, director, chromium
):
    def setup():
        for _ in range(3):
            check_in(site=site, by=front_desk)
        services.staff_room_remember(site=site, user=clinician, room=room)
        return session_cookie_for(clinician), session_cookie_for(director)

    clinician_cookie, director_cookie = in_thread(setup)
    display = Screen(chromium, asgi_server, viewport=HD)
    display.page.add_init_script(FAKE_AUDIO)
    display.page.goto(f"/queue/display/{site.display_token}/")
    expect(display.page.locator("#live-status")).to_have_text("")
    display.mark_loaded()
    button = display.page.get_by_role("button", name="Tap to turn sound on")
    expect(button).to_be_hidden()  # the site wants no chime
    calling = display.page.get_by_test_id("now-calling")
    board = Screen(chromium, asgi_server, viewport=DESK, cookie=clinician_cookie)
    board.page.goto("/queue/board/")
    admin = Screen(chromium, asgi_server, viewport=DESK, cookie=director_cookie)

    def set_chime(on: bool):
        admin.page.goto(f"/admin/clinic/site/{site.pk}/change/")
        admin.page.get_by_label("chime on the waiting-room display").set_checked(on)
        admin.page.get_by_role("button", name="Save", exact=True).click()
        expect(admin.page.locator(".messagelist")).to_contain_text("was changed successfully")

    set_chime(True)
    expect(button).to_be_visible(timeout=LIVE_MS)  # no reload: the snapshot carried it
    button.click()
    expect(button).to_be_hidden()
    assert notes(display) == 2  # the tap's own chime
    board.page.get_by_role("button", name="Call next", exact=True).click()
    expect(calling).to_have_text("K-1", timeout=LIVE_MS)
    display.page.wait_for_function("window.__notes === 4")

    set_chime(False)
    expect(display.page.locator("#display [data-chime]")).to_have_attribute(
        "data-chime", "off", timeout=LIVE_MS
    )
    board.page.get_by_role("button", name="Call next", exact=True).click()
    expect(calling).to_have_text("K-2", timeout=LIVE_MS)
    assert notes(display) == 4  # off: a new call is quiet
    expect(button).to_be_hidden()
    assert not display.reloaded()
    assert board.errors == display.errors == admin.errors == []


def test_the_days_first_call_asks_for_the_room_by_keyboard(
    asgi_server, site, room, front_desk, clinician, chromium
):
    def setup():
        RoomFactory(site=site, name="Room 3")
        StaffRoom.objects.create(
            user=clinician, site=site, room=room, confirmed_on=site_today(site) - timedelta(days=1)
        )
        check_in(site=site, by=front_desk, name="Marcus Bell")
        return session_cookie_for(clinician)

    board = Screen(chromium, asgi_server, viewport=DESK, cookie=in_thread(setup))
    tv = open_display(chromium, asgi_server, site, viewport=HD)
    board.page.goto("/queue/board/")
    expect(board.page.get_by_test_id("room-unset")).to_have_count(0)  # remembered: Room 2

    board.page.get_by_role("button", name="Call next", exact=True).click()

    page = board.page
    expect(page.get_by_role("heading", name="Your room today")).to_be_visible()
    expect(page.get_by_role("radio", name="Room 2")).to_be_checked()
    expect(page.get_by_role("button", name="Call to this room")).to_be_focused()
    assert_accessible(page)
    page.keyboard.press("Shift+Tab")
    expect(page.get_by_role("radio", name="Room 2")).to_be_focused()
    page.keyboard.press("ArrowDown")
    expect(page.get_by_role("radio", name="Room 3")).to_be_checked()
    page.keyboard.press("Enter")

    expect(page.get_by_role("status").first).to_contain_text("Called K-1 (Marcus Bell) to Room 3.")
    expect(tv.page.locator(".now-calling")).to_contain_text("Please go to Room 3", timeout=LIVE_MS)
    assert board.errors == tv.errors == []


def test_an_unset_room_is_plain_on_the_board_and_the_question_fits_a_phone(
    asgi_server, site, room, front_desk, clinician, chromium
):
    in_thread(check_in, site=site, by=front_desk, name="Marcus Bell")
    cookie = in_thread(session_cookie_for, clinician)
    board = Screen(chromium, asgi_server, viewport=PHONE, cookie=cookie)
    board.page.goto("/queue/board/")

    notice = board.page.get_by_test_id("room-unset")
    expect(notice).to_contain_text("No room chosen")
    expect(
        board.page.get_by_role("button", name="Call next", exact=True)
    ).to_have_accessible_description(
        "No room chosen: the people you call will be asked to come to the front desk. "
        "Choose your room here."
    )
    assert_accessible(board.page)

    board.page.get_by_role("button", name="Call next", exact=True).click()
    board.page.get_by_role("radio", name="Room 2").check()
    confirm = board.page.get_by_role("button", name="Call to this room")
    box = confirm.bounding_box()
    assert box["height"] >= 44 and box["y"] + box["height"] <= PHONE["height"]
    assert_accessible(board.page)
    confirm.click()

    expect(board.page.get_by_role("status").first).to_contain_text("to Room 2.")
    expect(board.page.get_by_test_id("room-unset")).to_have_count(0)
    assert board.errors == []
