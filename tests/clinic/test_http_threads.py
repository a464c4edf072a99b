"""Pages under ASGI run their synchronous code on HTTP_THREADS long-lived threads
(clinic/http_threads.py): at most that many at once, the rest in turn, and each thread's
database connection kept between requests, so a server process holds a bounded number of
connections however many requests it answers.

Every wait here is a deadline that only a broken server reaches; none measures speed.
"""

import asyncio
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from asgiref.sync import AsyncToSync, sync_to_async
from django.db import connection
from django.urls import reverse

from clinic.http_threads import ThreadsASGIHandler
from tests.conftest import session_cookie_for, start_asgi_server, stop_asgi_server

THREADS = 3


def run(handler: ThreadsASGIHandler, handle, scopes: list[dict]) -> None:
    """Send a request for each of `scopes` at once to `handler`, with `handle` in place of
    Django's part."""
    handler.handle = handle

    async def main():
        await asyncio.gather(*(handler(scope, None, None) for scope in scopes))

    asyncio.run(main())


def test_synchronous_code_runs_on_a_fixed_set_of_threads_a_few_at_a_time():
    handler = ThreadsASGIHandler(THREADS)
    lock, running, most, threads = threading.Lock(), [0], [0], set()

    def work():
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
            threads.add(threading.get_ident())
        time.sleep(0.01)
        with lock:
            running[0] -= 1

    async def handle(scope, receive, send):
        await sync_to_async(work)()
        await sync_to_async(work)()

    run(handler, handle, [{"type": "http"}] * 20)
    first = set(threads)
    run(handler, handle, [{"type": "http"}] * 20)

    assert most[0] == THREADS
    assert len(first) == THREADS
    assert threads == first  # the same threads, request after request


def test_a_slow_client_holds_no_thread():
    """A body still arriving (or a response still being sent) waits without a thread: with
    one thread, another request's code runs meanwhile."""
    handler = ThreadsASGIHandler(1)
    served = []

    async def handle(scope, receive, send):
        if scope["slow"]:
            await asyncio.sleep(0.5)  # its body trickles in
        await sync_to_async(served.append)(scope["slow"])

    run(handler, handle, [{"type": "http", "slow": True}, {"type": "http", "slow": False}])

    assert served == [False, True]


@pytest.mark.django_db(transaction=True)
def test_each_step_first_replaces_its_threads_connection_when_too_old():
    handler = ThreadsASGIHandler(1)
    seen = []

    def work(expire: bool):
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        seen.append(connection.connection)
        if expire:
            connection.close_at = time.monotonic() - 1  # as CONN_MAX_AGE would
        return threading.get_ident()

    async def handle(scope, receive, send):
        scope["thread"] = await sync_to_async(work)(scope["expire"])

    scopes = [{"type": "http", "expire": expire} for expire in (False, True, False)]
    for scope in scopes:
        run(handler, handle, [scope])
    handler.threads.submit(lambda: connection.close()).result()

    assert len({scope["thread"] for scope in scopes}) == 1
    assert seen[1] is seen[0]  # kept
    assert seen[2] is not seen[1]  # too old: closed before the next step, a new one opened


@pytest.mark.django_db(transaction=True)
def test_a_page_takes_three_steps_on_the_pool_its_middleware_and_view_one_of_them(monkeypatch):
    """The request_started signal, the middleware and view, closing the response: three
    steps, and none of them comes back to the event loop midway (Django's own chain for ASGI
    sends each synchronous middleware hook to a thread and back on its own)."""
    handler = ThreadsASGIHandler(2)
    steps, sent, back_to_the_loop = [], [], []
    submit = handler.threads.submit
    to_the_loop = AsyncToSync.__call__

    def counted_back(self, *args, **kwargs):
        back_to_the_loop.append(self)
        return to_the_loop(self, *args, **kwargs)

    monkeypatch.setattr(AsyncToSync, "__call__", counted_back)

    def counted(fn, /, *args, **kwargs):
        steps.append(fn)
        return submit(fn, *args, **kwargs)

    handler.threads.submit = counted
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": reverse("login"),
        "raw_path": reverse("login").encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    incoming = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive():
        if incoming:
            return incoming.pop()
        await asyncio.Event().wait()  # the client stays connected

    async def send(message):
        sent.append(message)

    asyncio.run(handler(scope, receive, send))
    handler.threads.shutdown()

    assert sent[0]["status"] == 200
    assert b"password" in b"".join(m.get("body", b"") for m in sent[1:])
    assert len(steps) == 3
    assert back_to_the_loop == []


def test_only_http_reaches_django():
    with pytest.raises(ValueError, match="websocket"):
        asyncio.run(ThreadsASGIHandler(1)({"type": "websocket"}, None, None))


def server_connections() -> set[int]:
    """The server processes' connections to the test database (every one but the test's)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return {pid for (pid,) in cursor.fetchall()}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_server_keeps_at_most_one_connection_per_thread_however_many_requests(
    tmp_path, site, clinician
):
    cookie = session_cookie_for(clinician)
    server = start_asgi_server(tmp_path, env={"HTTP_THREADS": str(THREADS)})
    url = server.url + reverse("queues:board")

    headers = {"Cookie": f"{cookie['name']}={cookie['value']}"}

    def get(_):
        request = urllib.request.Request(url, headers=headers)  # noqa: S310 (the test's server)
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status

    try:
        with ThreadPoolExecutor(max_workers=12) as clients:
            assert set(clients.map(get, range(60))) == {200}
            first = server_connections()
            assert set(clients.map(get, range(60))) == {200}
            second = server_connections()
    finally:
        stop_asgi_server(server)

    assert 1 <= len(first) <= THREADS
    assert second == first  # kept and used again, never opened anew
