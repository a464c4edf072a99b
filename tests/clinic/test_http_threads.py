"""Pages under ASGI run on HTTP_THREADS long-lived threads (clinic/http_threads.py): at most
that many at once, the rest in turn, and each thread's database connection kept between
requests, so a server process holds a bounded number of connections however many requests
it answers.

Every wait here is a deadline that only a broken server reaches; none measures speed.
"""

import asyncio
import threading
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from asgiref.sync import sync_to_async
from django.db import connection
from django.urls import reverse

from clinic.http_threads import ThreadsASGIHandler
from tests.conftest import session_cookie_for, start_asgi_server, stop_asgi_server

THREADS = 3


def run_requests(handler: ThreadsASGIHandler, count: int) -> tuple[int, set[int]]:
    """Send `count` requests at once to `handler`, whose Django part is replaced by one that
    holds its thread a moment; the most that ran at once, and the threads they ran on."""
    running, most, threads = 0, 0, set()

    def work():
        threads.add(threading.get_ident())

    async def handle(scope, receive, send):
        nonlocal running, most
        running += 1
        most = max(most, running)
        await sync_to_async(work)()
        await asyncio.sleep(0.01)
        await sync_to_async(work)()
        running -= 1

    handler.handle = handle

    async def main():
        await asyncio.gather(*(handler({"type": "http"}, None, None) for _ in range(count)))

    asyncio.run(main())
    return most, threads


def test_requests_share_a_fixed_set_of_threads_and_take_turns():
    handler = ThreadsASGIHandler(THREADS)

    most, threads = run_requests(handler, 20)
    again = run_requests(handler, 20)[1]

    assert most == THREADS
    assert len(threads) == THREADS
    assert again == threads  # the same threads, request after request


def test_a_request_that_gives_up_waiting_does_not_keep_a_thread():
    handler = ThreadsASGIHandler(1)

    async def slow(scope, receive, send):
        await asyncio.sleep(0.05)

    handler.handle = slow

    async def main():
        first = asyncio.create_task(handler({"type": "http"}, None, None))
        waiting = asyncio.create_task(handler({"type": "http"}, None, None))
        await asyncio.sleep(0.01)
        waiting.cancel()  # its client went away before its turn
        await first
        await asyncio.wait_for(handler({"type": "http"}, None, None), timeout=5)

    asyncio.run(main())
    assert len(handler._idle) == 1


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
