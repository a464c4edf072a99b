"""Two records of one person, in the browser: a clinician finds the second record, compares
the two and proposes the merge; the privacy officer approves it. Headless Chromium against a
real daphne process, at the front desk's 1024x768 and a phone's 390x844, by role and label
(the choices by keyboard), every page checked with axe-core and for sideways scrolling."""

import datetime as dt

import pytest

from clinic.models import Person, PersonMerge
from tests.browser.axe import assert_accessible
from tests.browser.conftest import launched_chromium, main_nav
from tests.conftest import session_cookie_for
from tests.factories import PersonFactory
from visits.models import Visit

try:
    from playwright.sync_api import expect
except ImportError:  # the "browser" marker skips (or, in CI, fails) these tests with a reason
    expect = None

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def fits(page, width: int) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    assert_accessible(page)


@pytest.mark.parametrize("viewport", [(1024, 768), (390, 844)])
def test_a_clinician_proposes_and_the_privacy_officer_approves_a_merge(
    asgi_server, site, clinician, privacy_officer, viewport
):
    clinician.last_name = "Rivera"
    clinician.save()
    kept = PersonFactory(
        site=site, name="Marcus", pronouns="he/him", what_helps="Has a dog, Biscuit"
    )
    duplicate = PersonFactory(
        site=site,
        name="Marc",
        pronouns="he/him",
        phone="555-0188",
        date_of_birth=dt.date(1984, 3, 21),
        what_helps="Prefers the side door",
    )
    Visit.objects.create(
        site=site, person=duplicate, origin=Visit.Origin.OUTREACH, opened_by=clinician,
        started_at=dt.datetime(2025, 3, 14, 15, tzinfo=dt.UTC),
        ended_at=dt.datetime(2025, 3, 14, 16, tzinfo=dt.UTC), sealed_at=None,
    )  # fmt: skip
    cookies = {
        "clinician": session_cookie_for(clinician),
        "officer": session_cookie_for(privacy_officer),
    }  # before Chromium: no ORM calls while it runs

    width, height = viewport
    with launched_chromium() as browser:
        errors = []

        def open_as(who):
            context = browser.new_context(
                base_url=asgi_server.url, viewport={"width": width, "height": height}
            )
            context.add_cookies([{**cookies[who], "url": asgi_server.url}])
            page = context.new_page()
            page.on("pageerror", lambda error: errors.append(str(error)))
            return page

        # The clinician, from the kept record's page.
        page = open_as("clinician")
        page.goto(f"/people/{kept.pk}/")
        page.get_by_role("link", name="Recorded twice?").click()
        expect(page.get_by_role("heading", name="Is Marcus recorded twice?")).to_be_visible()
        page.get_by_label("Name of the other record").fill("Marc")
        page.get_by_label("Name of the other record").press("Enter")
        found = page.get_by_role("region", name="Records found")
        expect(found).to_contain_text("Marc")
        assert "Marc" not in page.url  # the name went in the body, not the URL
        fits(page, width)
        found.get_by_role("link", name="Compare with Marc").click()

        expect(page.get_by_role("heading", name="Are these one person?")).to_be_visible()
        expect(page.get_by_role("region", name="Second record")).to_contain_text("555-0188")
        expect(page.get_by_role("region", name="Second record")).to_contain_text("1 visit")
        fits(page, width)
        # Keep Marcus's name (the default); take Marc's phone, by keyboard.
        phone = page.get_by_role("group", name="Phone: which one does the record kept keep?")
        expect(phone.get_by_role("radio", name="not given (record")).to_be_checked()
        phone.get_by_role("radio", name="not given (record").focus()
        page.keyboard.press("ArrowDown")
        expect(phone.get_by_role("radio", name="555-0188 (record")).to_be_checked()
        expect(page.get_by_label('Add "what helps" from the second record')).to_be_checked()
        page.get_by_label("Why they are one person").fill(
            "Same date of birth; he told me he registered as Marc at outreach."
        )
        page.get_by_role("button", name="Ask the privacy officer to approve").click()
        expect(page.get_by_text("Sent to the privacy officer to approve.")).to_be_visible()
        expect(page.get_by_role("heading", name="Decision")).to_be_visible()
        expect(page.get_by_role("button", name="Approve and merge")).to_have_count(0)
        merge_url = page.url
        fits(page, width)

        # The privacy officer: the list, the merge, approval.
        page = open_as("officer")
        page.goto("/")
        main_nav(page).get_by_role("link", name="Merges", exact=True).click()
        page.get_by_role("link", name="Marc (#").click()
        assert page.url == merge_url
        after = page.get_by_role("region", name="The record kept, after the merge")
        expect(after).to_contain_text("555-0188")
        expect(after).to_contain_text("Prefers the side door")
        fits(page, width)
        page.get_by_role("button", name="Approve and merge").focus()
        page.keyboard.press("Enter")
        expect(page.get_by_text("The two records are now one: Marcus.")).to_be_visible()
        history = page.get_by_role("region", name="History of changes")
        expect(history).to_contain_text(
            f"Marc (record #{duplicate.pk}) was merged into this record."
        )
        fits(page, width)

        # The merged record's page points to the kept one.
        page.goto(f"/people/{duplicate.pk}/")
        expect(page.get_by_text("This record was merged into the record of Marcus")).to_be_visible()
        fits(page, width)
        page.get_by_role("link", name="Go to Marcus's record").click()
        expect(page.get_by_role("heading", name="Marcus", level=1)).to_be_visible()
        assert errors == []
        browser.close()

    merge = PersonMerge.objects.get()
    assert (merge.status, merge.proposed_by, merge.decided_by) == (
        "approved",
        clinician,
        privacy_officer,
    )
    kept.refresh_from_db()
    assert (kept.name, kept.phone) == ("Marcus", "555-0188")
    assert Person.objects.get(pk=duplicate.pk).merged_into == kept
    assert Visit.objects.get().person == kept
