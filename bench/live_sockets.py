"""Queries and time per change with N live boards open in one process.

Opens N board sockets (one signed-in clinician) through the whole ASGI stack with Channels'
WebsocketCommunicator on the in-memory layer, checks someone in, and measures until every
socket holds the new version: the queries run (by every thread) and the wall time. Runs on a
temporary SQLite database (DEBUG=1 settings), with `--waiting` people already in the queue.

    .venv/bin/python bench/live_sockets.py [--sockets 1 20 50] [--runs 10] [--waiting 30]
"""

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sockets", type=int, nargs="+", default=[1, 20, 50])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--waiting", type=int, default=30)
    args = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix="threshold-bench-")
    os.environ.update(
        DJANGO_SETTINGS_MODULE="clinic.settings",
        DEBUG="1",
        SQLITE_PATH=str(Path(workdir) / "db.sqlite3"),
        LOG_LEVEL="ERROR",
        REDIS_URL="",
    )
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from asgiref.sync import sync_to_async
    from channels.testing import WebsocketCommunicator
    from django.conf import settings
    from django.core.management import call_command
    from django.db.backends.utils import CursorWrapper

    from clinic import roles
    from clinic.asgi import application
    from clinic.models import Discipline
    from tests.conftest import session_cookie_for
    from tests.factories import SiteFactory, check_in, make_staff

    call_command("migrate", verbosity=0)
    settings.ALLOWED_HOSTS = ["127.0.0.1", "testserver"]
    site = SiteFactory(name="Bench", slug="bench", ticket_prefix="B")
    desk = make_staff(site=site, roles=[roles.FRONT_DESK], username="bench-desk")
    nurse = make_staff(
        site=site, roles=[roles.CLINICIAN], username="bench-nurse", discipline=Discipline.NURSE
    )
    for i in range(args.waiting):
        check_in(site=site, by=desk, name=f"Waiting {i}")
    cookie = session_cookie_for(nurse)
    headers = [
        (b"origin", b"http://127.0.0.1"),
        (b"host", b"127.0.0.1"),
        (b"cookie", f"{cookie['name']}={cookie['value']}".encode()),
    ]

    queries = [0]
    lock = threading.Lock()
    original = CursorWrapper._execute

    def counted(cursor, *a, **k):
        with lock:
            queries[0] += 1
        return original(cursor, *a, **k)

    CursorWrapper._execute = counted
    a_check_in = sync_to_async(check_in, thread_sensitive=True)
    counter = iter(range(10**6))

    async def one_size(n: int):
        boards = [WebsocketCommunicator(application, "/ws/queue/bench/", headers) for _ in range(n)]
        for ws in boards:
            assert (await ws.connect(timeout=30))[0]
            await ws.receive_json_from(timeout=30)
        times, counts, sizes = [], [], []
        for _ in range(args.runs):
            queries[0] = 0
            start = time.perf_counter()
            await a_check_in(site=site, by=desk, name=f"Bench {next(counter)}")
            results = await asyncio.gather(*(ws.receive_json_from(timeout=30) for ws in boards))
            times.append((time.perf_counter() - start) * 1000)
            counts.append(queries[0])
            sizes.append(len(results[0]["html"]))
        for ws in boards:
            await ws.disconnect()
        return times, counts, sizes

    print(f"one check-in until every board holds it ({args.waiting}+ waiting, {args.runs} runs)")
    for n in args.sockets:
        times, counts, sizes = asyncio.run(one_size(n))
        print(
            f"  {n:4} sockets: median {statistics.median(times):7.1f} ms, "
            f"max {max(times):7.1f} ms, queries {min(counts)}-{max(counts)} "
            f"(check-in included), snapshot {statistics.median(sizes) / 1024:.0f} KB",
            flush=True,
        )


if __name__ == "__main__":
    main()
