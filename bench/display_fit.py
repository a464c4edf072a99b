"""What fitting the waiting-room TV costs in the browser: static/js/display.js after each
snapshot (live.js replacing the live part), for 40, 200 and 1,000 waiting by default, at
1920x1080 and 1280x720, in headless Chromium (Debian's /usr/bin/chromium) through Playwright.

The page is the display's own template (templates/queues/_display_live.html, rendered by
Django with no database) inside the display's CSS and script; each run replaces the live part
with the same snapshot and times until display.js has fitted it (its MutationObserver runs
before the next task). Prints the median per size, the code size chosen and the pages.

    .venv/bin/python bench/display_fit.py [--sizes 40,200,1000] [--runs 30]
"""

import argparse
import os
import shutil
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VIEWPORTS = [(1920, 1080), (1280, 720)]

TIME_ONE = """async (html) => {
  const root = document.getElementById("display");
  const start = performance.now();
  root.innerHTML = html;
  await new Promise(resolve => setTimeout(resolve, 0));
  return performance.now() - start;
}"""
LAYOUT = """() => {
  const list = document.querySelector(".waiting-codes ul");
  return {size: list.className || "size-1", pageOf: document.querySelector(".page-of").textContent};
}"""


def fragment(waiting: int) -> str:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clinic.settings")
    os.environ.setdefault("DEBUG", "1")
    import django

    django.setup()
    from django.template.loader import render_to_string

    from queues.selectors import DisplayCall, DisplaySnapshot

    called = tuple(
        DisplayCall(ticket=f"K-{n}", room=f"Room {n}", called_at=1_000 * n) for n in range(3)
    )
    codes = tuple(f"K-{n}" for n in range(4, 4 + waiting))
    snapshot = DisplaySnapshot(version=1, called=called, waiting=codes)
    return render_to_string("queues/_display_live.html", {"display": snapshot})


def page_html(live: str) -> str:
    css = (ROOT / "static/css/display.css").read_text()
    return (
        '<!doctype html><html><head><meta charset="utf-8"><style>'
        "body{margin:0;font-family:system-ui,sans-serif}" + css + "</style></head>"
        '<body class="display-body"><main id="display" data-page-text="Page %(page)s of '
        f'%(pages)s">{live}</main></body></html>'
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="40,200,1000")
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from playwright.sync_api import sync_playwright

    script = (ROOT / "static/js/display.js").read_text()
    print("| waiting | screen | median fit (ms) | code size | pages |")
    print("|---:|---|---:|---|---|")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=shutil.which("chromium"), args=["--no-sandbox", "--disable-gpu"]
        )
        for size in (int(s) for s in args.sizes.split(",")):
            live = fragment(size)
            for width, height in VIEWPORTS:
                page = browser.new_page(viewport={"width": width, "height": height})
                page.set_content(page_html(live))
                page.add_script_tag(content=script)
                times = [page.evaluate(TIME_ONE, live) for _ in range(args.runs)]
                layout = page.evaluate(LAYOUT)
                print(
                    f"| {size:,} | {width}x{height} | {statistics.median(times):.1f} "
                    f"| {layout['size']} | {layout['pageOf'] or 'one'} |"
                )
                page.close()
        browser.close()


if __name__ == "__main__":
    main()
