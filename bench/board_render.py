"""What the staff board costs to serve as the queue grows: `GET /queue/board/` and its live
fragment (`GET /queue/board/live/`, the polling fallback, which renders what the websocket
sends) through Django's test client on PostgreSQL, every middleware and the session included.

For each size (30, 100, 300 and 1,000 waiting by default) the script makes a site of its own,
`bench-board-<N>`, and checks N people in through the check-in service, as the front desk
does: arrivals spread over the last three hours, one in ten urgent with a reason, one in
seven stepped out, one in five with an appointment, one in four with pronouns; plus the same
eight people called or with staff and ten finished at every size. The sites are kept, so a
later run (another commit) measures the same queue; use a scratch database.

Signed in as a clinician (who sees every row button), it times each page --runs times after
--warmup requests, twice: after a change (the queue's version moved before each request, so
the board is built again, as for the first screen to ask after a check-in) and at a version
already built in this process (every other screen before the next change). It prints the
median, the HTML size, the number of SQL queries, the time
per extra person between sizes and overall from the smallest to the largest size. Settings as
in production (DEBUG off), the in-memory channel layer. Next to each median time, the median
CPU time of this process (Django's side, without PostgreSQL's): on a busy machine the time
a request takes grows with the load, its CPU time much less.

    .venv/bin/python bench/board_render.py \\
        --database-url postgres://threshold_owner@127.0.0.1:5432/threshold_bench [--runs 15]
"""

import argparse
import itertools
import os
import secrets
import statistics
import sys
import time
import uuid
import warnings
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/threshold_bench"
IN_PROGRESS = 8
FINISHED = 10


def fill_site(size: int):
    """The site `bench-board-<size>` with `size` waiting (made once, then reused)."""
    from django.db import transaction
    from django.utils import timezone

    from clinic import roles
    from clinic.models import Room, Service, Site
    from queues import services
    from queues.models import ACTIVE_STATES, State
    from tests.factories import make_staff

    slug = f"bench-board-{size}"
    site = Site.objects.filter(slug=slug).first()
    waiting_states = (State.WAITING, State.STEPPED_OUT)
    if site is not None:
        waiting = site.arrivals.filter(state__in=waiting_states).count()
        active = site.arrivals.filter(state__in=ACTIVE_STATES).count()
        if waiting == size and active == size + IN_PROGRESS:
            return site, site.memberships.get(user__username=f"{slug}-clinician").user
        sys.exit(f"Site {slug} exists with another queue: use a fresh database.")

    site = Site.objects.create(
        name=f"Bench {size}", slug=slug, timezone="America/Chicago", ticket_prefix="B"
    )
    kinds = [Service.objects.create(site=site, name=n) for n in ("Wound care", "Primary care")]
    rooms = [Room.objects.create(site=site, name=f"Room {n}") for n in (1, 2, 3)]
    desk = make_staff(site=site, roles=[roles.FRONT_DESK], username=f"{slug}-desk")
    clinician = make_staff(
        site=site, roles=[roles.CLINICIAN, roles.FRONT_DESK], username=f"{slug}-clinician"
    )
    now = timezone.now()
    total = size + IN_PROGRESS + FINISHED
    print(f"  checking {total} people in at {slug}…", flush=True)
    for i in range(total):
        with transaction.atomic():
            arrival = services.arrival_check_in(
                site=site,
                by=desk,
                nonce=uuid.uuid4(),
                name=f"Bench Person {size}-{i:04d}",
                pronouns="they/them" if i % 4 == 0 else "",
                service=kinds[i % 2] if i % 3 else None,
                urgent=i % 10 == 0,
                urgent_reason="Chest pain" if i % 10 == 0 else "",
                appointment_at=now.replace(second=0, microsecond=0) if i % 5 == 0 else None,
                now=now - timedelta(seconds=(total - i) * 10800 // total),
            )
            if i >= size:  # called, with staff, then finished
                arrival = services.arrival_call(
                    arrival=arrival, by=clinician, revision=arrival.revision, room=rooms[i % 3]
                )
                if i >= size + IN_PROGRESS // 2:
                    arrival = services.arrival_start(
                        arrival=arrival, by=clinician, revision=arrival.revision
                    )
                if i >= size + IN_PROGRESS:
                    services.arrival_finish(
                        arrival=arrival, by=clinician, revision=arrival.revision
                    )
            elif i % 7 == 3:
                services.arrival_step_out(arrival=arrival, by=desk, revision=arrival.revision)
    return site, clinician


def measure(client, path: str, *, runs: int, warmup: int, before=lambda: None) -> dict:
    """The page's median time over `runs` requests; `before` runs ahead of each one, untimed."""
    from django.db import connection

    for _ in range(warmup):
        before()
        assert client.get(path, secure=True).status_code == 200
    # Counted by a wrapper: the query log is emptied when a request starts.
    queries = []
    before()
    with connection.execute_wrapper(
        lambda execute, sql, *a: queries.append(sql) or execute(sql, *a)
    ):
        response = client.get(path, secure=True)
    assert response.status_code == 200, response.status_code
    times, cpu = [], []
    for _ in range(runs):
        before()
        started, cpu_started = time.perf_counter(), time.process_time()
        client.get(path, secure=True)
        times.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - cpu_started) * 1000)
    return {
        "ms": statistics.median(times),
        "min": min(times),
        "cpu": statistics.median(cpu),
        "bytes": len(response.content),
        "queries": len(queries),
    }


def reference_ms() -> float:
    """A fixed piece of pure-Python work, timed (best of five): on a shared machine whose speed
    drifts, it tells how fast the machine was when the figures were taken."""
    best = float("inf")
    for _ in range(5):
        started = time.process_time()
        total = 0
        for i in range(1_000_000):
            total += i * i
        best = min(best, time.process_time() - started)
    return best * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL") or DEFAULT_URL)
    parser.add_argument(
        "--sizes", default="30,100,300,1000", help="People waiting, comma-separated."
    )
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))

    os.environ.update(
        DATABASE_URL=args.database_url,
        DATABASE_OWNER_URL="",
        REDIS_URL="",
        DJANGO_SETTINGS_MODULE="clinic.settings",
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(40),
        ALLOWED_HOSTS="testserver",
        LOG_LEVEL="ERROR",
    )
    sys.path.insert(0, str(ROOT))
    # WhiteNoise notes that static files were never collected: not what is measured here.
    warnings.filterwarnings("ignore", message="No directory at")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.test import Client

    from clinic.sites import SESSION_SITE_KEY
    from queues.services import queue_version_bump

    if connection.vendor != "postgresql":
        sys.exit("The benchmark needs PostgreSQL (--database-url postgres://…).")
    # Production collects static files with a manifest; here their plain names will do.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    call_command("migrate", verbosity=0)

    # Each page twice: after a change (the queue's version moved, so the board is built again,
    # as for the first screen to ask after a check-in) and at a version already built in this
    # process (every other screen that asks before the next change).
    pages = {
        "board, changed": ("/queue/board/", True),
        "board, built": ("/queue/board/", False),
        "live, changed": ("/queue/board/live/", True),
        "live, built": ("/queue/board/live/", False),
    }
    results: dict[str, dict[int, dict]] = {name: {} for name in pages}
    for size in sizes:
        site, clinician = fill_site(size)
        client = Client()
        client.force_login(clinician)
        session = client.session
        session[SESSION_SITE_KEY] = site.pk
        session.save()

        def change(site=site):
            with transaction.atomic():
                queue_version_bump(site.pk)

        for name, (path, changed) in pages.items():
            results[name][size] = r = measure(
                client,
                path,
                runs=args.runs,
                warmup=args.warmup,
                before=change if changed else lambda: None,
            )
            print(
                f"  {size:5} waiting  {name:15} median {r['ms']:7.1f} ms  (min {r['min']:6.1f}, "
                f"this process's CPU {r['cpu']:6.1f})  "
                f"{r['bytes'] / 1024:7.1f} KB  {r['queries']:3} queries",
                flush=True,
            )

    print(f"\nMedian of {args.runs} requests (ms), and the cost of each extra person waiting:")
    print(f"  (this machine: a reference loop took {reference_ms():.0f} ms; less is faster)")
    for name, by_size in results.items():
        for key, what in (("ms", "time"), ("cpu", "CPU")):
            row = "  ".join(f"{size}: {by_size[size][key]:.1f}" for size in sizes)
            print(f"  {name:15} {what:4} {row}")
            for low, high in itertools.pairwise(sizes):
                slope = (by_size[high][key] - by_size[low][key]) / (high - low)
                print(f"  {'':20}   {low} → {high}: {slope:.3f} ms per person")
            if len(sizes) > 1:
                low, high = sizes[0], sizes[-1]
                slope = (by_size[high][key] - by_size[low][key]) / (high - low)
                print(f"  {'':20}   {low} → {high} overall: {slope:.3f} ms per person")


if __name__ == "__main__":
    main()
