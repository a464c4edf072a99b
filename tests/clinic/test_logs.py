"""No name, birth date, phone number or free text in a log line (README: "What the logs keep").

A scripted session against a real uvicorn process, access log on and every logger at DEBUG,
types names, birth dates, phone numbers and notes into every search and form that takes them
(and into the old addresses that carried them), then reads everything the server wrote.
"""

import html
import http.cookiejar
import logging
import logging.config
import re
import urllib.error
import urllib.parse
import urllib.request
from datetime import timedelta

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from websockets.sync.client import connect

from clinic import logs
from clinic.models import Person
from clinic.names import person_name_clean
from tests.conftest import session_cookie_for, start_asgi_server, stop_asgi_server
from visits.models import Appointment, Visit

# Hostile-ish: accents, apostrophes, double spaces, right-to-left script, CJK, quotes, "&".
NAMES = [
    "Zoë O'Brien-Ngata",
    "Siobhán  Nic Mhathúna",
    'José "Pepe" Ñúñez & Hijos',
    "Thảo Nguyễn",
    "محمد رضا کریمی",
    "李小龍",
]
BIRTH_DATE = "1987-03-14"
PHONE = "+1 (555) 010-4477"
WHAT_HELPS = "Quiet corner by the window, no loud calls"
URGENT_REASON = "Chest pain since Tuesday night"
CONTACT_NOTE = "Handed naloxone kit outside the laundromat"
BOOKING_NOTE = "Bring the pharmacy letter"
TYPED = [*NAMES, BIRTH_DATE, PHONE, WHAT_HELPS, URGENT_REASON, CONTACT_NOTE, BOOKING_NOTE]


def needles(text: str) -> set[str]:
    """The ways a typed value could show in a log line: as typed, percent-encoded in a path
    or a query string, and (for names and notes) each longer word of it."""
    found = {text, urllib.parse.quote(text), urllib.parse.quote_plus(text)}
    for word in re.split(r"\s+", text):
        if len(word) >= 4 and not word.isdigit():
            found |= {word, urllib.parse.quote(word)}
    return found


# --- the filter itself ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "kept"),
    [
        ("GET /queue/?name=Zo%C3%AB HTTP/1.1", "GET /queue/ HTTP/1.1"),
        ("/visits/new/?q=Siobh%C3%A1n+Nic&x=1", "/visits/new/"),
        ("/?name=Jo", "/"),
        (
            "http://127.0.0.1:8000/queue/people/?name=O%27Brien",
            "http://127.0.0.1:8000/queue/people/",
        ),
        (
            "Referer checking failed - https://a.example?name=Jo does not match",
            "Referer checking failed - https://a.example does not match",
        ),
        ("/queue/arrivals/12/call/", "/queue/arrivals/12/call/"),
        ("Is this a question? Yes.", "Is this a question? Yes."),
    ],
)
def test_the_filter_drops_query_strings_and_keeps_the_path(line, kept):
    assert logs.without_query(line) == kept


def log_line(logger_name: str, msg, *args) -> str:
    record = logging.LogRecord(logger_name, logging.INFO, __file__, 1, msg, args, None)
    logs.DropQueryStrings().filter(record)
    return record.getMessage()


def test_the_filter_rewrites_each_servers_access_line():
    # uvicorn: (client, method, path with query, HTTP version, status)
    uvicorn = log_line(
        "uvicorn.access", '%s - "%s %s HTTP/%s" %d', "1.2.3.4:5", "GET", "/q/?name=Jo", "1.1", 200
    )
    assert uvicorn == '1.2.3.4:5 - "GET /q/ HTTP/1.1" 200'
    # runserver with daphne: one dict of details
    daphne = log_line("django.channels.server", "HTTP %(method)s %(path)s", {
        "method": "GET", "path": "/q/?name=Jo",
    })  # fmt: skip
    assert daphne == "HTTP GET /q/"
    # a message logged without arguments
    assert log_line("django.server", '"GET /q/?name=Jo HTTP/1.1" 404') == '"GET /q/ HTTP/1.1" 404'


@pytest.fixture
def logging_as_it_was():
    """Put every logger and handler back as they were (a test reconfiguring logging must not
    leave handlers on pytest's captured streams)."""
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    saved = [
        (lg, lg.handlers[:], lg.filters[:], lg.level, lg.propagate, lg.disabled)
        for lg in loggers
        if isinstance(lg, logging.Logger)
    ]
    handler_filters = [(h, h.filters[:]) for lg, hs, *_ in saved for h in hs]
    yield
    for lg, handlers, filters, level, propagate, disabled in saved:
        lg.handlers[:], lg.filters[:] = handlers, filters
        lg.level, lg.propagate, lg.disabled = level, propagate, disabled
    for handler, filters in handler_filters:
        handler.filters[:] = filters


def test_the_filter_outlives_a_server_configuring_its_loggers_after_django(logging_as_it_was):
    """A launcher that imports the application first and then starts uvicorn has uvicorn
    configure its loggers after Django did: their handlers are replaced, the filter stays."""
    import uvicorn.config

    logging.config.dictConfig(uvicorn.config.LOGGING_CONFIG)

    for name in ("uvicorn.access", "uvicorn.error", "django.request", "django.server"):
        filters = logging.getLogger(name).filters
        assert sum(isinstance(f, logs.DropQueryStrings) for f in filters) == 1, name
    logs.configure(settings.LOGGING)  # configuring again does not stack copies
    assert len(logging.getLogger("uvicorn.access").filters) == 1
    # uvicorn's own handler and format stay (and with them its --no-access-log).
    assert logging.getLogger("uvicorn.access").handlers
    assert logging.getLogger("uvicorn.access").propagate is False


def test_the_settings_configure_logging_through_the_filter():
    assert settings.LOGGING_CONFIG == "clinic.logs.configure"
    handlers = logging.getLogger().handlers
    assert any(isinstance(f, logs.DropQueryStrings) for h in handlers for f in h.filters)


# --- a scripted session against a real uvicorn --------------------------------------------------


class Session:
    """One member of staff's browser, without a browser: cookies, CSRF tokens, redirects."""

    def __init__(self, server, user):
        self.server = server
        self.jar = http.cookiejar.CookieJar()
        cookie = session_cookie_for(user)
        self.jar.set_cookie(_cookie(cookie["name"], cookie["value"]))
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        self.page = ""

    def open(self, path: str, data: dict | None = None, *, expect: int = 200) -> str:
        body = None
        if data is not None:
            data = {"csrfmiddlewaretoken": self.token(), **data}
            body = urllib.parse.urlencode(data).encode()
        try:
            with self.opener.open(self.server.url + path, data=body, timeout=20) as response:
                status, text = response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            status, text = error.code, error.read().decode()
        assert status == expect, f"{path}: {status}\n{text[:800]}"
        if "csrfmiddlewaretoken" in text:  # a page, not a fragment: its forms come next
            self.page = text
        return text

    def token(self) -> str:
        match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', self.page)
        assert match, "no CSRF token on the last page"
        return match.group(1)

    def nonce(self) -> str:
        return re.search(r'name="nonce" value="([^"]+)"', self.page).group(1)


def _cookie(name: str, value: str) -> http.cookiejar.Cookie:
    return http.cookiejar.Cookie(
        0, name, value, None, False, "127.0.0.1", False, False, "/", True, False, None, False,
        None, None, {},
    )  # fmt: skip


@pytest.fixture
def uvicorn_server(transactional_db, tmp_path):
    # Every logger at DEBUG: whatever any of them writes is read.
    server = start_asgi_server(tmp_path, env={"LOG_LEVEL": "DEBUG"})
    yield server
    stop_asgi_server(server)


def front_desk_session(desk: Session, site) -> list[int]:
    """Check everyone in, the way the front desk does, with and without the page's script."""
    check_in_url = reverse("queues:check_in")
    matches_url = reverse("queues:person_matches")
    people = []
    for name in NAMES:
        desk.open(check_in_url)
        nonce = desk.nonce()
        for typed in (name[:2], name[:5], name):  # the script's searches as the name is typed
            desk.open(matches_url, {"name": typed})
        found = desk.open(check_in_url, {"find": "1", "name": name, "nonce": nonce})
        assert html.escape(name, quote=False) in found or "No one known" in found
        desk.open(check_in_url, {
            "nonce": nonce, "name": name, "date_of_birth": BIRTH_DATE, "phone": PHONE,
            "what_helps": WHAT_HELPS, "urgent": "on", "urgent_reason": URGENT_REASON,
        })  # fmt: skip
        people.append(Person.objects.get(site=site, name=person_name_clean(name)).pk)
    # The same name again: the page asks whether it is someone new; it is.
    desk.open(check_in_url)
    nonce = desk.nonce()
    asked = desk.open(check_in_url, {"nonce": nonce, "name": NAMES[0]})
    assert "already known here" in asked
    desk.open(check_in_url, {"nonce": nonce, "name": NAMES[0], "confirm_new": "1"})
    return people


def test_a_whole_session_leaves_no_name_birth_date_phone_or_note_in_any_log(
    uvicorn_server, site, front_desk, clinician, privacy_officer, service
):
    desk = Session(uvicorn_server, front_desk)
    people = front_desk_session(desk, site)

    # Booking an appointment: find by name, choose by id, book with a note.
    book_url = reverse("visits:appointment_new")
    desk.open(book_url)
    found = desk.open(book_url, {"find": "1", "q": NAMES[1]})
    assert f"?person={people[1]}" in found
    desk.open(f"{book_url}?person={people[1]}")
    today = timezone.localdate(timezone.now(), site.tz)
    desk.open(book_url, {
        "person": people[1], "day": (today + timedelta(days=2)).isoformat(), "time": "10:30",
        "service": service.pk, "note": BOOKING_NOTE,
    })  # fmt: skip
    assert Appointment.objects.filter(person_id=people[1]).exists()
    # The appointments list links check-in by id.
    listing = desk.open(f"{reverse('visits:appointments')}?day={today + timedelta(days=2)}")
    assert NAMES[1] not in re.findall(r'href="([^"]*)"', listing)

    # A contact recorded by a clinician: find by name, then save with a note.
    care = Session(uvicorn_server, clinician)
    contact_url = reverse("visits:visit_new")
    care.open(contact_url)
    found = care.open(contact_url, {"find": "1", "q": NAMES[3]})
    assert f'value="{people[3]}"' in found
    now = timezone.localtime(timezone.now(), site.tz)
    care.open(contact_url, {
        "q": NAMES[3], "person": people[3], "origin": "outreach",
        "started_at": (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
        "ended_at": (now - timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M"),
        "note": CONTACT_NOTE,
    })  # fmt: skip
    assert Visit.objects.filter(person_id=people[3]).exists()

    # The privacy officer looks for a person's consents.
    officer = Session(uvicorn_server, privacy_officer)
    privacy_url = reverse("releases:home")
    officer.open(privacy_url)
    assert NAMES[4] in officer.open(privacy_url, {"q": NAMES[4]})

    # Old addresses, bookmarks and pasted links still carry names: they are logged by path.
    for path, key in (
        (reverse("queues:check_in"), "name"),
        (contact_url, "q"),
        (book_url, "q"),
        (privacy_url, "q"),
    ):
        for name in NAMES:
            care.open(f"{path}?{urllib.parse.urlencode({key: name, 'dob': BIRTH_DATE})}",
                      expect=403 if path == privacy_url else 200)  # fmt: skip
    desk.open(f"{reverse('queues:person_matches')}?name={urllib.parse.quote(NAMES[0])}",
              expect=405)  # fmt: skip
    query = urllib.parse.urlencode({"name": NAMES[2], "phone": PHONE})
    desk.open(f"/no-such-page/?{query}", expect=404)
    # A websocket opened with a query string (uvicorn logs websocket handshakes).
    cookie = session_cookie_for(front_desk)
    query = urllib.parse.urlencode({"name": NAMES[5], "phone": PHONE})
    with connect(
        f"{uvicorn_server.ws_url}/ws/queue/{site.slug}/?{query}",
        origin=uvicorn_server.url,
        additional_headers={"Cookie": f"{cookie['name']}={cookie['value']}"},
        open_timeout=10,
    ) as socket:
        socket.recv(timeout=10)

    stop_asgi_server(uvicorn_server)
    log = uvicorn_server.log.read_text(encoding="utf-8", errors="replace")

    # Nothing anyone typed...
    leaks = {
        (value, needle, line)
        for value in TYPED
        for needle in needles(value)
        for line in log.splitlines()
        if needle in line
    }
    assert not leaks, "\n".join(f"{v!r} as {n!r}: {line}" for v, n, line in sorted(leaks))
    # ...though the access log was on and kept the paths.
    assert f'"POST {reverse("queues:person_matches")} HTTP/1.1" 200' in log
    assert f'"GET {contact_url} HTTP/1.1" 200' in log
    assert '"GET /no-such-page/ HTTP/1.1" 404' in log
    assert f"/ws/queue/{site.slug}/" in log
    assert "?" not in "".join(re.findall(r'"(?:GET|POST) [^ "]*', log))
