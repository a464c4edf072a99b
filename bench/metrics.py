"""How long the director dashboard's numbers take at volume, against a plain table scan.

Fills a dedicated PostgreSQL database with synthetic history (`manage.py generate_synthetic`,
by default 100,000 people and about 1,000,000 arrivals over three years), then times, in the
same run:

  dashboard  everything the dashboard computes for a one-year period over all sites:
             measures() (M2 … M18, M10's count included), weekly(), retention_curve(),
             by_site() and by_service(), inside measures.shared() as the view calls them
             (each function alone is timed too, for reference);
  scan       SELECT count(*) FROM queue_arrival.

and prints both (median of --runs after one warm-up run) and their ratio. The database is
created if missing and migrated; data already generated with the same parameters is reused.

The measures read summaries kept up to date on write (reports/summaries.py); generating the
data rebuilds them. For what keeping them costs, it also times bringing them up to date
after a busy day: 1,000 people's records and every site's day marked as changed.

    .venv/bin/python bench/metrics.py
    .venv/bin/python bench/metrics.py \\
        --database-url postgres://postgres@127.0.0.1:5432/threshold_bench \\
        --people 100000 --days 1095 --runs 5
"""

import argparse
import os
import statistics
import sys
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/threshold_bench"
# A fixed last day keeps the data (and so the numbers) identical from run to run.
DEFAULT_END = "2026-10-31"
TARGET_SECONDS = 2.0


def ensure_database(url: str) -> None:
    import dj_database_url
    import psycopg
    from psycopg import sql

    settings = dj_database_url.parse(url)
    if not settings["ENGINE"].endswith("postgresql"):
        sys.exit("The benchmark needs PostgreSQL (--database-url postgres://…).")
    admin = psycopg.connect(
        dbname="postgres",
        user=settings.get("USER") or None,
        password=settings.get("PASSWORD") or None,
        host=settings.get("HOST") or None,
        port=settings.get("PORT") or None,
        autocommit=True,
    )
    with admin:
        exists = admin.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [settings["NAME"]]
        ).fetchone()
        if not exists:
            print(f"Creating database {settings['NAME']}")
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(settings["NAME"])))


def prepare_data(people: int, days: int, end: str) -> None:
    """Generate the synthetic history unless this database already holds the same one."""
    from django.core.management import call_command
    from django.db import connection

    from reports import summaries

    wanted = f"people={people} days={days} end={end} seed=1"
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS bench_metrics_data (params text NOT NULL)")
        cursor.execute("SELECT params FROM bench_metrics_data")
        row = cursor.fetchone()
    if row and row[0] == wanted:
        print(f"Reusing the synthetic data already here ({wanted})")
        # As after the end-of-day close: summaries up to date (data from before they
        # existed, or the busy-day refreshes of an earlier run) and tidied.
        started = time.perf_counter()
        taken = summaries.refresh()
        summaries.tidy()
        print(
            f"Report summaries brought up to date ({taken} marks) and tidied in "
            f"{time.perf_counter() - started:.0f} s"
        )
        return
    print(f"Generating synthetic data ({wanted}); this takes a few minutes")
    started = time.perf_counter()
    call_command(
        "generate_synthetic",
        people=people,
        days=days,
        end=date.fromisoformat(end),
        seed=1,
        replace=True,
        force=True,
    )
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
        cursor.execute("DELETE FROM bench_metrics_data")
        cursor.execute("INSERT INTO bench_metrics_data (params) VALUES (%s)", [wanted])
    print(f"Generated in {time.perf_counter() - started:.0f} s")


def timed(fn, runs: int) -> tuple[float, list[float]]:
    fn()  # warm-up: caches and connection, as on a server that has been up a while
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL") or DEFAULT_URL)
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=3 * 365)
    parser.add_argument("--end", default=DEFAULT_END, help="Last day of the synthetic data.")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    ensure_database(args.database_url)
    os.environ["DATABASE_URL"] = args.database_url
    os.environ.setdefault("DEBUG", "1")
    os.environ["DJANGO_SETTINGS_MODULE"] = "clinic.settings"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from clinic.models import Site
    from reports import measures as engine
    from reports import summaries

    call_command("migrate", verbosity=0)
    prepare_data(args.people, args.days, args.end)

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM clinic_person")
        n_people = cursor.fetchone()[0]
        cursor.execute("SELECT count(*), min(day), max(day) FROM queue_arrival")
        n_arrivals, first_day, last_day = cursor.fetchone()
        cursor.execute("SELECT count(*) FROM visits_visit")
        n_visits = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM visits_medicationevent")
        n_meds = cursor.fetchone()[0]
    print(
        f"Data: {n_people:,} people, {n_arrivals:,} arrivals, {n_visits:,} visits, "
        f"{n_meds:,} medication events, {first_day} to {last_day}"
    )

    period = engine.Period(last_day - timedelta(days=364), last_day)
    site_ids = list(Site.objects.values_list("pk", flat=True))

    def each_alone():
        engine.measures(period, site_ids)
        engine.weekly(period, site_ids)
        engine.retention_curve(period, site_ids)
        engine.by_site(period, site_ids)
        engine.by_service(period, site_ids)

    def dashboard():
        # As the dashboard view calls them: inside shared(), one set of temporary tables.
        with engine.shared():
            each_alone()

    def scan():
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM queue_arrival")
            cursor.fetchone()

    parts = {
        "measures": lambda: engine.measures(period, site_ids),
        "weekly": lambda: engine.weekly(period, site_ids),
        "retention_curve": lambda: engine.retention_curve(period, site_ids),
        "by_site": lambda: engine.by_site(period, site_ids),
        "by_service": lambda: engine.by_service(period, site_ids),
    }
    print(f"Period {period.start} to {period.end}, {len(site_ids)} sites, {args.runs} runs each")
    for name, fn in parts.items():
        median, _ = timed(fn, max(1, args.runs // 2))
        print(f"  {name:<16} {median:.3f} s")
    alone, _ = timed(each_alone, max(1, args.runs // 2))
    print(f"  {'all five alone':<16} {alone:.3f} s (without shared())")
    dash, dash_runs = timed(dashboard, args.runs)
    count, count_runs = timed(scan, args.runs)

    def busy_day():
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO reports_stale (person_id) "
                "SELECT id FROM clinic_person ORDER BY id DESC LIMIT 1000"
            )
            cursor.execute(
                "INSERT INTO reports_stale (site_id, day) SELECT id, %s FROM clinic_site",
                [last_day],
            )
        started = time.perf_counter()
        summaries.refresh()
        return time.perf_counter() - started

    refreshes = [busy_day() for _ in range(max(1, args.runs // 2))]
    print(
        f"  {'refresh':<16} {statistics.median(refreshes):.3f} s "
        "(summaries after a busy day: 1,000 people and every site's day changed)"
    )
    print(f"dashboard: {dash:.3f} s (runs: {', '.join(f'{s:.3f}' for s in dash_runs)})")
    print(f"count(*):  {count:.3f} s (runs: {', '.join(f'{s:.3f}' for s in count_runs)})")
    print(f"ratio:     {dash / count:.1f}x a plain count(*) over {n_arrivals:,} arrivals")
    verdict = "within" if dash < TARGET_SECONDS else "OVER"
    print(f"target:    {verdict} {TARGET_SECONDS:.0f} s for the whole dashboard")


if __name__ == "__main__":
    main()
