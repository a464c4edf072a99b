"""The live queue as people see it: headless Chromium against a real daphne process.

The front desk, a clinician's board and the waiting-room display each get their own browser
context (their own cookies), the way three different screens in a clinic would.

Playwright's sync API runs an event loop in this thread, and Django refuses synchronous ORM
calls while one is running. So data is set up before Chromium starts, and anything that has to
touch the database afterwards goes through `in_thread`.
"""

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone

from clinic.models import Person
from queues import services
from queues.models import Arrival
from tests.conftest import session_cookie_for
from tests.factories import check_in

try:
    from playwright.sync_api import expect
except ImportError:  # the "browser" marker skips (or, in CI, fails) these tests with a reason
    expect = None

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DESK = {"width": 1024, "height": 768}  # a touchscreen at the front desk
BOARD = {"width": 1280, "height": 800}
TV = {"width": 1280, "height": 720}
# Well under the 4 s polling interval: anything seen this fast came over the websocket.
LIVE_MS = 3000
BOARD_LIVE_TEXT = "Live: this list updates by itself."
BOARD_OFFLINE_TEXT = "Reconnecting… this list refreshes every few seconds meanwhile."


def in_thread(fn, *args, **kwargs):
    """Run database code outside Playwright's event loop, on a connection of its own."""

    def target():
        try:
            return fn(*args, **kwargs)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(target).result()


class Screen:
    """One browser context and its page; collects script errors so a test can insist on none."""

    def __init__(self, browser, server, *, viewport, cookie=None):
        self.context = browser.new_context(base_url=server.url, viewport=viewport)
        if cookie is not None:
            self.context.add_cookies([{**cookie, "url": server.url}])
        self.page = self.context.new_page()
        self.errors = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))

    def mark_loaded(self):
        """Tag the current document; `reloaded()` is true once the page has been replaced."""
        self.page.evaluate("window.__sameDocument = true")

    def reloaded(self) -> bool:
        return self.page.evaluate("window.__sameDocument !== true")


def open_board(browser, server, cookie, *, room=None) -> Screen:
    board = Screen(browser, server, viewport=BOARD, cookie=cookie)
    board.page.goto("/queue/board/")
    if room is not None:
        board.page.get_by_label("Your room").select_option(label=room)
        board.page.get_by_role("button", name="Save room").click()
        expect(board.page.get_by_role("status").first).to_contain_text(f"sent to {room}")
    expect(board.page.locator("#live-status")).to_have_text(BOARD_LIVE_TEXT)
    board.mark_loaded()
    return board


def open_display(browser, server, site) -> Screen:
    display = Screen(browser, server, viewport=TV)
    display.page.goto(f"/queue/display/{site.display_token}/")
    # The display's "live" text is empty: the status clears once its socket is open.
    expect(display.page.locator("#live-status")).to_have_text("")
    display.mark_loaded()
    return display


def log_in(screen: Screen, username: str, password: str, *, next_path: str):
    page = screen.page
    page.goto(next_path)
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"**{next_path}")


@pytest.fixture
def clinician_cookie(clinician):
    return session_cookie_for(clinician)


@pytest.fixture
def front_desk_cookie(front_desk):
    return session_cookie_for(front_desk)


@pytest.fixture
def front_desk_password(front_desk):
    """A real password, for signing in through the login form."""
    password = f"pw-{uuid.uuid4()}"
    front_desk.set_password(password)
    front_desk.save()
    return password


@pytest.fixture
def marcus(site, front_desk):
    """Marcus was here three days ago and left before being seen (ticket K-1 that day)."""
    three_days_ago = timezone.now() - timedelta(days=3)
    person = Person.objects.create(site=site, name="Marcus Reyes", what_helps="has a dog")
    past = check_in(site=site, by=front_desk, person=person, now=three_days_ago)
    services.arrival_mark_left(arrival=past, by=front_desk, revision=None, now=three_days_ago)
    return person


def test_check_in_appears_on_open_board_and_display_and_a_call_reaches_the_display(
    asgi_server, site, service, room, front_desk_password, clinician_cookie, chromium
):
    board = open_board(chromium, asgi_server, clinician_cookie, room="Room 2")
    display = open_display(chromium, asgi_server, site)
    desk = Screen(chromium, asgi_server, viewport=DESK)
    log_in(desk, "robin", front_desk_password, next_path="/queue/")
    desk.page.get_by_label("Name", exact=True).press_sequentially("Marcus Bell")
    expect(desk.page.locator("#matches")).to_contain_text("No one known by that name yet")
    desk.page.get_by_role("radio", name="Wound care").check()
    desk.page.get_by_role("button", name="Check in", exact=True).click()

    ticket = desk.page.get_by_test_id("ticket-code")
    expect(ticket).to_have_text("K-1")
    expect(desk.page.get_by_role("heading", name="Marcus Bell is checked in")).to_be_visible()

    waiting = board.page.get_by_test_id("waiting")
    expect(waiting.get_by_role("rowheader", name="Marcus Bell")).to_be_visible(timeout=LIVE_MS)
    expect(waiting).to_contain_text("Wound care")
    expect(board.page.get_by_role("heading", name="1 waiting")).to_be_visible()
    expect(display.page.get_by_test_id("waiting-codes")).to_have_text("K-1", timeout=LIVE_MS)
    expect(display.page.locator("body")).not_to_contain_text("Marcus")
    expect(display.page.locator("body")).not_to_contain_text("Wound care")
    assert not board.reloaded()
    assert not display.reloaded()

    board.page.get_by_role("button", name="Call next", exact=True).click()
    expect(board.page.get_by_role("status").first).to_contain_text(
        "Called K-1 (Marcus Bell) to Room 2."
    )

    calling = display.page.locator(".now-calling")
    expect(calling).to_contain_text("Now calling", timeout=LIVE_MS)
    expect(display.page.get_by_test_id("now-calling")).to_have_text("K-1")
    expect(calling).to_contain_text("Please go to Room 2")
    expect(display.page.get_by_test_id("waiting-codes")).not_to_contain_text("K-1")
    expect(display.page.locator("body")).not_to_contain_text("Marcus")
    assert not display.reloaded()
    assert board.errors == desk.errors == display.errors == []


def test_returning_person_is_offered_with_last_visit_and_checked_in_as_themselves(
    asgi_server, site, marcus, front_desk_cookie, clinician_cookie, chromium
):
    board = open_board(chromium, asgi_server, clinician_cookie)
    desk = Screen(chromium, asgi_server, viewport=DESK, cookie=front_desk_cookie)
    desk.page.goto("/queue/")

    desk.page.get_by_label("Name", exact=True).press_sequentially("marc")
    match = desk.page.get_by_role("button", name="Marcus Reyes")
    expect(match).to_contain_text("last here 3 days ago")
    expect(match).to_contain_text("has a dog")
    match.click()
    expect(desk.page.locator("#selected-person")).to_contain_text("Welcome back, Marcus Reyes")
    expect(desk.page.get_by_label("Name", exact=True)).to_have_value("Marcus Reyes")
    desk.page.get_by_role("button", name="Check in", exact=True).click()

    expect(desk.page.get_by_role("heading", name="Welcome back, Marcus Reyes")).to_be_visible()
    expect(desk.page.get_by_test_id("ticket-code")).to_have_text("K-1")  # a new day
    expect(
        board.page.get_by_test_id("waiting").get_by_role("rowheader", name="Marcus Reyes")
    ).to_be_visible(timeout=LIVE_MS)
    assert board.errors == desk.errors == []

    people, arrivals = in_thread(
        lambda: (
            list(Person.objects.filter(site=site).values_list("name", flat=True)),
            list(Arrival.objects.filter(person=marcus).values_list("ticket", "state")),
        )
    )
    assert people == ["Marcus Reyes"]
    assert sorted(arrivals) == [("K-1", "left"), ("K-1", "waiting")]


def _close_every_socket(page):
    """A proxy that drops the upgrade: the page's socket closes without ever opening."""
    page.route_web_socket("**/ws/**", lambda ws: ws.close())


def _refuse_to_open_sockets(page):
    """A browser policy that refuses websockets outright: the constructor throws."""
    page.add_init_script(
        "window.WebSocket = function () { throw new DOMException('blocked', 'SecurityError'); };"
    )


@pytest.mark.parametrize("block", [_close_every_socket, _refuse_to_open_sockets])
def test_board_falls_back_to_polling_when_its_websocket_cannot_connect(
    asgi_server, site, front_desk, clinician_cookie, chromium, block
):
    board = Screen(chromium, asgi_server, viewport=BOARD, cookie=clinician_cookie)
    block(board.page)
    board.page.goto("/queue/board/")
    expect(board.page.locator("#live-status")).to_have_text(BOARD_OFFLINE_TEXT)
    board.mark_loaded()

    in_thread(check_in, site=site, by=front_desk, name="Jess Polling")

    expect(
        board.page.get_by_test_id("waiting").get_by_role("rowheader", name="Jess Polling")
    ).to_be_visible(timeout=10_000)
    expect(board.page.locator("#live-status")).to_have_text(BOARD_OFFLINE_TEXT)
    assert not board.reloaded()
    assert board.errors == []
