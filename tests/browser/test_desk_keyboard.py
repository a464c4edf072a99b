"""The keyboard at the front desk: Enter in a field checks in (or asks about a namesake), at
the desk's and a phone's size, and never finds or picks someone instead; Escape closes what the
form opened (More details, the people found as typed, the namesake question). After a row
action on the board, focus comes back to the button pressed, not the top of the page."""

import urllib.parse
from datetime import timedelta

import pytest
from django.utils import timezone

from clinic.models import Person
from queues import services
from queues.models import Arrival
from tests.browser.axe import assert_accessible
from tests.browser.test_desk_layout import PHONE
from tests.browser.test_live_queue import DESK, Screen, in_thread
from tests.conftest import session_cookie_for
from tests.factories import ServiceFactory, check_in

try:
    from playwright.sync_api import expect
except ImportError:  # the "browser" marker skips (or, in CI, fails) these tests with a reason
    expect = None

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def marcus(site, front_desk):
    """Marcus Reyes was here three days ago: typing "Marcus" finds him."""
    three_days_ago = timezone.now() - timedelta(days=3)
    person = Person.objects.create(site=site, name="Marcus Reyes")
    past = check_in(site=site, by=front_desk, person=person, now=three_days_ago)
    services.arrival_mark_left(arrival=past, by=front_desk, revision=None, now=three_days_ago)
    return person


@pytest.fixture
def desk_cookie(front_desk):
    return session_cookie_for(front_desk)


@pytest.fixture
def clinician_cookie(clinician):
    return session_cookie_for(clinician)


def arrivals_today(site):
    return in_thread(
        lambda: list(
            Arrival.objects.filter(site=site, person__isnull=False)
            .order_by("pk")
            .values_list("person__name", flat=True)
        )
    )


@pytest.mark.parametrize("viewport", [DESK, PHONE], ids=["desk", "phone"])
def test_enter_in_the_name_field_checks_in(
    asgi_server, site, service, marcus, desk_cookie, viewport, chromium
):
    screen = Screen(chromium, asgi_server, viewport=viewport, cookie=desk_cookie)
    page = screen.page
    page.goto("/queue/")
    name = page.get_by_label("Name", exact=True)
    name.press_sequentially("Marcus")
    # Marcus Reyes is offered as typed: Enter must not pick him, nor "find" again.
    expect(page.get_by_role("button", name="Marcus Reyes")).to_be_visible()
    name.press_sequentially(" Bell")
    page.get_by_role("radio", name="Wound care").check()
    name.press("Enter")

    expect(page.get_by_role("heading", name="Marcus Bell is checked in")).to_be_visible()
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(page.url).query)
    assert list(query) == ["arrival"] and query["arrival"][0].isdigit()  # no name, no token
    expect(page.get_by_label("Name", exact=True)).to_be_focused()  # ready for the next one
    assert screen.errors == []
    names = arrivals_today(site)
    assert names[-1] == "Marcus Bell" and names.count("Marcus Reyes") == 1


def test_enter_asks_about_a_namesake_and_escape_closes_the_question(
    asgi_server, site, service, marcus, desk_cookie, chromium
):
    screen = Screen(chromium, asgi_server, viewport=DESK, cookie=desk_cookie)
    page = screen.page
    page.goto("/queue/")
    name = page.get_by_label("Name", exact=True)
    name.press_sequentially("Marcus Reyes")
    name.press("Enter")
    question = page.get_by_role("alert")
    expect(question).to_contain_text("Someone called Marcus Reyes is already known here")
    assert urllib.parse.urlsplit(page.url).query == ""
    assert_accessible(page)

    # Enter again asks again: only a tap adds someone new with the same name.
    page.get_by_label("Name", exact=True).press("Enter")
    expect(page.get_by_role("alert")).to_contain_text("already known here")
    assert arrivals_today(site) == ["Marcus Reyes"]

    # Escape closes the question; the name stays as typed and Enter now just checks in.
    page.get_by_label("Name", exact=True).press("Escape")
    expect(page.get_by_role("alert")).to_have_count(0)
    expect(page.get_by_role("button", name="Marcus Reyes")).to_have_count(0)
    expect(page.get_by_role("button", name="Check in", exact=True)).to_be_visible()
    expect(page.get_by_label("Name", exact=True)).to_be_focused()
    expect(page.get_by_label("Name", exact=True)).to_have_value("Marcus Reyes")
    assert screen.errors == []


def test_escape_closes_what_the_form_opened(
    asgi_server, site, service, marcus, desk_cookie, chromium
):
    screen = Screen(chromium, asgi_server, viewport=DESK, cookie=desk_cookie)
    page = screen.page
    page.goto("/queue/")
    name = page.get_by_label("Name", exact=True)
    name.press_sequentially("Marc")
    expect(page.get_by_role("button", name="Marcus Reyes")).to_be_visible()
    name.press("Escape")
    expect(page.get_by_role("button", name="Marcus Reyes")).to_have_count(0)
    expect(name).to_have_value("Marc")
    name.press_sequentially("us")  # a changed name searches again
    expect(page.get_by_role("button", name="Marcus Reyes")).to_be_visible()

    summary = page.get_by_text("More details")
    summary.focus()
    page.keyboard.press("Enter")
    phone = page.get_by_label("Phone")
    expect(phone).to_be_visible()
    phone.fill("555 0101")
    phone.press("Escape")
    expect(phone).to_be_hidden()
    expect(summary).to_be_focused()
    summary.press("Enter")
    expect(phone).to_have_value("555 0101")  # closing lost nothing typed
    assert screen.errors == []


@pytest.fixture
def two_waiting(site, front_desk):
    wound = ServiceFactory(site=site, name="Wound care")
    people = [Person.objects.create(site=site, name=n) for n in ("Jo Smith", "Sam Lee")]
    return [check_in(site=site, by=front_desk, person=p, service=wound) for p in people]


def test_focus_stays_where_it_was_after_a_row_action(
    asgi_server, site, two_waiting, clinician_cookie, chromium
):
    screen = Screen(chromium, asgi_server, viewport=DESK, cookie=clinician_cookie)
    page = screen.page
    page.goto("/queue/board/")
    expect(page.locator("#live-status")).to_have_text("Live: this list updates by itself.")
    second = two_waiting[1].pk

    # "Call" on the second row: the row moves to "Called", where the same key is "Call again".
    page.locator(f'[data-focus-key="{second}-call"]').focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("status").first).to_contain_text("Called")
    focused = page.locator(":focus")
    expect(focused).to_have_attribute("data-focus-key", f"{second}-call")
    expect(focused).to_contain_text("Call again")

    # "Stepped out": that button is gone from the row; focus goes to the row's first control.
    page.locator(f'[data-focus-key="{second}-step-out"]').focus()
    page.keyboard.press("Enter")
    expect(page.locator(":focus")).to_have_attribute("data-focus-key", f"{second}-back")
    # And Tab goes on from there, not from the top of the page.
    page.keyboard.press("Tab")
    expect(page.locator(":focus")).to_have_attribute("data-focus-key", f"{second}-left")
    assert screen.errors == []
