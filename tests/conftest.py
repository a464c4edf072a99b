"""Fixtures shared by the whole suite: personas, service markers, an ASGI server process."""

import functools
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connection

from clinic import roles
from clinic.models import Discipline
from tests.factories import RoomFactory, ServiceFactory, SiteFactory, make_staff

ROOT = Path(__file__).resolve().parent.parent

# In CI these services are mandatory: a test that needs one fails instead of skipping.
REQUIRED = {
    s.strip() for s in os.environ.get("THRESHOLD_REQUIRE_SERVICES", "").split(",") if s.strip()
}


@functools.cache
def _redis_problem() -> str | None:
    import redis

    try:
        redis.Redis.from_url(django_settings.TEST_REDIS_URL, socket_connect_timeout=1).ping()
    except Exception as exc:
        return f"Redis at {django_settings.TEST_REDIS_URL} is not reachable ({exc})"
    return None


@functools.cache
def _browser_problem() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed"
    if not shutil.which("chromium"):
        return "Chromium is not installed (apt-get install chromium)"
    return None


def _problem(marker: str) -> str | None:
    vendor = django_settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    if marker == "postgres" and vendor != "postgresql":
        return "needs DATABASE_URL to point at PostgreSQL"
    if marker == "sqlite" and vendor != "sqlite3":
        return "runs in the SQLite pass of the suite"
    if marker == "app_role":
        if vendor != "postgresql":
            return "needs PostgreSQL with two roles (DATABASE_URL and DATABASE_OWNER_URL)"
        if not getattr(django_settings, "TEST_APPLICATION_CREDENTIALS", None):
            return "needs DATABASE_OWNER_URL: the tests then run as the application's role"
        return None
    if marker == "redis":
        return _redis_problem()
    if marker == "browser":
        return _browser_problem()
    return None


def pytest_runtest_setup(item):
    for marker in ("postgres", "app_role", "sqlite", "redis", "browser"):
        if item.get_closest_marker(marker) is None:
            continue
        problem = _problem(marker)
        if problem is None:
            continue
        if marker in REQUIRED:
            pytest.fail(f"{marker} is mandatory here (THRESHOLD_REQUIRE_SERVICES): {problem}")
        pytest.skip(problem)


# --- database roles -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """With two PostgreSQL roles (CI): the test database was created and migrated as the owner
    role (tests/settings.py); every test then runs as the application role, as the product
    does, and the database is dropped as the owner again at the end."""
    app = getattr(django_settings, "TEST_APPLICATION_CREDENTIALS", None)
    if not app:
        yield
        return
    from django.db import connections

    settings_dict = connections["default"].settings_dict
    owner = settings_dict["USER"], settings_dict["PASSWORD"]
    with django_db_blocker.unblock():
        connections["default"].close()
    settings_dict["USER"], settings_dict["PASSWORD"] = app["USER"], app["PASSWORD"]
    yield
    with django_db_blocker.unblock():
        connections["default"].close()
    settings_dict["USER"], settings_dict["PASSWORD"] = owner


@pytest.fixture(scope="session", autouse=True)
def _flush_as_database_administration():
    """Between transactional tests Django empties every table ("flush"). That is database
    administration: done as the owner role (the application role may not TRUNCATE), and on
    SQLite with the triggers of append-only tables and sealed visits lifted for the moment
    (PostgreSQL's TRUNCATE fires none)."""
    from contextlib import nullcontext

    from django.core.management.commands import flush
    from django.db import connections

    from clinic.db_roles import as_owner, triggers_lifted

    original = flush.Command.handle

    def handle(self, **options):
        alias = options.get("database") or "default"
        lifted = triggers_lifted(alias) if connections[alias].vendor == "sqlite" else nullcontext()
        with as_owner(alias), lifted:
            return original(self, **options)

    flush.Command.handle = handle
    yield
    flush.Command.handle = original


@pytest.fixture(autouse=True)
def _no_built_boards():
    """Each test starts with no built board fragments: its database may give a site the id and
    queue version an earlier test's had (queues/board.py, built_board)."""
    from queues.board import built_board_forget

    built_board_forget()


# --- personas ---------------------------------------------------------------------------------


@pytest.fixture
def site(db):
    return SiteFactory(name="Riverside", slug="riverside", ticket_prefix="K")


@pytest.fixture
def other_site(db):
    return SiteFactory(name="Hillside", slug="hillside", ticket_prefix="H")


@pytest.fixture
def service(site):
    return ServiceFactory(site=site, name="Wound care")


@pytest.fixture
def room(site):
    return RoomFactory(site=site, name="Room 2")


@pytest.fixture
def front_desk(site):
    return make_staff(
        site=site, roles=[roles.FRONT_DESK], username="robin", discipline=Discipline.FRONT_DESK
    )


@pytest.fixture
def clinician(site):
    return make_staff(
        site=site,
        roles=[roles.CLINICIAN],
        username="alex",
        first_name="Alex",
        discipline=Discipline.NURSE_PRACTITIONER,
    )


@pytest.fixture
def second_clinician(site):
    return make_staff(
        site=site,
        roles=[roles.CLINICIAN],
        username="sam",
        first_name="Sam",
        discipline=Discipline.PEER_NAVIGATOR,
    )


@pytest.fixture
def director(site):
    return make_staff(site=site, roles=[roles.DIRECTOR], username="dana")


@pytest.fixture
def privacy_officer(site):
    return make_staff(site=site, roles=[roles.PRIVACY_OFFICER], username="priya")


@pytest.fixture
def other_site_clinician(other_site):
    return make_staff(site=other_site, roles=[roles.CLINICIAN], username="olive")


# --- a real ASGI server in another process ----------------------------------------------------


@dataclass
class AsgiServer:
    url: str
    process: subprocess.Popen
    log: Path

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _test_database_url(*, owner: bool = False) -> str:
    """The test database as a URL (for a server or command in another process): as the role
    the tests run as, or as the owner role when there is one and `owner`."""
    s = connection.settings_dict
    if s["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{s['NAME']}"
    credentials = django_settings.DATABASE_OWNER if owner else None
    user = (credentials or s).get("USER") or ""
    password = (credentials or s).get("PASSWORD") or ""
    password = f":{password}" if password else ""
    auth = f"{user}{password}@" if user else ""
    return f"postgres://{auth}{s.get('HOST') or '127.0.0.1'}:{s.get('PORT') or 5432}/{s['NAME']}"


def start_asgi_server(
    tmp_path: Path, *, redis_url: str = "", env: dict[str, str] | None = None
) -> AsgiServer:
    """The application served as in production (`python -m clinic.serve`: uvicorn with its
    limits and proxy trust) on the test database, as a separate process. `env` adds to or
    overrides the server's environment (DEBUG=1 by default)."""
    port = _free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "clinic.settings",
        "DEBUG": "1",
        "SECRET_KEY": django_settings.SECRET_KEY,
        "DATABASE_URL": _test_database_url(),
        # The server needs no owner role (nor one for another database than the test's).
        "DATABASE_OWNER_URL": "",
        "REDIS_URL": redis_url,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "PYTHONWARNINGS": "ignore",
        **(env or {}),
    }
    log = tmp_path / f"server-{port}.log"
    # The child keeps its own copy of the log's descriptor; ours is closed straight away.
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "clinic.serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{url}/healthz/", timeout=1) as response:  # noqa: S310
                if response.status == 200:
                    break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"the server did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)
    return AsgiServer(url=url, process=process, log=log)


SERVER_LOG_TAIL = 8000  # characters of a server's log shown with a failed test


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """A test that failed with a server of its own shows the end of that server's log (the
    requests it answered, with their statuses, and any traceback): what a CI run keeps."""
    report = yield
    if report.failed:
        for value in getattr(item, "funcargs", {}).values():
            if isinstance(value, AsgiServer) and value.log.exists():
                tail = value.log.read_text(errors="replace")[-SERVER_LOG_TAIL:]
                report.sections.append((f"server log ({value.url})", tail))
    return report


def stop_asgi_server(server: AsgiServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


@pytest.fixture
def asgi_server(transactional_db, tmp_path):
    server = start_asgi_server(tmp_path)
    yield server
    stop_asgi_server(server)


def session_cookie_for(user) -> dict:
    """A real session in the database for `user`, as a cookie a browser or socket can send."""
    from django.test import Client

    client = Client()
    client.force_login(user)
    return {
        "name": django_settings.SESSION_COOKIE_NAME,
        "value": client.cookies[django_settings.SESSION_COOKIE_NAME].value,
    }


@pytest.fixture
def login(request, client, site, other_site):
    """Sign `client` in as a persona (by fixture name) and return the user (None: anonymous)."""

    def sign_in(persona: str):
        if persona == "anonymous":
            return None
        user = request.getfixturevalue(persona)
        client.force_login(user)
        return user

    return sign_in
