"""Check-in's search as the front desk uses it, in headless Chromium against a real uvicorn
process with its access log on: typing a name, Enter in the name field (the namesake question),
choosing the person found and checking them in, by keyboard alone. No request the page makes
carries the name in its address, and nothing the server wrote holds it."""

import urllib.parse
from datetime import timedelta

import pytest
from django.utils import timezone

from clinic.models import Person
from queues import services
from tests.browser.axe import assert_accessible
from tests.browser.conftest import launched_chromium
from tests.browser.test_live_queue import DESK, Screen
from tests.conftest import session_cookie_for, start_asgi_server, stop_asgi_server
from tests.factories import check_in

try:
    from playwright.sync_api import expect
except ImportError:  # the "browser" marker skips (or, in CI, fails) these tests with a reason
    expect = None

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NAME = "Zoë O'Brien-Ngata"
TYPED = "Zoë O'B"
PHONE = "+1 555 010 4477"


@pytest.fixture
def zoe(site, front_desk):
    """Zoë was here last week (and left before being seen)."""
    last_week = timezone.now() - timedelta(days=7)
    person = Person.objects.create(site=site, name=NAME, what_helps="quiet corner")
    past = check_in(site=site, by=front_desk, person=person, now=last_week)
    services.arrival_mark_left(arrival=past, by=front_desk, revision=None, now=last_week)
    return person


@pytest.fixture
def desk_cookie(front_desk):
    return session_cookie_for(front_desk)


@pytest.fixture
def uvicorn_server(transactional_db, tmp_path):
    server = start_asgi_server(tmp_path, env={"LOG_LEVEL": "DEBUG"})
    yield server
    stop_asgi_server(server)


def carries_only_ids(url: str) -> bool:
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query, keep_blank_values=True)
    return all(values == [v for v in values if v.isdigit()] for values in query.values())


def test_typing_a_name_and_enter_never_put_it_in_an_address_or_a_log(
    uvicorn_server, zoe, desk_cookie
):
    with launched_chromium() as browser:
        desk = Screen(browser, uvicorn_server, viewport=DESK, cookie=desk_cookie)
        page = desk.page
        requests = []
        page.on("request", lambda r: requests.append((r.method, r.url, r.post_data or "")))

        page.goto("/queue/")
        name = page.get_by_label("Name", exact=True)
        expect(name).to_be_focused()
        page.keyboard.type(TYPED, delay=40)
        expect(page.get_by_role("button", name=NAME)).to_be_visible()  # found as typed

        # Her whole name and Enter: checking in asks about the namesake, by POST; the page
        # comes back with what was typed.
        page.get_by_text("More details").click()
        page.get_by_label("Phone").fill(PHONE)
        name.fill(NAME)
        name.press("Enter")
        expect(page.get_by_role("alert")).to_contain_text("already known here")
        expect(page.get_by_role("button", name=NAME)).to_be_visible()
        assert urllib.parse.urlsplit(page.url).query == ""
        expect(page.get_by_label("Name", exact=True)).to_have_value(NAME)
        expect(page.get_by_label("Phone")).to_have_value(PHONE)  # nothing typed is lost
        assert_accessible(page)

        # Choose her, by keyboard: that checks her in as herself.
        page.get_by_role("button", name=NAME).focus()
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", name=f"Welcome back, {NAME}")).to_be_visible()
        assert desk.errors == []
        browser.close()

    searches = [r for r in requests if "/queue/people/" in r[1]]
    assert searches and all(method == "POST" for method, _, _ in searches)
    # The name went in the body, form-encoded (the server takes no multipart here).
    assert any(urllib.parse.parse_qs(body).get("name") == [TYPED] for _, _, body in searches)
    for method, url, _ in requests:
        assert carries_only_ids(url), (method, url)

    stop_asgi_server(uvicorn_server)
    log = uvicorn_server.log.read_text(encoding="utf-8", errors="replace")
    assert '"POST /queue/people/ HTTP/1.1" 200' in log  # the access log was on
    for typed in (NAME, TYPED, "Brien", PHONE, "4477"):
        for needle in {typed, urllib.parse.quote(typed), urllib.parse.quote_plus(typed)}:
            assert needle not in log, needle
