"""What each open board screen costs: check-in to every screen updated, and check-ins per second.

Starts two server processes (`python -m clinic.serve`, as deployed) on one PostgreSQL database
and one Redis channel layer, then, for each N of --ns:

- opens N board sockets, signed in as a clinician, split across the two processes, the way
  static/js/live.js does (the page's origin, a sync every 15 s, a reconnect after a close);
- times, over --runs check-ins, from the check-in POST (through HTTP, with the CSRF token and
  the nonce from the check-in page, alternating between the processes) to the moment the last
  screen holds the new version; and the POST's own answer;
- times a plain `websockets` broadcast to N clients, in the same run: a minimal server in a
  process of its own sends one payload, of the size and content the board screens just got,
  to every client; from the trigger to the last client.

Then check-ins per second through HTTP (--clients concurrent front desks, both processes) with
no screen open and with --burst-screens open, errors counted, and how long after the last
check-in's answer every screen holds the final version.

Each measurement uses a site of its own, with --waiting people already waiting, so every N
sees the same board. A screen "holds" the highest version it was sent (`message_version`
finds it in any message: a full snapshot on connect, a patch after a change); the message
column gives the size of the last one a screen got and of the snapshot it got on connect.
Point it at a scratch database: it migrates it and leaves its bench sites, staff and check-ins
behind.

    .venv/bin/python bench/fanout.py [--runs 25] [--ns 0,1,10,50,100]
    .venv/bin/python bench/fanout.py --quick          # a smoke run, a minute or so
    DATABASE_URL=postgres://app@host/db DATABASE_OWNER_URL=postgres://owner@host/db \\
        REDIS_URL=redis://127.0.0.1:6379/3 .venv/bin/python bench/fanout.py
"""

import argparse
import asyncio
import contextlib
import http.client
import json
import math
import os
import random
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from http.cookies import SimpleCookie
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SYNC_SECONDS = 15  # static/js/live.js: SYNC_MS
MAX_BACKOFF_SECONDS = 30  # static/js/live.js: MAX_BACKOFF_MS
# The targets of issue 13: the last of 50 screens within 20 plain broadcasts of the POST's
# answer, of 100 within 30.
TARGET_BROADCASTS = {50: 20, 100: 30}

FULL = {"runs": 25, "warmup": 2, "ns": "0,1,10,50,100", "checkins": 1000, "burst_screens": 50}
QUICK = {"runs": 5, "warmup": 1, "ns": "0,1,10", "checkins": 100, "burst_screens": 10}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, help="measured check-ins per N (default 25)")
    parser.add_argument("--warmup", type=int, help="unmeasured check-ins first (default 2)")
    parser.add_argument("--ns", help="numbers of open screens, comma-separated (0,1,10,50,100)")
    parser.add_argument("--checkins", type=int, help="check-ins in each burst (default 1000)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent front desks (8)")
    parser.add_argument("--burst-screens", type=int, help="screens open in the second burst (50)")
    parser.add_argument("--waiting", type=int, default=30, help="people waiting at the start (30)")
    parser.add_argument("--timeout", type=float, default=300.0, help="longest wait, seconds")
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: 5 runs, N=0,1,10, 100 check-ins"
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL", ""),
        help="PostgreSQL, as the application's role (default: $DATABASE_URL)",
    )
    parser.add_argument(
        "--database-owner-url",
        default=os.environ.get("DATABASE_OWNER_URL", ""),
        help="the same database as its owner role, for migrate (default: $DATABASE_OWNER_URL)",
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("REDIS_URL", ""),
        help="the channel layer's Redis (default: $REDIS_URL)",
    )
    parser.add_argument("--plain-server", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.plain_server:
        return args
    preset = QUICK if args.quick else FULL
    for name, value in preset.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    try:
        args.ns = [int(n) for n in str(args.ns).split(",") if n.strip()]
    except ValueError:
        parser.error("--ns takes whole numbers separated by commas, e.g. 1,10,50")
    if any(n < 0 for n in args.ns) or not args.ns:
        parser.error("--ns needs one or more numbers of screens, each 0 or more")
    if args.runs < 1 or args.warmup < 0 or args.checkins < 1 or args.clients < 1:
        parser.error("--runs, --checkins and --clients must be at least 1, --warmup at least 0")
    if args.burst_screens < 0 or args.waiting < 0:
        parser.error("--burst-screens and --waiting cannot be negative")
    if not args.database_url.startswith(("postgres://", "postgresql://")):
        parser.error("needs PostgreSQL: --database-url or DATABASE_URL (postgres://…)")
    if not args.redis_url.startswith(("redis://", "rediss://", "unix://")):
        parser.error("needs Redis: --redis-url or REDIS_URL (redis://…)")
    return args


# --- what a screen holds ------------------------------------------------------------------------

VERSION_KEYS = ("version", "to_version", "to")
BASE_KEYS = ("from_version", "from", "base")


def _find(data, keys):
    """The first whole number under one of `keys`, looking at the outermost level first."""
    level = [data]
    for _depth in range(4):
        following = []
        for item in level:
            if isinstance(item, dict):
                for key in keys:
                    value = item.get(key)
                    if isinstance(value, int) and not isinstance(value, bool):
                        return value
                following.extend(v for v in item.values() if isinstance(v, dict | list))
            elif isinstance(item, list):
                following.extend(v for v in item if isinstance(v, dict | list))
        level = following
    return None


def message_version(raw) -> int | None:
    """The version a screen holds after this message: a full snapshot's version, a patch's
    new version, the highest of a batch. None for anything else (not JSON, no version)."""
    try:
        data = json.loads(raw)
    except (TypeError, ValueError, RecursionError):
        return None
    if isinstance(data, list):
        found = [v for v in (_find(item, VERSION_KEYS) for item in data) if v is not None]
        return max(found, default=None)
    return _find(data, VERSION_KEYS)


def message_base(raw) -> int | None:
    """The version a patch applies to, when the message says (a snapshot applies to any)."""
    try:
        data = json.loads(raw)
    except (TypeError, ValueError, RecursionError):
        return None
    return _find(data, BASE_KEYS) if isinstance(data, dict) else None


# --- screens (websocket clients) ----------------------------------------------------------------


class Screen:
    """One open board (or a plain client): holds the highest version it was sent, and when."""

    def __init__(self, fleet: "Fleet", url: str, origin: str | None, cookie: str | None):
        self.fleet, self.url, self.origin, self.cookie = fleet, url, origin, cookie
        self.held = -1
        self.reached: list[tuple[float, int]] = []  # (time, version), versions increasing
        self.messages = 0
        self.last_message = ""
        self.first_size = 0  # the snapshot sent on connect, in bytes
        self.reconnects = 0
        self.closed_with: int | None = None
        self.connected = asyncio.Event()
        self.task: asyncio.Task | None = None
        self.socket = None

    def reached_at(self, version: int) -> float | None:
        for moment, held in self.reached:
            if held >= version:
                return moment
        return None

    def _received(self, raw) -> None:
        moment = time.perf_counter()
        self.messages += 1
        if self.messages == 1:
            self.first_size = len(raw.encode() if isinstance(raw, str) else raw)
        version = message_version(raw)
        if version is None or version <= self.held:
            return
        base = message_base(raw)
        if base is not None and base > self.held:
            # A patch to a version this screen never had: a page would ask for a snapshot.
            self.fleet.loop.create_task(self._sync())
            return
        self.held = version
        self.last_message = raw
        self.reached.append((moment, version))
        self.fleet.changed.set()

    async def _sync(self) -> None:
        with contextlib.suppress(Exception):
            await self.socket.send(json.dumps({"type": "sync", "version": self.held}))

    async def _syncing(self) -> None:
        while True:
            await asyncio.sleep(SYNC_SECONDS)
            await self._sync()

    async def run(self) -> None:
        from websockets.asyncio.client import connect
        from websockets.exceptions import InvalidStatus, WebSocketException

        headers = {"Cookie": self.cookie} if self.cookie else None
        attempts = 0
        while True:
            try:
                async with connect(
                    self.url,
                    origin=self.origin,
                    additional_headers=headers,
                    max_size=None,  # a browser takes a board of any size
                    open_timeout=60,
                ) as ws:
                    self.socket = ws
                    self.connected.set()
                    syncing = asyncio.create_task(self._syncing())
                    try:
                        async for raw in ws:
                            attempts = 0
                            self._received(raw)
                    finally:
                        syncing.cancel()
                    code = ws.close_code
            except InvalidStatus as error:  # refused before it opened: no retry helps
                self.closed_with = error.response.status_code
                self.connected.set()
                self.fleet.changed.set()
                return
            except (TimeoutError, OSError, WebSocketException) as error:
                code = getattr(getattr(error, "rcvd", None), "code", None)
            self.socket = None
            if code in (4401, 4403):  # the session ended or the role went: a page stops here
                self.closed_with = code
                self.fleet.changed.set()
                return
            # live.js: back off 1 s, 2 s, 4 s … up to 30 s, with jitter, then a new snapshot.
            self.reconnects += 1
            delay = min(MAX_BACKOFF_SECONDS, 2**attempts) * (0.5 + random.random() / 2)
            attempts += 1
            await asyncio.sleep(delay)


class Fleet:
    """Several screens, and waiting until every one holds a version."""

    def __init__(self):
        self.loop = asyncio.get_running_loop()
        self.screens: list[Screen] = []
        self.changed = asyncio.Event()

    async def open(self, targets: list[tuple[str, str | None, str | None]], timeout: float):
        """Connect a screen per (url, origin, cookie); returns when each holds a version."""
        for url, origin, cookie in targets:
            screen = Screen(self, url, origin, cookie)
            screen.task = asyncio.create_task(screen.run())
            self.screens.append(screen)
            # Pages open one by one, not all in the same millisecond.
            await asyncio.wait_for(screen.connected.wait(), timeout)
            if screen.closed_with:
                raise RuntimeError(f"{url} refused the screen ({screen.closed_with})")

    async def wait_all(self, version: int, timeout: float, *, what: str) -> None:
        deadline = time.perf_counter() + timeout
        while True:
            self.changed.clear()
            lost = [s for s in self.screens if s.closed_with]
            if lost:
                raise RuntimeError(f"{len(lost)} screen(s) were closed ({lost[0].closed_with})")
            if all(s.held >= version for s in self.screens):
                return
            left = deadline - time.perf_counter()
            if left <= 0:
                behind = sum(s.held < version for s in self.screens)
                raise RuntimeError(
                    f"{behind} of {len(self.screens)} screens did not reach version {version} "
                    f"within {timeout:.0f} s ({what})"
                )
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.changed.wait(), min(left, 1.0))

    def last_reached(self, version: int) -> float:
        return max(s.reached_at(version) for s in self.screens)

    def first_reached(self, version: int) -> float:
        return min(s.reached_at(version) for s in self.screens)

    async def close(self) -> None:
        for screen in self.screens:
            screen.task.cancel()
        await asyncio.gather(*(s.task for s in self.screens), return_exceptions=True)
        self.screens = []


# --- front desk and polling (HTTP) --------------------------------------------------------------

_INPUT = re.compile(r"<input\b[^>]*>", re.IGNORECASE)
_ATTRIBUTE = re.compile(r'\b(name|value)="([^"]*)"')


def form_fields(html: str) -> dict[str, str]:
    """The name and value of each <input> in a page."""
    fields = {}
    for tag in _INPUT.findall(html):
        attributes = dict(_ATTRIBUTE.findall(tag))
        if "name" in attributes:
            fields.setdefault(attributes["name"], attributes.get("value", ""))
    return fields


class Browser:
    """An HTTP client with one kept-alive connection and a cookie jar, for use in one thread."""

    def __init__(self, base_url: str, cookies: dict[str, str]):
        self.base_url = base_url
        parts = urllib.parse.urlsplit(base_url)
        self.host, self.port = parts.hostname, parts.port
        self.cookies = dict(cookies)
        self.conn: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, body: bytes | None = None, headers=None):
        headers = {
            "Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items()),
            **(headers or {}),
        }
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
            try:
                self.conn.request(method, path, body=body, headers=headers)
                response = self.conn.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException):
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise
                continue
            for header in response.headers.get_all("Set-Cookie") or []:
                for name, morsel in SimpleCookie(header).items():
                    self.cookies[name] = morsel.value
            return response.status, response.headers, data
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()


class FrontDesk(Browser):
    """The check-in page, as the front desk uses it."""

    csrf = ""
    nonce = ""

    def open_page(self) -> None:
        status, _headers, body = self.request("GET", "/queue/")
        if status != 200:
            raise RuntimeError(f"the check-in page answered {status}")
        fields = form_fields(body.decode())
        self.csrf, self.nonce = fields.get("csrfmiddlewaretoken", ""), fields.get("nonce", "")
        if not self.csrf or not self.nonce:
            raise RuntimeError("the check-in page has no CSRF token or nonce")

    def check_in(self, name: str, nonce: str) -> int:
        body = urllib.parse.urlencode(
            {"csrfmiddlewaretoken": self.csrf, "nonce": nonce, "name": name}
        ).encode()
        status, headers, _body = self.request(
            "POST",
            "/queue/",
            body,
            {"Content-Type": "application/x-www-form-urlencoded", "Origin": self.base_url},
        )
        if status == 302 and "arrival=" in (headers.get("Location") or ""):
            return status
        return status or -1


class Poller(Browser):
    """The board's polling endpoint: the version the server has now."""

    def version(self) -> int:
        status, _headers, body = self.request(
            "GET", "/queue/board/live/", headers={"X-Threshold-Background": "1"}
        )
        version = message_version(body) if status == 200 else None
        if version is None:
            raise RuntimeError(f"the board's polling endpoint answered {status}")
        return version


SYLLABLES = "ba be bi bo da de di do ka ke ki ko la le li lo ma me mi mo na ne ni no ra re ri ro"


def person_names():
    """Made-up names, all different, none contained in another (so no namesakes to confirm)."""
    syllables = SYLLABLES.split()
    seen = set()
    while True:
        first = "".join(random.choices(syllables, k=3)).capitalize()
        last = "".join(random.choices(syllables, k=4)).capitalize()
        name = f"{first} {last}"
        if name not in seen:
            seen.add(name)
            yield name


# --- servers -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    def __init__(self, env: dict, workdir: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}"
        self.log = workdir / f"server-{self.port}.log"
        port = str(self.port)
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "clinic.serve", "--host", "127.0.0.1", "--port", port],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(OSError):
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
                connection.request("GET", "/healthz/")
                if connection.getresponse().status == 200:
                    return
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.process.kill()
                sys.exit(f"the server did not start:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.1)

    def stop(self) -> str:
        """SIGTERM, then SIGINT, then SIGKILL; says which one it took."""
        for how, send, wait in (
            ("SIGTERM", self.process.terminate, 10),
            ("SIGINT", lambda: self.process.send_signal(signal.SIGINT), 5),
            ("SIGKILL", self.process.kill, 5),
        ):
            if self.process.poll() is not None:
                return how
            send()
            try:
                self.process.wait(timeout=wait)
                return how
            except subprocess.TimeoutExpired:
                continue
        return "did not stop"


def start_plain_server(stack: ExitStack) -> dict[str, str]:
    """This script's plain websockets servers, in a process of their own: one that compresses
    each message as the application's server does (permessage-deflate, uvicorn's settings),
    one that sends it as it is."""
    process = subprocess.Popen(
        [sys.executable, __file__, "--plain-server"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    stack.callback(lambda: (process.kill(), process.wait()))
    ports = process.stdout.readline().split()
    if len(ports) != 2 or not all(port.isdigit() for port in ports):
        sys.exit("the plain websockets server did not start")
    return {kind: f"ws://127.0.0.1:{port}" for kind, port in zip(PLAIN, ports, strict=True)}


PLAIN = ("deflate", "uncompressed")


def plain_server() -> None:
    """Minimal websockets broadcast servers: every client at "/" gets each broadcast; the one
    at "/control" sets the payload ({"payload": …}) and triggers ({"go": version})."""
    from websockets.asyncio.server import broadcast, serve
    from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory

    def handler():
        clients = set()
        payload = {}

        async def handle(ws):
            if ws.request.path == "/control":
                async for raw in ws:
                    order = json.loads(raw)
                    if "payload" in order:
                        payload["message"] = order["payload"]
                        await ws.send("ok")
                    else:
                        # Built once, sent to everyone: what a plain broadcast costs.
                        broadcast(clients, json.dumps({"version": order["go"], **payload}))
                return
            clients.add(ws)
            try:
                await ws.wait_closed()
            finally:
                clients.discard(ws)

        return handle

    async def main():
        # uvicorn offers permessage-deflate with the library's defaults
        # (ws_per_message_deflate, on unless turned off); the second server offers nothing.
        deflate = [ServerPerMessageDeflateFactory()]
        async with (
            serve(
                handler(), "127.0.0.1", 0, max_size=None, compression=None, extensions=deflate
            ) as compressed,
            serve(handler(), "127.0.0.1", 0, max_size=None, compression=None) as plain,
        ):
            ports = [next(iter(s.sockets)).getsockname()[1] for s in (compressed, plain)]
            print(*ports, flush=True)
            await asyncio.Future()

    asyncio.run(main())


# --- database set-up (Django, before any event loop) --------------------------------------------


def django_setup(args, secret_key: str) -> None:
    os.environ.update(
        DJANGO_SETTINGS_MODULE="clinic.settings",
        DEBUG="1",
        SECRET_KEY=secret_key,
        DATABASE_URL=args.database_url,
        DATABASE_OWNER_URL=args.database_owner_url,
        # Set-up check-ins here have nobody to tell: no hint to the servers' Redis.
        REDIS_URL="",
        LOG_LEVEL="WARNING",
    )
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def prepare_site(label: str, *, waiting: int, desks: int, screens: int, names) -> dict:
    """A site of its own with `waiting` people waiting, `desks` front desk sessions and
    `screens` clinician sessions (one per screen, as on separate devices), as cookies."""
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.test import Client

    from clinic import roles
    from clinic.models import Discipline, Membership, Site
    from queues import services

    roles.sync_roles()
    tag = secrets.token_hex(3)
    site = Site.objects.create(
        name=f"Bench {label} {tag}", slug=f"bench-{label}-{tag}", ticket_prefix="B"
    )
    User = get_user_model()

    def staff(kind: str, role: str, discipline: str):
        user = User.objects.create_user(
            username=f"bench-{kind}-{label}-{tag}-{secrets.token_hex(2)}"
        )
        membership = Membership.objects.create(user=user, site=site, discipline=discipline)
        membership.roles.set(Group.objects.filter(name=role))
        return user

    desk_users = [staff("desk", roles.FRONT_DESK, Discipline.FRONT_DESK) for _ in range(desks)]
    clinician = staff("clinician", roles.CLINICIAN, Discipline.NURSE)
    for _ in range(waiting):
        services.arrival_check_in(site=site, by=desk_users[0], nonce=uuid.uuid4(), name=next(names))

    def session(user) -> str:
        client = Client()
        client.force_login(user)
        return client.cookies[settings.SESSION_COOKIE_NAME].value

    cookie = settings.SESSION_COOKIE_NAME
    return {
        "slug": site.slug,
        "desks": [{cookie: session(user)} for user in desk_users],
        "screens": [{cookie: session(clinician)} for _ in range(max(screens, 1))],
    }


# --- measuring ----------------------------------------------------------------------------------


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def cookie_header(cookies: dict[str, str]) -> str:
    return "; ".join(f"{k}={v}" for k, v in cookies.items())


async def open_boards(fleet: Fleet, servers, site: dict, n: int, timeout: float) -> None:
    targets = []
    for i in range(n):
        server = servers[i % len(servers)]
        targets.append(
            (
                f"{server.ws_url}/ws/queue/{site['slug']}/",
                server.url,  # the page's own origin, port included
                cookie_header(site["screens"][i]),
            )
        )
    await fleet.open(targets, timeout)


async def in_thread(pool, function, *args):
    return await asyncio.get_running_loop().run_in_executor(pool, function, *args)


async def measure_latency(args, servers, site: dict, n: int, names, pool) -> dict:
    """Check-ins one at a time: the POST's answer and the last of n screens updated (ms)."""
    fleet = Fleet()
    desks = [FrontDesk(server.url, site["desks"][0]) for server in servers]
    poller = Poller(servers[0].url, site["screens"][0])
    result = {"post": [], "last": [], "first": [], "size": 0, "snapshot": 0, "message": ""}
    try:
        await open_boards(fleet, servers, site, n, args.timeout)
        for i in range(args.warmup + args.runs):
            desk = desks[i % len(desks)]
            await in_thread(pool, desk.open_page)  # the page is on screen before the click
            before = await in_thread(pool, poller.version)
            await fleet.wait_all(before, args.timeout, what="before the check-in")
            await asyncio.sleep(0.05)
            start = time.perf_counter()
            status = await in_thread(pool, desk.check_in, next(names), desk.nonce)
            answered = time.perf_counter()
            if status != 302:
                raise RuntimeError(f"a check-in answered {status}")
            if n:
                await fleet.wait_all(before + 1, args.timeout, what="after a check-in")
                after = await in_thread(pool, poller.version)
                await fleet.wait_all(after, args.timeout, what="after a check-in")
            if i < args.warmup:
                continue
            result["post"].append((answered - start) * 1000)
            if n:
                result["last"].append((fleet.last_reached(after) - start) * 1000)
                result["first"].append((fleet.first_reached(after) - start) * 1000)
        if n:
            sizes = [len(s.last_message.encode()) for s in fleet.screens]
            result["size"] = int(statistics.median(sizes))
            result["snapshot"] = int(statistics.median(s.first_size for s in fleet.screens))
            result["message"] = fleet.screens[0].last_message
            result["reconnects"] = sum(s.reconnects for s in fleet.screens)
    finally:
        await fleet.close()
        for browser in (*desks, poller):
            browser.close()
    return result


async def measure_plain(args, plain_url: str, n: int, message: str) -> list[float]:
    """A plain websockets broadcast of `message` to n clients: trigger to last client (ms)."""
    from websockets.asyncio.client import connect

    fleet = Fleet()
    times = []
    async with connect(f"{plain_url}/control", max_size=None) as control:
        try:
            payload = json.loads(message) if message else {"html": ""}
        except ValueError:
            payload = {"text": message}
        if isinstance(payload, dict):
            # A patch's base would read as a gap: the plain clients have no versions to patch.
            for key in BASE_KEYS:
                payload.pop(key, None)
        await control.send(json.dumps({"payload": payload}))
        await control.recv()
        await fleet.open([(f"{plain_url}/", None, None)] * n, args.timeout)
        try:
            for version in range(1, args.warmup + args.runs + 1):
                await asyncio.sleep(0.05)
                start = time.perf_counter()
                await control.send(json.dumps({"go": version}))
                await fleet.wait_all(version, args.timeout, what="plain broadcast")
                if version > args.warmup:
                    times.append((fleet.last_reached(version) - start) * 1000)
        finally:
            await fleet.close()
    return times


def burst_worker(base_url: str, cookies: dict, names, lock, left: list[int], out: dict) -> None:
    desk = FrontDesk(base_url, cookies)
    try:
        desk.open_page()
        while True:
            with lock:
                if left[0] <= 0:
                    return
                left[0] -= 1
                name = next(names)
            start = time.perf_counter()
            try:
                status = desk.check_in(name, str(uuid.uuid4()))
            except (OSError, http.client.HTTPException):
                status = -1
            end = time.perf_counter()
            with lock:
                out["post"].append((end - start) * 1000)
                out["last_answer"] = max(out["last_answer"], end)
                if status != 302:
                    out["errors"] += 1
    finally:
        desk.close()


def servers_cpu(servers) -> float | None:
    """The servers' CPU time so far (user + system, seconds), where /proc tells it."""
    total = 0.0
    for server in servers:
        try:
            fields = Path(f"/proc/{server.process.pid}/stat").read_text().rsplit(")", 1)[1]
        except OSError:
            return None
        utime, stime = fields.split()[11:13]
        total += (int(utime) + int(stime)) / os.sysconf("SC_CLK_TCK")
    return total


async def measure_burst(args, servers, site: dict, screens: int, names) -> dict:
    """--checkins check-ins from --clients front desks at once, both processes."""
    fleet = Fleet()
    poller = Poller(servers[0].url, site["screens"][0])
    out = {"post": [], "errors": 0, "last_answer": 0.0}
    lock = threading.Lock()
    left = [args.checkins]
    pool = ThreadPoolExecutor(max_workers=args.clients + 1)
    try:
        await open_boards(fleet, servers, site, screens, args.timeout)
        before = await in_thread(pool, poller.version)
        await fleet.wait_all(before, args.timeout, what="before the burst")
        messages_before = sum(s.messages for s in fleet.screens)
        cpu_before = servers_cpu(servers)
        start = time.perf_counter()
        await asyncio.gather(
            *(
                in_thread(
                    pool,
                    burst_worker,
                    servers[i % len(servers)].url,
                    site["desks"][i],
                    names,
                    lock,
                    left,
                    out,
                )
                for i in range(args.clients)
            )
        )
        elapsed = out["last_answer"] - start
        result = {
            "rate": len(out["post"]) / elapsed,
            "errors": out["errors"],
            "post": out["post"],
        }
        if screens:
            final = await in_thread(pool, poller.version)
            await fleet.wait_all(final, args.timeout, what="after the burst")
            result["catch_up"] = (fleet.last_reached(final) - out["last_answer"]) * 1000
            got = sum(s.messages for s in fleet.screens) - messages_before
            result["per_screen"] = got / screens
            result["reconnects"] = sum(s.reconnects for s in fleet.screens)
        # The servers' whole cost of the burst, screens brought up to date included.
        cpu_after = servers_cpu(servers)
        if cpu_before is not None and cpu_after is not None:
            result["cpu"] = (cpu_after - cpu_before) * 1000 / len(out["post"])
    finally:
        await fleet.close()
        poller.close()
        pool.shutdown(wait=False)
    return result


# --- report -------------------------------------------------------------------------------------


NONE, TIMES = "\u2013", "\u00d7"  # an en dash, a multiplication sign


def kb(size: int) -> str:
    return f"{size / 1024:,.0f} KB" if size >= 10 * 1024 else f"{size / 1024:.1f} KB"


def ms(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 else f"{value:.1f}"


def report(args, latency: dict, plain: dict, bursts: dict, setup: str) -> None:
    print()
    print(f"{setup}; {args.runs} runs per N, {args.waiting} waiting at the start; times in ms.")
    print()
    print(
        "| open board screens | check-in POST answered, p50 / p95 "
        "| last screen updated after a check-in, p50 / p95 "
        "| a plain websocket broadcast to as many clients, p50 / p95: compressed as the "
        "app's server does / uncompressed | ratio (p95) | message after a check-in |"
    )
    print("|---|---|---|---|---|---|")
    for n in args.ns:
        got = latency[n]
        post = f"{ms(percentile(got['post'], 50))} / {ms(percentile(got['post'], 95))}"
        if not n:
            print(f"| 0 | {post} | {NONE} | {NONE} | {NONE} | {NONE} |")
            continue
        last = f"{ms(percentile(got['last'], 50))} / {ms(percentile(got['last'], 95))}"
        bases = " and ".join(
            f"{ms(percentile(plain[n][kind], 50))} / {ms(percentile(plain[n][kind], 95))}"
            for kind in PLAIN
        )
        ratios = " / ".join(
            f"{percentile(got['last'], 95) / percentile(plain[n][kind], 95):,.0f}{TIMES}"
            for kind in PLAIN
        )
        message = f"{kb(got['size'])} (snapshot on connect {kb(got['snapshot'])})"
        print(f"| {n} | {post} | {last} | {bases} | {ratios} | {message} |")
    print()
    for n, allowed in TARGET_BROADCASTS.items():
        if n not in latency:
            continue
        last = percentile(latency[n]["last"], 95)
        for kind in PLAIN:
            limit = percentile(latency[n]["post"], 95) + allowed * percentile(plain[n][kind], 95)
            verdict = "met" if last <= limit else "not met"
            print(
                f"Target, {n} screens: last screen p95 {ms(last)} ms against POST p95 + "
                f"{allowed} plain broadcasts ({kind}) = {ms(limit)} ms: {verdict}."
            )
    if 0 in latency and 50 in latency:
        ratio = percentile(latency[50]["post"], 95) / percentile(latency[0]["post"], 95)
        print(f"POST p95 with 50 screens open / with none: {ratio:.2f} (target ≤ 1.20).")
    reconnects = sum(latency[n].get("reconnects", 0) for n in args.ns)
    if reconnects:
        print(f"Screens reconnected {reconnects} times during the runs.")
    print()
    print(
        f"Check-ins through HTTP: {args.checkins} from {args.clients} concurrent front desks, "
        "both processes."
    )
    print()
    print(
        "| screens open | check-ins per second | errors | POST p50 / p95 "
        "| every screen at the final version, after the last check-in | messages per screen "
        "| servers' CPU per check-in |"
    )
    print("|---|---|---|---|---|---|---|")
    for screens, got in bursts.items():
        post = f"{ms(percentile(got['post'], 50))} / {ms(percentile(got['post'], 95))}"
        if screens:
            catch_up = f"{ms(got['catch_up'])} ms"
            per_screen = f"{got['per_screen']:,.0f}"
        else:
            catch_up = per_screen = NONE
        cpu = f"{got['cpu']:.1f} ms" if "cpu" in got else NONE
        print(
            f"| {screens} | {got['rate']:.1f} | {got['errors']} | {post} | {catch_up} "
            f"| {per_screen} | {cpu} |"
        )
    reconnects = {
        screens: got["reconnects"] for screens, got in bursts.items() if got.get("reconnects")
    }
    for screens, count in reconnects.items():
        print(f"During the burst with {screens} screens open, screens reconnected {count} times.")


async def bench(args, servers, plain_urls: dict, sites: dict, names) -> tuple:
    latency, plain, bursts = {}, {}, {}
    pool = ThreadPoolExecutor(max_workers=2)
    try:
        for n in args.ns:
            print(f"N = {n}: check-ins …", flush=True)
            latency[n] = await measure_latency(args, servers, sites[n], n, names, pool)
            if n:
                print(f"N = {n}: plain broadcasts …", flush=True)
                plain[n] = {
                    kind: await measure_plain(args, url, n, latency[n]["message"])
                    for kind, url in plain_urls.items()
                }
        for screens in (0, args.burst_screens):
            if screens in bursts:
                continue
            print(f"Burst of {args.checkins} check-ins, {screens} screens open …", flush=True)
            bursts[screens] = await measure_burst(
                args, servers, sites[f"burst-{screens}"], screens, names
            )
    finally:
        pool.shutdown(wait=False)
    return latency, plain, bursts


def load_note() -> str:
    with contextlib.suppress(OSError):
        one, five, _fifteen = os.getloadavg()
        return f"load average {one:.1f} (5 min {five:.1f}) on {os.cpu_count()} CPUs"
    return f"{os.cpu_count()} CPUs"


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.plain_server:
        plain_server()
        return
    secret_key = secrets.token_urlsafe(50)
    print("Migrating and preparing the bench sites …", flush=True)
    django_setup(args, secret_key)
    names = person_names()
    sites = {}
    for n in args.ns:
        sites[n] = prepare_site(f"n{n}", waiting=args.waiting, desks=1, screens=n, names=names)
    for screens in {0, args.burst_screens}:
        sites[f"burst-{screens}"] = prepare_site(
            f"burst{screens}",
            waiting=args.waiting,
            desks=args.clients,
            screens=screens,
            names=names,
        )
    from django.db import connections

    connections.close_all()

    # The servers run as in production (DEBUG off: no query log, static files collected
    # with their manifest), over plain HTTP on the loopback.
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "clinic.settings",
        "DEBUG": "0",
        "SECRET_KEY": secret_key,
        "DATABASE_URL": args.database_url,
        "DATABASE_OWNER_URL": "",  # the servers need no owner role
        "REDIS_URL": args.redis_url,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "0",
        "SESSION_COOKIE_SECURE": "0",
        "CSRF_COOKIE_SECURE": "0",
        "PYTHONWARNINGS": "ignore",
    }
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"],
        cwd=ROOT,
        env=env,
        check=True,
    )
    with ExitStack() as stack:
        workdir = Path(tempfile.mkdtemp(prefix="threshold-fanout-"))
        stack.callback(shutil.rmtree, workdir, ignore_errors=True)
        servers = [Server(env, workdir) for _ in range(2)]
        stopped = {}
        for server in servers:
            stack.callback(lambda s=server: stopped.setdefault(s.port, s.stop()))
        for server in servers:
            server.wait_ready()
        plain_urls = start_plain_server(stack)
        load_at_start = load_note()
        print(f"Servers at {servers[0].url} and {servers[1].url}; {load_at_start}.", flush=True)
        latency, plain, bursts = asyncio.run(bench(args, servers, plain_urls, sites, names))
        load_at_end = load_note()
        # Every socket is closed by now, so a plain SIGTERM should do.
        for server in servers:
            stopped[server.port] = server.stop()
    setup = (
        "two `python -m clinic.serve` processes (DEBUG off), channels-redis, PostgreSQL; "
        f"at the start {load_at_start}, at the end {load_at_end}"
    )
    report(args, latency, plain, bursts, setup)
    unclean = {port: how for port, how in stopped.items() if how != "SIGTERM"}
    if unclean:
        print(f"\nServers that did not stop on SIGTERM within 10 s: {unclean}")


if __name__ == "__main__":
    main()
