"""The served application's edges, against a real server process (`python -m clinic.serve`,
as the Dockerfile and docker-compose.yml start it): request limits, websocket limits and
origins, and whose forwarded headers are believed.

Every wait here is a deadline that only a broken server reaches; none measures speed.
"""

import json
import re
import socket
import subprocess
import sys
import uuid
from contextlib import closing
from datetime import timedelta
from http.cookies import SimpleCookie

import pytest
from django.conf import settings
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart
from django.urls import reverse
from django.utils import timezone
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from clinic.models import LockoutEvent
from queues.models import Arrival
from releases.models import Consent, Scope
from releases.services.registry import recipient_add
from tests.conftest import (
    ROOT,
    _test_database_url,
    session_cookie_for,
    start_asgi_server,
    stop_asgi_server,
)
from tests.factories import PersonFactory

pytestmark = pytest.mark.django_db(transaction=True)

# Longer than REQUEST_BODY_SECONDS (10) plus a margin, far shorter than "held open forever".
TIMEOUT = 20
PASSWORD = "a long enough password 9"


@pytest.fixture
def server(tmp_path):
    """The served application, with its own temporary directory (where Django would spool a
    large body) so that the test can see whether anything was written there."""
    spool = tmp_path / "spool"
    spool.mkdir()
    media = tmp_path / "media"
    media.mkdir()
    served = start_asgi_server(tmp_path, env={"TMPDIR": str(spool), "MEDIA_ROOT": str(media)})
    served.spool, served.media = spool, media
    yield served
    stop_asgi_server(served)


# --- raw HTTP, to control exactly what is sent and when -----------------------------------------


def open_connection(server) -> socket.socket:
    port = int(server.url.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    sock.settimeout(TIMEOUT)
    return sock


def head(method: str, path: str, *headers: str) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *headers, "", ""]
    return "\r\n".join(lines).encode()


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (TimeoutError if it holds
    the connection open past the deadline)."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def files_under(path) -> list:
    return [p for p in path.rglob("*") if p.is_file()]


def test_a_300_mb_upload_to_the_sign_in_page_is_refused_before_it_is_read(server):
    with closing(open_connection(server)) as sock:
        sock.sendall(
            head(
                "POST",
                "/login/",
                f"Content-Type: multipart/form-data; boundary={BOUNDARY}",
                f"Content-Length: {300 * 1024 * 1024}",
            )
        )
        # The answer comes before a single byte of the body was sent, and the connection closes.
        response = read_until_closed(sock)
    assert status_of(response) == 415
    assert files_under(server.spool) == []
    assert files_under(server.media) == []


def test_a_declared_body_over_the_limit_is_refused_with_413_before_it_is_read(server):
    with closing(open_connection(server)) as sock:
        sock.sendall(
            head(
                "POST",
                "/login/",
                "Content-Type: application/x-www-form-urlencoded",
                f"Content-Length: {300 * 1024 * 1024}",
            )
        )
        response = read_until_closed(sock)
    assert status_of(response) == 413
    assert files_under(server.spool) == []


def test_a_chunked_body_is_cut_off_at_the_limit(server):
    chunk = b"a" * (settings.REQUEST_BODY_MAX_BYTES_ANONYMOUS + 1)
    with closing(open_connection(server)) as sock:
        sock.sendall(
            head(
                "POST",
                "/login/",
                "Content-Type: application/x-www-form-urlencoded",
                "Transfer-Encoding: chunked",
            )
        )
        # One chunk past the limit, and the body never ends: the server must not wait for it.
        sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        response = read_until_closed(sock)
    assert status_of(response) == 413


def test_a_stalled_body_is_answered_and_closed_within_the_time_limit(server):
    with closing(open_connection(server)) as sock:
        sock.sendall(
            head(
                "POST",
                "/login/",
                "Content-Type: application/x-www-form-urlencoded",
                "Content-Length: 1000",
            )
            + b"username=a"
        )
        # Nothing more is sent. The server gives up after REQUEST_BODY_SECONDS; a server that
        # held it longer than TIMEOUT fails here with TimeoutError.
        response = read_until_closed(sock)
    assert status_of(response) == 408


# --- websockets ---------------------------------------------------------------------------------


def test_a_10_mb_websocket_frame_is_refused(server, site):
    path = f"/ws/display/{site.display_token}/"
    with connect(server.ws_url + path, origin=server.url, open_timeout=TIMEOUT) as ws:
        assert json.loads(ws.recv(timeout=TIMEOUT))["type"] == "snapshot"
        ws.send("x" * (10 * 1024 * 1024))
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=TIMEOUT)
    assert closed.value.rcvd.code == 1009  # message too big


def test_a_websocket_from_another_port_of_the_same_host_is_refused(server, site):
    path = f"/ws/display/{site.display_token}/"
    port = int(server.url.rsplit(":", 1)[1])
    for origin in (f"http://127.0.0.1:{port + 1}", "http://127.0.0.1", f"https://127.0.0.1:{port}"):
        with pytest.raises(InvalidStatus) as refused:
            connect(server.ws_url + path, origin=origin, open_timeout=TIMEOUT)
        assert refused.value.response.status_code == 403
    # The page's own origin, port included, is accepted.
    with connect(server.ws_url + path, origin=server.url, open_timeout=TIMEOUT) as ws:
        assert json.loads(ws.recv(timeout=TIMEOUT))["type"] == "snapshot"


# --- what still works ---------------------------------------------------------------------------


class Browser:
    """Just enough of a browser: cookies, the CSRF token, form posts, no redirects followed."""

    def __init__(self, server, cookie: dict | None = None):
        self.server = server
        self.cookies = {cookie["name"]: cookie["value"]} if cookie else {}

    def request(self, method: str, path: str, body: bytes = b"", content_type: str = ""):
        headers = []
        if self.cookies:
            headers.append("Cookie: " + "; ".join(f"{k}={v}" for k, v in self.cookies.items()))
        if method == "POST":
            headers += [f"Content-Type: {content_type}", f"Content-Length: {len(body)}"]
        headers.append("Connection: close")
        with closing(open_connection(self.server)) as sock:
            sock.sendall(head(method, path, *headers) + body)
            response = read_until_closed(sock)
        header_block, _, content = response.partition(b"\r\n\r\n")
        for line in header_block.decode("latin1").split("\r\n")[1:]:
            name, _, value = line.partition(": ")
            if name.lower() == "set-cookie":
                for key, morsel in SimpleCookie(value).items():
                    self.cookies[key] = morsel.value
        return status_of(response), header_block.decode("latin1"), content.decode()

    def token(self, path: str) -> str:
        status, _headers, page = self.request("GET", path)
        assert status == 200, page[:500]
        return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)

    def post_form(self, path: str, data: dict):
        from urllib.parse import urlencode

        data = {**data, "csrfmiddlewaretoken": self.token(path)}
        body = urlencode(data, doseq=True).encode()
        return self.request("POST", path, body, "application/x-www-form-urlencoded")

    def post_multipart(self, path: str, data: dict):
        data = {**data, "csrfmiddlewaretoken": self.token(path)}
        return self.request("POST", path, encode_multipart(BOUNDARY, data), MULTIPART_CONTENT)


def test_signing_in_checking_in_and_uploading_a_scanned_consent_still_work(
    server, site, front_desk, privacy_officer
):
    front_desk.set_password(PASSWORD)
    front_desk.save()
    browser = Browser(server)
    status, headers, _ = browser.post_form(
        "/login/", {"username": front_desk.username, "password": PASSWORD}
    )
    assert status == 302, headers
    status, headers, _ = browser.post_form(
        reverse("queues:check_in"), {"nonce": str(uuid.uuid4()), "name": "Marcus Lee"}
    )
    assert status == 302, headers
    assert Arrival.objects.filter(site=site, person__name="Marcus Lee").exists()

    person = PersonFactory(site=site, name="Maria Lopez")
    provider = recipient_add(
        site=site, by=privacy_officer, organisation="Eastside Clinic", category="treatment_provider"
    )
    today = timezone.localdate(timezone.now(), site.tz)
    scan = b"%PDF-1.4\n" + b"0" * (3 * 1024 * 1024)  # larger than an ordinary form may be
    officer = Browser(server, session_cookie_for(privacy_officer))
    path = reverse("releases:consent_new", args=[person.pk])

    class Upload:
        name = "signed.pdf"

        def read(self):
            return scan

    status, headers, page = officer.post_multipart(
        path,
        {
            "recipients": [provider.pk],
            "purposes": "Confirm attendance",
            "scope": [Scope.ATTENDANCE],
            "revocation_statement": "You can revoke it.",
            "signed_by": "person",
            "scanned_form": Upload(),
            "signed_on": today.isoformat(),
            "expires_on": (today + timedelta(days=90)).isoformat(),
            "nonce": str(uuid.uuid4()),
        },
    )
    assert status == 302, page[:2000]
    consent = Consent.objects.get(person=person)
    assert (server.media / consent.scanned_form.name).read_bytes() == scan


def test_the_consent_page_takes_no_file_from_someone_not_signed_in(server, site):
    person = PersonFactory(site=site, name="Maria Lopez")
    body = encode_multipart(BOUNDARY, {"signed_on": "2026-01-01"})
    status, _headers, _ = Browser(server).request(
        "POST", reverse("releases:consent_new", args=[person.pk]), body, MULTIPART_CONTENT
    )
    assert status == 415
    assert not Consent.objects.exists()


def test_a_signed_in_form_may_be_larger_than_an_anonymous_one(server, site, front_desk):
    # A visit note of 20,000 characters is more than the anonymous limit allows; signed in, it
    # is read (here the check-in page refuses the name as too long, with its own message).
    browser = Browser(server, session_cookie_for(front_desk))
    status, _headers, _page = browser.post_form(
        reverse("queues:check_in"), {"nonce": str(uuid.uuid4()), "name": "é" * 20_000}
    )
    assert status == 200  # the form again, with its message: not the edge's 413
    assert not Arrival.objects.exists()


# --- whose forwarded headers are believed -------------------------------------------------------


def fail_sign_in(server, username: str, forwarded_for: str) -> int:
    browser = Browser(server)
    token = browser.token("/login/")
    body = f"username={username}&password=wrong&csrfmiddlewaretoken={token}".encode()
    cookies = "; ".join(f"{k}={v}" for k, v in browser.cookies.items())
    with closing(open_connection(server)) as sock:
        sock.sendall(
            head(
                "POST",
                "/login/",
                f"Cookie: {cookies}",
                f"X-Forwarded-For: {forwarded_for}",
                "Content-Type: application/x-www-form-urlencoded",
                f"Content-Length: {len(body)}",
                "Connection: close",
            )
            + body
        )
        return status_of(read_until_closed(sock))


@pytest.mark.parametrize(
    ("trusted", "locked_from"),
    [("192.0.2.1", "127.0.0.1"), ("127.0.0.1", "203.0.113.6")],
    ids=["untrusted-client", "trusted-proxy"],
)
def test_x_forwarded_for_is_believed_only_from_the_trusted_proxy(
    tmp_path, site, front_desk, trusted, locked_from
):
    served = start_asgi_server(tmp_path, env={"FORWARDED_ALLOW_IPS": trusted})
    try:
        # Each failed sign-in claims another address. From a client that is not the proxy the
        # claims are ignored and the failures add up against its real address.
        statuses = [
            fail_sign_in(served, front_desk.username, f"203.0.113.{n}")
            for n in range(1, settings.AXES_FAILURE_LIMIT + 2)
        ]
    finally:
        stop_asgi_server(served)
    locks = LockoutEvent.objects.filter(kind=LockoutEvent.Kind.LOCKED)
    if locked_from == "127.0.0.1":
        assert statuses[-1] == 429
        assert list(locks.values_list("ip_address", flat=True)) == ["127.0.0.1"]
    else:
        assert 429 not in statuses
        assert not locks.exists()


def production_server_env() -> dict[str, str]:
    env = {
        "DEBUG": "0",
        "SECURE_SSL_REDIRECT": "1",
        # A setting older deployments have in their .env: it must not reopen the door.
        "SECURE_PROXY_SSL_HEADER": "1",
    }
    if _test_database_url().startswith("sqlite"):
        env["SQLITE_IN_PRODUCTION"] = "single-small-clinic"
    return env


@pytest.mark.parametrize(
    ("trusted", "https"), [("192.0.2.1", False), ("127.0.0.1", True)], ids=["untrusted", "proxy"]
)
def test_x_forwarded_proto_is_believed_only_from_the_trusted_proxy(tmp_path, trusted, https):
    served = start_asgi_server(
        tmp_path, env={**production_server_env(), "FORWARDED_ALLOW_IPS": trusted}
    )
    try:
        answers = {}
        for path in ("/healthz/", "/queue/"):
            with closing(open_connection(served)) as sock:
                sock.sendall(head("GET", path, "X-Forwarded-Proto: https", "Connection: close"))
                answers[path] = read_until_closed(sock).decode("latin1")
    finally:
        stop_asgi_server(served)
    hsts = "strict-transport-security" in answers["/healthz/"].lower()
    redirected = status_of(answers["/queue/"].encode()) == 301
    # Over HTTPS (as the proxy says) HSTS is sent and nothing is redirected; over plain HTTP
    # (a client's claim ignored) no HSTS, and the page redirects to HTTPS.
    assert (hsts, redirected) == (https, not https)


def test_the_launcher_refuses_to_trust_everyone_in_production():
    env = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "clinic.settings",
        "DEBUG": "0",
        "SECRET_KEY": "x" * 60,
        "ALLOWED_HOSTS": "clinic.example.org",
        "SQLITE_IN_PRODUCTION": "single-small-clinic",
        "FORWARDED_ALLOW_IPS": "*",
    }
    result = subprocess.run(
        [sys.executable, "-m", "clinic.serve", "--port", "0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "FORWARDED_ALLOW_IPS=*" in result.stderr
    assert "Set it to the reverse proxy's address" in result.stderr
