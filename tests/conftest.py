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
    if marker == "redis":
        return _redis_problem()
    if marker == "browser":
        return _browser_problem()
    return None


def pytest_runtest_setup(item):
    for marker in ("postgres", "sqlite", "redis", "browser"):
        if item.get_closest_marker(marker) is None:
            continue
        problem = _problem(marker)
        if problem is None:
            continue
        if marker in REQUIRED:
            pytest.fail(f"{marker} is mandatory here (THRESHOLD_REQUIRE_SERVICES): {problem}")
        pytest.skip(problem)


@pytest.fixture(scope="session", autouse=True)
def _sqlite_flush_despite_history():
    """The history of changes refuses DELETE (clinic/history.py), and Django's SQLite flush,
    after each transactional test, is a DELETE of every table, which the audited tables'
    triggers would also record. PostgreSQL flushes with TRUNCATE, which no trigger sees. On
    SQLite, flush with the history triggers taken away and put back after."""
    if connection.vendor != "sqlite":
        yield
        return
    from django.apps import apps
    from django.db.backends.sqlite3.base import DatabaseOperations

    from clinic import history

    flush = DatabaseOperations.execute_sql_flush

    def execute_sql_flush(self, sql_list):
        drop = [*history.SQLITE_APPEND_ONLY_DROP, *history.sqlite_drop(history.AUDITED)]
        create = [
            *history.SQLITE_APPEND_ONLY,
            *history.sqlite_create(
                history.AUDITED,
                history.column_kinds(apps, list(history.AUDITED)),
                opaque=history.OPAQUE,
            ),
        ]
        with self.connection.cursor() as cursor:
            for statement in drop:
                cursor.execute(statement)
        try:
            flush(self, sql_list)
        finally:
            with self.connection.cursor() as cursor:
                for statement in create:
                    cursor.execute(statement)

    DatabaseOperations.execute_sql_flush = execute_sql_flush
    yield
    DatabaseOperations.execute_sql_flush = flush


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


def _test_database_url() -> str:
    s = connection.settings_dict
    if s["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{s['NAME']}"
    user = s.get("USER") or ""
    password = f":{s['PASSWORD']}" if s.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    return f"postgres://{auth}{s.get('HOST') or '127.0.0.1'}:{s.get('PORT') or 5432}/{s['NAME']}"


def start_asgi_server(tmp_path: Path, *, redis_url: str = "") -> AsgiServer:
    """daphne serving clinic.asgi on the test database, as a separate process."""
    port = _free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "clinic.settings",
        "DEBUG": "1",
        "SECRET_KEY": django_settings.SECRET_KEY,
        "DATABASE_URL": _test_database_url(),
        "REDIS_URL": redis_url,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "PYTHONWARNINGS": "ignore",
    }
    log = tmp_path / f"daphne-{port}.log"
    # The child keeps its own copy of the log's descriptor; ours is closed straight away.
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "daphne",
                "-b",
                "127.0.0.1",
                "-p",
                str(port),
                "clinic.asgi:application",
            ],
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
            raise RuntimeError(f"daphne did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)
    return AsgiServer(url=url, process=process, log=log)


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
