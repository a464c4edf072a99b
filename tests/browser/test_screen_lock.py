"""The screen lock as people meet it: headless Chromium against a real daphne process whose
idle time is a few seconds (IDLE_SECONDS).

Data is set up by fixtures before Chromium starts (Django refuses the ORM inside Playwright's
event loop); anything later goes through `in_thread`.
"""

import re
import time
import urllib.request
import uuid
from urllib.parse import parse_qs

import pytest
from django.conf import settings as django_settings
from django.contrib.sessions.models import Session

from queues import services
from tests.browser.axe import assert_accessible
from tests.browser.conftest import launched_chromium
from tests.browser.test_live_queue import (
    BOARD,
    BOARD_LIVE_TEXT,
    DESK,
    LIVE_MS,
    Screen,
    in_thread,
)
from tests.conftest import session_cookie_for, start_asgi_server, stop_asgi_server
from tests.factories import check_in
from visits.models import Visit

try:
    from playwright.sync_api import expect
except ImportError:  # the "browser" marker skips (or, in CI, fails) these tests with a reason
    expect = None

pytestmark = pytest.mark.django_db(transaction=True)

IDLE = 4  # seconds: the server's idle time for every role in these tests
LOCK_MS = (IDLE + 3) * 1000  # the lock shows by then (the page checks every second)
NAME, REASON = "Marcus Bell", "Chest pain since this morning"


@pytest.fixture
def idle_seconds() -> int:
    """The server's idle time; a test that must not see an idle lock parametrizes it."""
    return IDLE


@pytest.fixture
def lock_server(transactional_db, tmp_path, monkeypatch, idle_seconds):
    monkeypatch.setenv("IDLE_SECONDS", str(idle_seconds))
    server = start_asgi_server(tmp_path)
    yield server
    stop_asgi_server(server)


@pytest.fixture
def chromium(lock_server):
    """Request it last, so every other fixture's ORM work comes first."""
    with launched_chromium() as browser:
        yield browser


def with_password(user) -> str:
    password = f"pw-{uuid.uuid4()}"
    user.set_password(password)
    user.save()
    return password


@pytest.fixture
def alex_password(clinician):
    return with_password(clinician)


@pytest.fixture
def robin_password(front_desk):
    return with_password(front_desk)


@pytest.fixture
def clinician_cookie(clinician):
    return session_cookie_for(clinician)


@pytest.fixture
def front_desk_cookie(front_desk):
    return session_cookie_for(front_desk)


@pytest.fixture
def marcus_waiting(site, service, front_desk):
    return check_in(
        site=site, by=front_desk, name=NAME, service=service, urgent=True, urgent_reason=REASON
    )


@pytest.fixture
def open_visit(marcus_waiting, site, clinician) -> Visit:
    """Alex has started seeing Marcus: his visit record is open."""
    services.arrival_call_next(site=site, by=clinician)
    marcus_waiting.refresh_from_db()
    services.arrival_start(arrival=marcus_waiting, by=clinician, revision=marcus_waiting.revision)
    return Visit.objects.get(arrival=marcus_waiting)


def lock_dialog(page):
    return page.get_by_role("dialog", name="Locked")


def page_html(page) -> str:
    return page.evaluate("document.documentElement.outerHTML")


def assert_shows_no_one(page, *words):
    html = page_html(page)
    for word in (NAME, "Marcus", REASON, *words):
        assert word not in html
    assert "Marcus" not in page.title()


def wait_until(condition, *, page, timeout_ms=3000):
    deadline = time.monotonic() + timeout_ms / 1000
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        page.wait_for_timeout(50)


def status_from_outside(server, path, cookie_value, **headers) -> int:
    """A request with the browser's session cookie, from outside the browser (no redirects
    followed): 200, or 302 to the sign-in page once the session has ended."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    request = urllib.request.Request(  # noqa: S310 (our own server on 127.0.0.1)
        server.url + path,
        headers={"Cookie": f"{django_settings.SESSION_COOKIE_NAME}={cookie_value}", **headers},
    )
    try:
        with urllib.request.build_opener(NoRedirect).open(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        if error.code == 302:
            assert error.headers["Location"].startswith("/login/")
        return error.code


def session_cookie(screen) -> str:
    return next(
        c["value"]
        for c in screen.context.cookies()
        if c["name"] == django_settings.SESSION_COOKIE_NAME
    )


# --- the board --------------------------------------------------------------------------------


@pytest.mark.browser
def test_an_idle_board_locks_hides_every_name_and_opens_again_as_it_was(
    lock_server, marcus_waiting, alex_password, clinician_cookie, front_desk_cookie, chromium
):
    board = Screen(chromium, lock_server, viewport=BOARD, cookie=clinician_cookie)
    sockets = []
    board.page.on("websocket", lambda ws: sockets.append(ws))
    board.page.goto("/queue/board/")
    expect(board.page.locator("#live-status")).to_have_text(BOARD_LIVE_TEXT)
    expect(board.page.get_by_role("rowheader", name=NAME)).to_be_visible()
    board.mark_loaded()

    expect(lock_dialog(board.page)).to_be_visible(timeout=LOCK_MS)
    assert_shows_no_one(board.page)
    assert board.page.title() == "Locked · Threshold"
    expect(board.page.get_by_role("navigation")).to_have_count(0)
    expect(lock_dialog(board.page)).to_contain_text("Alex, enter your password to continue.")
    expect(board.page.get_by_label("Password")).to_be_focused()
    wait_until(lambda: all(ws.is_closed() for ws in sockets), page=board.page)
    assert status_from_outside(lock_server, "/queue/board/", clinician_cookie["value"]) == 302
    assert_accessible(board.page)

    board.page.keyboard.type("not my password")
    board.page.keyboard.press("Enter")
    expect(board.page.get_by_role("alert")).to_have_text(
        "That password is not right. Please try again."
    )
    expect(board.page.get_by_label("Password")).to_be_focused()
    assert_shows_no_one(board.page)

    # The front desk is about to check someone in (the change has to reach the server).
    desk = Screen(chromium, lock_server, viewport=DESK, cookie=front_desk_cookie)
    desk.page.goto("/queue/")
    board.page.keyboard.type(alex_password)
    board.page.keyboard.press("Enter")
    waiting = board.page.get_by_test_id("waiting")
    expect(waiting.get_by_role("rowheader", name=NAME)).to_be_visible()
    expect(waiting).to_contain_text(REASON)
    expect(lock_dialog(board.page)).to_have_count(0)
    assert board.page.url == lock_server.url + "/queue/board/"
    assert not board.reloaded()
    assert "Marcus" not in board.page.title()
    assert_accessible(board.page)

    # Live again, over a new socket of the new session.
    desk.page.get_by_label("Name", exact=True).fill("Jess Ortiz")
    desk.page.get_by_role("button", name="Check in", exact=True).click()
    expect(waiting.get_by_role("rowheader", name="Jess Ortiz")).to_be_visible(timeout=LIVE_MS)
    assert len(sockets) == 2 and not sockets[-1].is_closed()
    assert board.errors == desk.errors == []


# Long enough that only the session's end can lock these boards.
@pytest.mark.parametrize("idle_seconds", [300])
@pytest.mark.browser
def test_a_board_whose_session_ends_elsewhere_locks_instead_of_reloading(
    lock_server, marcus_waiting, clinician_cookie, chromium
):
    board = Screen(chromium, lock_server, viewport=BOARD, cookie=clinician_cookie)
    board.page.goto("/queue/board/")
    expect(board.page.locator("#live-status")).to_have_text(BOARD_LIVE_TEXT)
    board.mark_loaded()

    # Signing out in another tab ends the session; the server closes its sockets with 4401.
    other = board.context.new_page()
    other.goto("/queue/")
    other.get_by_role("button", name="Log out").click()
    other.wait_for_url("**/login/")

    expect(lock_dialog(board.page)).to_be_visible(timeout=LIVE_MS)
    assert not board.reloaded()
    assert_shows_no_one(board.page)
    assert board.errors == []


@pytest.mark.parametrize("idle_seconds", [300])
@pytest.mark.browser
def test_a_polling_board_whose_session_ended_locks_instead_of_reloading(
    lock_server, marcus_waiting, clinician_cookie, chromium
):
    board = Screen(chromium, lock_server, viewport=BOARD, cookie=clinician_cookie)
    board.page.route_web_socket("**/ws/**", lambda ws: ws.close())
    board.page.goto("/queue/board/")
    expect(board.page.get_by_role("rowheader", name=NAME)).to_be_visible()
    board.mark_loaded()

    in_thread(lambda: Session.objects.all().delete())

    # The next poll (every 4 s) is sent to the sign-in page.
    expect(lock_dialog(board.page)).to_be_visible(timeout=8000)
    assert not board.reloaded()
    assert_shows_no_one(board.page)
    assert board.errors == []


# --- what was typed ---------------------------------------------------------------------------


@pytest.mark.browser
def test_a_note_typed_before_the_lock_is_there_after_it_and_saves(
    lock_server, open_visit, alex_password, clinician_cookie, chromium
):
    words = "Talked about housing. Wants to come back Tuesday for the wound."
    screen = Screen(chromium, lock_server, viewport=DESK, cookie=clinician_cookie)
    page = screen.page
    page.goto(f"/visits/{open_visit.pk}/")
    expect(page.get_by_role("heading", name=f"Visit with {NAME}")).to_be_visible()
    screen.mark_loaded()
    note = page.get_by_label("Note", exact=True)
    note.click()
    note.press_sequentially(words)
    scrolled = page.evaluate("window.scrollY")
    assert scrolled > 0

    expect(lock_dialog(page)).to_be_visible(timeout=LOCK_MS)
    assert_shows_no_one(page, "Talked about housing")

    page.get_by_label("Password").fill(alex_password)
    page.get_by_role("button", name="Unlock").click()

    expect(note).to_have_value(words)
    expect(note).to_be_focused()
    assert page.evaluate("window.scrollY") == scrolled
    assert not screen.reloaded()
    page.get_by_role("button", name="Save", exact=True).click()

    expect(page.get_by_role("status").first).to_be_visible()
    assert in_thread(lambda: Visit.objects.get(pk=open_visit.pk).note) == words
    assert screen.errors == []


@pytest.mark.browser
def test_typing_for_longer_than_the_idle_time_never_locks_this_tab_or_the_others(
    lock_server, open_visit, alex_password, clinician_cookie, chromium
):
    visit = Screen(chromium, lock_server, viewport=DESK, cookie=clinician_cookie)
    board = visit.context.new_page()  # another tab of the same browser
    board.goto("/queue/board/")
    expect(board.locator("#live-status")).to_have_text(BOARD_LIVE_TEXT)
    visit.page.goto(f"/visits/{open_visit.pk}/")
    note = visit.page.get_by_label("Note", exact=True)
    note.click()

    # Twice the idle time of slow typing, never pressing a button.
    note.press_sequentially("x" * 16, delay=500)

    expect(lock_dialog(visit.page)).to_have_count(0)
    expect(lock_dialog(board)).to_have_count(0)
    assert status_from_outside(lock_server, "/queue/board/", session_cookie(visit)) == 200

    # Then nobody touches either tab: both lock; unlocking one opens the other too.
    expect(lock_dialog(visit.page)).to_be_visible(timeout=LOCK_MS)
    expect(lock_dialog(board)).to_be_visible(timeout=LOCK_MS)
    assert_shows_no_one(board)
    visit.page.get_by_label("Password").fill(alex_password)
    visit.page.keyboard.press("Enter")

    expect(note).to_have_value("x" * 16)
    expect(board.get_by_role("rowheader", name=NAME)).to_be_visible()
    assert visit.errors == []


@pytest.mark.browser
@pytest.mark.parametrize("idle_seconds", [300])
def test_an_unlock_waits_for_the_lock_still_on_its_way_from_another_tab(
    lock_server, open_visit, alex_password, clinician_cookie, chromium
):
    """A slow server: the board tab's "end the session" has not been answered when Alex
    unlocks the visit tab. The unlock waits for it, so the late answer (which takes away the
    ended session's cookie) cannot take the new one away, and both tabs stay open."""
    visit = Screen(chromium, lock_server, viewport=DESK, cookie=clinician_cookie)
    board = visit.context.new_page()
    board.goto("/queue/board/")
    expect(board.locator("#live-status")).to_have_text(BOARD_LIVE_TEXT)
    visit.page.goto(f"/visits/{open_visit.pk}/")
    note = visit.page.get_by_label("Note", exact=True)
    with visit.page.expect_response(lambda response: response.url.endswith("/draft/")):
        note.fill("Talked about the clinic's hours")

    held, unlocks = [], []
    # Answered only when let go of below.
    visit.context.route("**/session/lock/", lambda route: held.append(route))
    visit.context.on(
        "request", lambda request: request.url.endswith("/unlock/") and unlocks.append(request)
    )
    board.get_by_role("button", name="Lock screen").click()
    expect(lock_dialog(board)).to_be_visible()
    expect(lock_dialog(visit.page)).to_be_visible()
    assert len(held) == 1

    visit.page.get_by_label("Password").fill(alex_password)
    visit.page.keyboard.press("Enter")
    visit.page.wait_for_timeout(1000)
    assert unlocks == []  # not while the lock is on its way
    expect(lock_dialog(visit.page)).to_be_visible()

    held[0].continue_()
    expect(note).to_have_value("Talked about the clinic's hours")
    expect(board.get_by_role("rowheader", name=NAME)).to_be_visible()
    assert len(unlocks) == 1
    # Still signed in once the late answer has come and gone: the pages' next requests
    # (and one from outside with the browser's cookie) find the new session.
    visit.page.evaluate(
        "fetch('/session/activity/', {method: 'POST', headers: {'X-CSRFToken':"
        " document.querySelector('input[name=csrfmiddlewaretoken]').value}})"
        ".then(r => { if (r.status !== 200) throw new Error('signed out: ' + r.status); })"
    )
    assert status_from_outside(lock_server, "/queue/board/", session_cookie(visit)) == 200
    expect(lock_dialog(visit.page)).to_have_count(0)
    expect(lock_dialog(board)).to_have_count(0)
    assert visit.errors == []


@pytest.mark.browser
def test_when_the_server_asks_for_a_code_the_lock_asks_for_it_and_keeps_the_password(
    lock_server, marcus_waiting, alex_password, clinician_cookie, chromium
):
    board = Screen(chromium, lock_server, viewport=DESK, cookie=clinician_cookie)
    page = board.page
    posted = []

    def second_factor_first(route):
        posted.append(route.request.post_data)
        if len(posted) == 1:  # as the server answers an account that needs a code
            route.fulfill(
                status=401,
                json={
                    "ok": False,
                    "second_factor": True,
                    "error": "Enter the code from your authenticator app.",
                },
            )
        else:
            route.continue_()

    page.route("**/unlock/", second_factor_first)
    page.goto("/queue/board/")
    page.get_by_role("button", name="Lock screen").click()
    expect(page.get_by_label("Code from your authenticator app")).to_be_hidden()
    page.get_by_label("Password").fill(alex_password)
    page.keyboard.press("Enter")

    code = page.get_by_label("Code from your authenticator app")
    expect(code).to_be_focused()
    expect(page.get_by_role("alert")).to_have_text("Enter the code from your authenticator app.")
    expect(page.get_by_label("Password")).to_have_value(alex_password)
    assert_accessible(page)
    page.keyboard.type("314159")
    page.keyboard.press("Enter")

    expect(page.get_by_role("rowheader", name=NAME)).to_be_visible()
    # Form-encoded (the server takes no multipart body from a session that has ended).
    assert parse_qs(posted[-1])["code"] == ["314159"]
    assert board.errors == []


# --- the front desk ---------------------------------------------------------------------------


@pytest.mark.browser
def test_the_front_desk_locks_by_keyboard_and_hands_the_screen_to_someone_else(
    lock_server, site, service, robin_password, chromium
):
    desk = Screen(chromium, lock_server, viewport=DESK)
    page = desk.page
    page.goto("/queue/")
    page.get_by_label("Username").fill("robin")
    page.get_by_label("Password").fill(robin_password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/queue/")
    page.get_by_label("Name", exact=True).fill(NAME)
    page.get_by_role("radio", name="Wound care").check()
    page.get_by_role("button", name="Check in", exact=True).click()
    expect(page.get_by_role("heading", name=f"{NAME} is checked in")).to_be_visible()
    page.get_by_label("Name", exact=True).fill("Jess Ortiz")
    desk.mark_loaded()
    cookie = session_cookie(desk)

    lock_button = page.get_by_role("button", name="Lock screen")
    lock_button.focus()
    # (Waiting for the page to end its session: a request racing the sign-out would be told
    # its session was interrupted, 400, rather than sent to sign in.)
    with page.expect_response(lambda response: response.url.endswith("/session/lock/")):
        page.keyboard.press("Enter")

    expect(lock_dialog(page)).to_be_visible()
    assert_shows_no_one(page, "Jess")
    expect(page.get_by_label("Password")).to_be_focused()
    # Locking ended the session at once: reloading or another page would find none.
    assert status_from_outside(lock_server, "/queue/", cookie) == 302

    page.keyboard.type(robin_password)
    page.keyboard.press("Enter")
    expect(page.get_by_label("Name", exact=True)).to_have_value("Jess Ortiz")
    expect(page.get_by_role("heading", name=f"{NAME} is checked in")).to_be_visible()
    assert not desk.reloaded()

    lock_button.focus()
    # (Again waiting for the sign-out, which would otherwise race the sign-in page's request.)
    with page.expect_response(lambda response: response.url.endswith("/session/lock/")):
        page.keyboard.press("Space")
    expect(lock_dialog(page)).to_be_visible()
    switch = page.get_by_role("link", name=re.compile(r"^Not \S+\? Sign in as someone else$"))
    switch.focus()
    page.keyboard.press("Enter")

    page.wait_for_url("**/login/?next=/queue/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert desk.reloaded()
    assert_shows_no_one(page, "Jess")
    assert desk.errors == []


@pytest.mark.browser
def test_without_javascript_no_lock_screen_button_is_offered(
    lock_server, clinician_cookie, chromium
):
    context = chromium.new_context(base_url=lock_server.url, java_script_enabled=False)
    context.add_cookies([{**clinician_cookie, "url": lock_server.url}])
    page = context.new_page()
    page.goto("/queue/board/")

    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    expect(page.get_by_role("button", name="Lock screen")).to_be_hidden()
    context.close()


# --- the server side alone --------------------------------------------------------------------


def test_the_server_forgets_an_idle_session_even_while_the_board_keeps_polling(
    lock_server, clinician_cookie
):
    assert status_from_outside(lock_server, "/queue/board/", clinician_cookie["value"]) == 200
    # The session now ends IDLE seconds after that request was served, so at the latest IDLE
    # seconds from its answer, however slow the server was to answer.
    started = time.monotonic()
    time.sleep(IDLE / 2)
    polled = status_from_outside(
        lock_server,
        "/queue/board/live/",
        clinician_cookie["value"],
        **{"X-Threshold-Background": "1"},
    )
    assert polled == 200
    time.sleep(max(0, started + IDLE + 0.5 - time.monotonic()))

    assert status_from_outside(lock_server, "/queue/board/", clinician_cookie["value"]) == 302
