"""What the history of changes costs (clinic/history.py): bulk loads and single writes, with
its triggers and without, on PostgreSQL.

In one database, alternately without and with the history triggers (taken away and put back
here; the history table is emptied with TRUNCATE, as its owner, before each round):

  delete     deleting the synthetic sites' earlier rows (reports.synthetic.delete_synthetic:
             plain DELETE statements of whole tables' worth of rows)
  generate   `generate_synthetic --people N --days D` (COPY of people, arrivals, visits,
             participants, services delivered and medication events, in one transaction)
  updates    1,000 single-row UPDATEs of a person's name, each its own transaction, as the
             person page's form writes them

and prints the median of each, the history rows written and the history table's size. The
triggers are always put back at the end.

    .venv/bin/python bench/history_cost.py \\
        --database-url postgres://postgres@127.0.0.1:5432/threshold_bench \\
        --people 2000 --days 400 --rounds 2
"""

import argparse
import os
import statistics
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/threshold_bench"
DEFAULT_END = "2026-10-31"


def set_triggers(on: bool) -> None:
    from django.db import connection

    from clinic import history

    with connection.cursor() as cursor:
        for statement in history.postgres_drop(history.AUDITED):
            cursor.execute(statement)
        if on:
            cursor.execute("SELECT current_schema()")
            schema = cursor.fetchone()[0]
            for statement in history.postgres_create(
                history.AUDITED, schema=schema, opaque=history.OPAQUE
            ):
                cursor.execute(statement)


def history_size() -> tuple[int, int]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), pg_total_relation_size('clinic_changehistory') "
            "FROM clinic_changehistory"
        )
        return cursor.fetchone()


def one_round(*, on: bool, people: int, days: int, end: date) -> dict:
    from django.db import connection

    from clinic.history import history_actor
    from clinic.models import Person
    from reports.synthetic import delete_synthetic, generate

    set_triggers(on)
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE clinic_changehistory")
    result = {}
    with history_actor(None, via="bench"):
        started = time.perf_counter()
        delete_synthetic()
        result["delete"] = time.perf_counter() - started
        rows_after_delete, _size = history_size()
        started = time.perf_counter()
        generate(people=people, days=days, end=end, seed=1, force=True)
        result["generate"] = time.perf_counter() - started
        ids = list(
            Person.objects.filter(site__slug__startswith="synthetic-").values_list("pk", flat=True)[
                :1000
            ]
        )
        started = time.perf_counter()
        for i, pk in enumerate(ids):
            Person.objects.filter(pk=pk).update(name=f"Renamed {i}")
        result["updates"] = time.perf_counter() - started
    result["rows"], result["bytes"] = history_size()
    result["rows from delete"] = rows_after_delete
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL") or DEFAULT_URL)
    parser.add_argument("--people", type=int, default=2000)
    parser.add_argument("--days", type=int, default=400)
    parser.add_argument("--end", default=DEFAULT_END)
    parser.add_argument("--rounds", type=int, default=2, help="Rounds of each (alternating).")
    args = parser.parse_args()

    os.environ["DATABASE_URL"] = args.database_url
    os.environ.setdefault("DEBUG", "1")
    os.environ["DJANGO_SETTINGS_MODULE"] = "clinic.settings"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    if connection.vendor != "postgresql":
        sys.exit("The benchmark needs PostgreSQL (--database-url postgres://…).")
    call_command("migrate", verbosity=0)
    end = date.fromisoformat(args.end)
    results = {False: [], True: []}
    try:
        # A first load, not counted, so every counted round deletes the same rows first.
        one_round(on=False, people=args.people, days=args.days, end=end)
        for _ in range(args.rounds):
            for on in (False, True):
                r = one_round(on=on, people=args.people, days=args.days, end=end)
                results[on].append(r)
                print(
                    f"  history {'on ' if on else 'off'}: delete {r['delete']:.1f} s, "
                    f"generate {r['generate']:.1f} s, 1000 updates {r['updates']:.2f} s, "
                    f"{r['rows']} history rows ({r['rows from delete']} from the delete), "
                    f"{r['bytes'] / 2**20:.0f} MiB",
                    flush=True,
                )
    finally:
        set_triggers(True)
    print(f"\n--people {args.people} --days {args.days}, median of {args.rounds} rounds:")
    for key in ("delete", "generate", "updates"):
        off = statistics.median(r[key] for r in results[False])
        on = statistics.median(r[key] for r in results[True])
        print(f"  {key:<9} without {off:7.2f} s   with {on:7.2f} s   ({on / off:.2f} times)")
    last = results[True][-1]
    print(
        f"  history rows written per round: {last['rows']}, table and indexes "
        f"{last['bytes'] / 2**20:.0f} MiB"
    )


if __name__ == "__main__":
    main()
