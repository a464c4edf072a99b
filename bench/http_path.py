"""What one check-in costs through HTTP, as served: CPU, database connections and statements.

Starts --processes server processes (`python -m clinic.serve`, as deployed) on one PostgreSQL
database, with HTTP_THREADS set to each value of --threads in turn, and sends --checkins
check-ins from --clients concurrent front desks (the check-in page first, for its CSRF token
and nonce, then the POST; no screen open). For each setting it prints check-ins per second,
the POST's p50 / p95, and what does not depend on how busy the machine is:

- the servers' CPU per check-in (their user + system time, from /proc);
- PostgreSQL sessions opened per check-in, and the most backends the servers held at once
  (pg_stat_database.sessions, PostgreSQL 14+, and pg_stat_activity);
- PostgreSQL's time executing statements per check-in (pg_stat_database.active_time).

Throughput on a shared machine is noisy: compare settings in one run, back to back. Uses the
helpers of bench/fanout.py; point it at a scratch database (it migrates it and leaves its
bench sites behind).

    DATABASE_URL=postgres://app@host/db DATABASE_OWNER_URL=postgres://owner@host/db \\
        .venv/bin/python bench/http_path.py [--threads 1,4,8] [--checkins 500]
"""

import argparse
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fanout

TICKS = os.sysconf("SC_CLK_TCK")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="4", help="HTTP_THREADS values (default 4)")
    parser.add_argument("--checkins", type=int, default=500, help="check-ins per setting")
    parser.add_argument("--clients", type=int, default=8, help="concurrent front desks (8)")
    parser.add_argument("--processes", type=int, default=2, help="server processes (2)")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""))
    parser.add_argument("--database-owner-url", default=os.environ.get("DATABASE_OWNER_URL", ""))
    args = parser.parse_args(argv)
    args.threads = [int(n) for n in args.threads.split(",")]
    if not args.database_url.startswith("postgres"):
        parser.error("needs PostgreSQL: --database-url or $DATABASE_URL")
    args.redis_url = ""
    return args


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def database_totals() -> tuple[int, float]:
    """Sessions ever opened on this database, and milliseconds spent executing statements."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT sessions, active_time FROM pg_stat_database WHERE datname = current_database()"
        )
        sessions, active = cursor.fetchone()
    return sessions, active


def backends(own: list[int]) -> int:
    """The backends on this database, less this script's own (`own`, and the asking one)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND pid <> ALL(%s)",
            [own],
        )
        return cursor.fetchone()[0]


def backend_pid() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def burst(args, servers, site: dict, names) -> dict:
    desks = [
        fanout.FrontDesk(servers[i % len(servers)].url, cookies)
        for i, cookies in enumerate(site["desks"])
    ]
    left = iter(range(args.checkins))
    lock = threading.Lock()
    times, errors, most = [], 0, 0
    done = threading.Event()

    def watch():
        from django.db import connection

        nonlocal most
        while not done.wait(0.05):
            most = max(most, backends(own))
        connection.close()

    def work(desk):
        nonlocal errors
        while True:
            with lock:
                if next(left, None) is None:
                    return
                name = next(names)
            start = time.perf_counter()
            try:
                desk.open_page()
                status = desk.check_in(name, str(uuid.uuid4()))
            except (OSError, RuntimeError):
                status = -1
            with lock:
                times.append((time.perf_counter() - start) * 1000)
                errors += status != 302

    own = [backend_pid()]
    watcher = threading.Thread(target=watch)
    watcher.start()
    cpu_before = sum(cpu_seconds(s.process.pid) for s in servers)
    sessions_before, active_before = database_totals()
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(desks)) as pool:
        list(pool.map(work, desks))
    elapsed = time.perf_counter() - start
    done.set()
    watcher.join()
    time.sleep(1.2)  # PostgreSQL reports its statistics at most once a second
    sessions_after, active_after = database_totals()
    cpu = sum(cpu_seconds(s.process.pid) for s in servers) - cpu_before
    for desk in desks:
        desk.close()
    n = args.checkins
    return {
        "rate": n / elapsed,
        "errors": errors,
        "p50": statistics.median(times),
        "p95": fanout.percentile(times, 95),
        "cpu": cpu * 1000 / n,
        "sessions": (sessions_after - sessions_before) / n,  # the watcher's 1 among them
        "active": (active_after - active_before) / n,
        "most": most,
    }


def main(argv=None) -> None:
    args = parse_args(argv)
    secret_key = secrets.token_urlsafe(50)
    fanout.django_setup(args, secret_key)
    names = fanout.person_names()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "clinic.settings",
        "DEBUG": "1",
        "SECRET_KEY": secret_key,
        "DATABASE_URL": args.database_url,
        "DATABASE_OWNER_URL": "",
        "REDIS_URL": "",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "PYTHONWARNINGS": "ignore",
        "LOG_LEVEL": "WARNING",
    }
    rows = []
    for threads in args.threads:
        site = fanout.prepare_site(
            f"http{threads}", waiting=30, desks=args.clients, screens=0, names=names
        )
        with ExitStack() as stack:
            workdir = Path(tempfile.mkdtemp(prefix="threshold-http-"))
            stack.callback(shutil.rmtree, workdir, ignore_errors=True)
            servers = [
                fanout.Server({**env, "HTTP_THREADS": str(threads)}, workdir)
                for _ in range(args.processes)
            ]
            for server in servers:
                stack.callback(server.stop)
            for server in servers:
                server.wait_ready()
            load = fanout.load_note()
            rows.append((threads, burst(args, servers, site, names), load))
            print(f"HTTP_THREADS={threads} done ({load}).", flush=True)
    print(
        f"\n{args.checkins} check-ins (page + POST) from {args.clients} front desks, "
        f"{args.processes} `python -m clinic.serve` processes (DEBUG=1), PostgreSQL.\n"
    )
    print(
        "| HTTP_THREADS | check-ins per second | errors | page + POST p50 / p95 (ms) "
        "| servers' CPU per check-in (ms) | PostgreSQL sessions per check-in "
        "| most server backends at once | PostgreSQL executing, per check-in (ms) | load at start |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for threads, r, load in rows:
        print(
            f"| {threads} | {r['rate']:.1f} | {r['errors']} | {r['p50']:.0f} / {r['p95']:.0f} "
            f"| {r['cpu']:.1f} | {r['sessions']:.2f} | {r['most']} | {r['active']:.2f} | {load} |"
        )


if __name__ == "__main__":
    main()
