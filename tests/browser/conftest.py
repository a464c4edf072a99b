"""The browser tests' Chromium: Debian's, headless, through Playwright."""

import contextlib
import shutil

import pytest

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # the "browser" marker skips (or, in CI, fails) these tests with a reason
    sync_playwright = None

# Debian's Chromium, headless in a container: no sandbox, GPU, QUIC or background traffic.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextlib.contextmanager
def launched_chromium():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def chromium(asgi_server):
    """A headless Chromium for the test's server. Request it last, so every other fixture's
    ORM work comes first."""
    with launched_chromium() as browser:
        yield browser


def main_nav(page):
    """The header's links, ready to use: on a phone they are behind "Menu" (static/js/menu.js),
    which this opens first."""
    menu = page.get_by_role("banner").get_by_role("button", name="Menu")
    if menu.is_visible() and menu.get_attribute("aria-expanded") != "true":
        menu.click()
    return page.get_by_role("navigation", name="Main")
