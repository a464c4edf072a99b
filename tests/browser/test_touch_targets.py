"""Beyond the desk and the board: the pages each role opens through the day, on a phone, have
no control under 44 x 44 px (links in a sentence excepted, as WCAG 2.5.5 does) and a focus
ring that stands out 3:1 on every control, and axe-core finds no violation."""

import json

import pytest

from clinic.models import Person
from releases.models import Category
from tests.browser.axe import assert_accessible
from tests.browser.targets import undersized_targets, weak_focus_rings
from tests.browser.test_desk_layout import PHONE
from tests.browser.test_live_queue import Screen
from tests.conftest import session_cookie_for
from tests.factories import ServiceFactory, check_in
from tests.releases.factories import make_consent, make_recipient

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # the "browser" marker skips (or, in CI, fails) these tests with a reason
    sync_playwright = None

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def day(site, front_desk, privacy_officer):
    """Marcus is here today and has a signed consent on file."""
    marcus = Person.objects.create(site=site, name="Marcus Reyes", pronouns="he/him")
    check_in(site=site, by=front_desk, person=marcus, service=ServiceFactory(site=site))
    recipient = make_recipient(site=site, category=Category.TREATMENT_PROVIDER)
    consent = make_consent(person=marcus, recipients=[recipient], recorded_by=privacy_officer)
    return {"person": marcus.pk, "consent": consent.pk}


@pytest.fixture
def cookies(front_desk, clinician, privacy_officer):
    return {
        "front_desk": session_cookie_for(front_desk),
        "clinician": session_cookie_for(clinician),
        "privacy_officer": session_cookie_for(privacy_officer),
    }


PAGES = {
    "front_desk": [
        "/queue/",
        "/queue/board/",
        "/appointments/",
        "/appointments/new/",
        "/people/{person}/",
        "/account/",
    ],
    "clinician": ["/queue/board/", "/visits/new/", "/people/{person}/"],
    "privacy_officer": ["/privacy/", "/privacy/consents/{consent}/"],
}


@pytest.mark.parametrize("role", list(PAGES))
def test_every_control_is_large_enough_and_shows_its_focus(
    asgi_server, day, cookies, role, chromium
):
    screen = Screen(chromium, asgi_server, viewport=PHONE, cookie=cookies[role])
    page = screen.page
    problems = {}
    for path in PAGES[role]:
        page.goto(path.format(**day))
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], path
        small = undersized_targets(page)
        _tabbed, weak = weak_focus_rings(page)
        if small or weak:
            problems[path] = small + weak
        page.evaluate("window.scrollTo(0, 0)")
        assert_accessible(page)
    assert problems == {}, json.dumps(problems, indent=1, ensure_ascii=False)
    assert screen.errors == []
