"""A director reads the dashboard in headless Chromium on a real daphne process: the charts
render, the period changes, a table sorts and a CSV downloads. Nothing is fetched from
anywhere but the clinic's own server."""

import csv
import io
import re
import shutil
from pathlib import Path

import pytest

from tests.conftest import session_cookie_for
from tests.reports.conftest import D

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # the "browser" marker skips (or, in CI, fails) these tests with a reason
    expect = sync_playwright = None

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def test_a_director_reads_changes_and_downloads_the_dashboard(asgi_server, build, director):
    # Two people in the week of 6 Jan 2025 and one more in the week of 13 Jan; one left
    # before being seen. Set up before Chromium starts (no ORM inside its event loop).
    ana, ben = build.person("Ana"), build.person("Ben")
    build.visit(ana, D(0), waited=12)
    build.visit(ben, D(1), waited=20)
    build.lwbs(build.person("Cy"), D(2))
    build.visit(ana, D(8), waited=5)
    cookie = session_cookie_for(director)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=ARGS)
        context = browser.new_context(
            base_url=asgi_server.url, viewport={"width": 1280, "height": 900}, accept_downloads=True
        )
        context.add_cookies([{**cookie, "url": asgi_server.url}])
        page = context.new_page()
        errors, requests = [], []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: requests.append(r.url))

        page.goto("/reports/")
        expect(page.get_by_role("heading", name="Process measures", level=1)).to_be_visible()
        charts = page.get_by_role("img")
        expect(charts).to_have_count(4)
        for name in ("Contacts per week", "Median wait per week"):
            chart = page.get_by_role("img", name=name)
            expect(chart).to_be_visible()
            assert chart.bounding_box()["width"] > 400

        # Pick the period of the visits: 6 Jan - 2 Feb 2025 (four weeks).
        page.get_by_label("From", exact=True).fill("2025-01-06")
        page.get_by_label("To", exact=True).fill("2025-02-02")
        page.get_by_role("button", name="Show").click()
        expect(page.get_by_test_id("report-scope")).to_contain_text(
            "6 Jan 2025 to 2 Feb 2025 (28 days)"
        )
        contacts = page.locator("#M12")
        # 3 completed visits by 2 people; Cy only left.
        expect(contacts.get_by_test_id("headline")).to_have_text("3")
        expect(page.locator("#chart-contacts rect[fill='#1d5c8f']")).to_have_count(2)

        # Sort the week table by visits, most first.
        weeks = page.locator("#table-weeks")
        weeks.get_by_role("link", name="Completed visits").click()
        weeks.get_by_role("link", name="Completed visits").click()
        expect(page).to_have_url(re.compile(r"weeks-sort=-visits"))
        first = page.locator("#table-weeks tbody tr").first
        expect(first.get_by_role("rowheader")).to_have_text("6 Jan 2025")

        with page.expect_download() as download_info:
            page.get_by_role("link", name="Download the measures (CSV)").click()
        download = download_info.value
        assert download.suggested_filename == ("threshold-summary-riverside-20250106-20250202.csv")
        text = Path(download.path()).read_text(encoding="utf-8")
        rows = list(csv.reader(io.StringIO(text)))
        value = {(r[0], r[2]): r[3] for r in rows[1:]}
        assert value[("M12", "count")] == "<5"  # 3 visits
        assert value[("M12", "people")] == "<5"  # 2 people

        # A bad period: a message, no charts.
        page.get_by_label("From", exact=True).fill("2025-03-01")
        page.get_by_role("button", name="Show").click()
        expect(page.get_by_role("alert")).to_contain_text("The period starts after it ends.")
        expect(page.get_by_role("img")).to_have_count(0)

        browser.close()
    assert errors == []
    assert requests and all(url.startswith(asgi_server.url) for url in requests), requests
