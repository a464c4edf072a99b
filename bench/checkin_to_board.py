"""How long from pressing "Check in" at the front desk to the name showing on an open board.

Two browser contexts (headless Chromium): a board signed in as a clinician, already open and
connected, and the front desk page. For each run the front desk types a new name, waits until
the page says nobody by that name is known, and presses Check in.

Timing happens in the pages, on the same machine's clock (Date.now()):
  t0      a capture-phase click listener on the Check in button (front desk page);
  ticket  DOMContentLoaded of the page that shows the ticket code (front desk, after redirect);
  board   a MutationObserver on the board's live region sees the name in the DOM.

By default the script serves the app itself: a temporary SQLite database, `migrate`,
`seed_demo`, and daphne (DEBUG=1, like `make run`). With --redis it starts two daphne processes
on channels-redis, the board connected to one and the front desk posting to the other, which is
the multi-worker deployment. With --url it measures an existing server instead.

    .venv/bin/python bench/checkin_to_board.py [--runs 20]
    .venv/bin/python bench/checkin_to_board.py --redis redis://127.0.0.1:6379/3
    .venv/bin/python bench/checkin_to_board.py --url https://clinic.example --user frontdesk \\
        --password … [--board-url https://worker2.example]
"""

import argparse
import math
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import ExitStack
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LIVE_TEXT = "Live: this list updates by itself."
ASGI_APP = "clinic.asgi:application"

# Front desk pages: note the moment Check in is pressed, and when a ticket page is ready.
DESK_PROBE = """
document.addEventListener("click", function (event) {
  if (event.target.closest && event.target.closest("#check-in-button")) {
    sessionStorage.setItem("bench_t0", String(Date.now()));
  }
}, true);
document.addEventListener("DOMContentLoaded", function () {
  if (document.querySelector("[data-testid=ticket-code]")) {
    sessionStorage.setItem("bench_ticket", String(Date.now()));
  }
});
"""

# Board: resolve with the time the name is first in the live region's DOM.
BOARD_WATCH = """
(name) => {
  const root = document.getElementById("live");
  window.__benchSeen = new Promise((resolve) => {
    const check = () => {
      if (root.textContent.includes(name)) {
        observer.disconnect();
        resolve(Date.now());
      }
    };
    const observer = new MutationObserver(check);
    observer.observe(root, {childList: true, subtree: true, characterData: true});
    check();
  });
}
"""
BOARD_WAIT = """
(ms) => Promise.race([window.__benchSeen, new Promise((r) => setTimeout(() => r(null), ms))])
"""


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="measured runs (default 20)")
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured runs first (default 1)")
    parser.add_argument("--url", help="measure this running server instead of starting one")
    parser.add_argument("--board-url", help="with --url: open the board on this server")
    parser.add_argument("--user", default="frontdesk", help="with --url: who signs in")
    parser.add_argument("--password", help="with --url: their password")
    parser.add_argument(
        "--redis",
        metavar="REDIS_URL",
        help="start two daphne processes on channels-redis (board on one, front desk on the other)",
    )
    parser.add_argument(
        "--database-url",
        help="database for the servers this script starts (default: a temporary SQLite file)",
    )
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait per run")
    args = parser.parse_args()
    if args.url and not args.password:
        parser.error("--url needs --password (and --user unless it is 'frontdesk')")
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    return args


# --- servers ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def manage(env: dict, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        sys.exit(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def start_daphne(env: dict, workdir: Path) -> tuple[str, subprocess.Popen]:
    port = free_port()
    with (workdir / f"daphne-{port}.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), ASGI_APP],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{url}/healthz/", timeout=1) as response:  # noqa: S310
                if response.status == 200:
                    return url, process
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            sys.exit(f"daphne did not start; see {workdir}/daphne-{port}.log")
        time.sleep(0.1)


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def serve(args, stack: ExitStack) -> dict:
    """Migrate and seed a fresh database, start daphne; returns where and as whom to sign in."""
    workdir = Path(tempfile.mkdtemp(prefix="threshold-bench-"))
    stack.callback(shutil.rmtree, workdir, ignore_errors=True)
    password = secrets.token_urlsafe(12)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "clinic.settings",
        "DEBUG": "1",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "DATABASE_URL": args.database_url or f"sqlite:///{workdir / 'bench.sqlite3'}",
        "REDIS_URL": args.redis or "",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "LOG_LEVEL": "WARNING",
    }
    manage(env, "migrate", "--noinput")
    manage(env, "seed_demo", "--password", password)
    board_url, process = start_daphne(env, workdir)
    stack.callback(stop, process)
    desk_url = board_url
    if args.redis:
        desk_url, process = start_daphne(env, workdir)
        stack.callback(stop, process)
    return {
        "board_url": board_url,
        "desk_url": desk_url,
        "board_user": ("clinician", password),
        "desk_user": ("frontdesk", password),
    }


# --- browser ----------------------------------------------------------------------------------


def signed_in_page(browser, base_url: str, user: tuple[str, str], path: str, *, init_script=""):
    context = browser.new_context(base_url=base_url, viewport={"width": 1280, "height": 800})
    if init_script:
        context.add_init_script(init_script)
    page = context.new_page()
    page.goto(path)
    if "/login/" in page.url:
        page.get_by_label("Username").fill(user[0])
        page.get_by_label("Password").fill(user[1])
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"**{path}")
    return page


def one_run(desk, board, name: str, timeout_ms: int) -> tuple[int, int]:
    board.evaluate(BOARD_WATCH, name)
    desk.get_by_label("Name", exact=True).fill(name)
    expect(desk.locator("#matches")).to_contain_text("No one known by that name yet")
    # Wait for the page the click leads to: the last run's ticket card is still on screen.
    with desk.expect_navigation(timeout=timeout_ms):
        desk.get_by_role("button", name="Check in", exact=True).click()
    expect(desk.get_by_test_id("ticket-code")).to_be_visible(timeout=timeout_ms)
    seen = board.evaluate(BOARD_WAIT, timeout_ms)
    if seen is None:
        raise RuntimeError(f"{name!r} did not appear on the board within {timeout_ms} ms")
    t0, ticket = desk.evaluate(
        "[sessionStorage.getItem('bench_t0'), sessionStorage.getItem('bench_ticket')].map(Number)"
    )
    return seen - t0, ticket - t0


def percentile(values: list[int], pct: float) -> int:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def summary(label: str, values: list[int]) -> str:
    return (
        f"{label:<34} min {min(values):>5}  median {statistics.median(values):>7.1f}  "
        f"p95 {percentile(values, 95):>5}  max {max(values):>5}"
    )


def main() -> None:
    args = parse_args()
    with ExitStack() as stack:
        if args.url:
            where = {
                "board_url": args.board_url or args.url,
                "desk_url": args.url,
                "board_user": (args.user, args.password),
                "desk_user": (args.user, args.password),
            }
            setup = f"existing server {args.url}" + (
                f", board on {args.board_url}" if args.board_url else ""
            )
        else:
            print("Preparing a fresh database and server…", flush=True)
            where = serve(args, stack)
            setup = "daphne x2 on channels-redis" if args.redis else "daphne x1, in-memory layer"
            setup += ", " + ("given database" if args.database_url else "SQLite")
        playwright = stack.enter_context(sync_playwright())
        browser = playwright.chromium.launch(
            executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS
        )
        stack.callback(browser.close)
        board = signed_in_page(browser, where["board_url"], where["board_user"], "/queue/board/")
        expect(board.locator("#live-status")).to_have_text(LIVE_TEXT, timeout=10_000)
        desk = signed_in_page(
            browser, where["desk_url"], where["desk_user"], "/queue/", init_script=DESK_PROBE
        )

        print(f"Setup: {setup}; board at {where['board_url']}, front desk at {where['desk_url']}")
        tag = secrets.token_hex(3)
        board_ms, ticket_ms = [], []
        for i in range(args.warmup + args.runs):
            measured = i >= args.warmup
            to_board, to_ticket = one_run(
                desk, board, f"Bench {tag} {i:03d}", int(args.timeout * 1000)
            )
            label = f"run {i - args.warmup + 1:>3}" if measured else "warm-up"
            print(f"{label}: board {to_board:>5} ms   (ticket on front desk {to_ticket:>5} ms)")
            if measured:
                board_ms.append(to_board)
                ticket_ms.append(to_ticket)
            time.sleep(0.2)
        status = board.locator("#live-status").text_content()
        if status != LIVE_TEXT:
            print(f"Warning: the board was not on its websocket at the end ({status!r}).")

    print()
    print(f"{args.runs} runs, {setup}, headless Chromium, times in ms")
    print(summary("Check in -> name on open board", board_ms))
    print(summary("Check in -> ticket on front desk", ticket_ms))


if __name__ == "__main__":
    main()
