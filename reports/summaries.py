"""The summaries the process measures read, and how they are kept up to date.

The measures (reports/measures.py) need, for a period, per person: the days with a
completed visit and the days before and after each, medication coverage with supplies
stacked, services and waits; and per site and day: arrivals by outcome. Working those out
from the visit, medication, service and queue tables at every page view costs seconds at a
million arrivals. So they are kept here, already worked out, period-independent:

    reports_visitday    (site, person, day): visits, more than one staff member?, medication
                        events, the person's previous and next visit day at the site
    reports_serviceday  (site, person, service, day): deliveries, the previous day the person
                        had that service there; person NULL: at anonymous contacts
    reports_visitwait   one row per person's visit that came through the queue: the wait
    reports_coveragerun a person's runs of medication coverage from one site's events
    reports_siteday     (site, day): arrivals by outcome, completed visits

How they stay true: triggers on the clinical tables (migration reports/0003) write, in the
same transaction as any change, what it made stale: a person, or a site's day. `refresh()`
takes those marks and rebuilds exactly those people's and days' summary rows from the
clinical tables, with the same SQL a full `rebuild()` uses, all in one transaction. Every
function in reports/measures.py refreshes before it reads, so a figure always reflects every
change committed before it was asked for. A person's rows are rebuilt whole (a person's
history is small), so the order in which changes arrived never matters.

Person-level rows are partitioned by site as well as person. A person belongs to one site and
their visits are recorded there (the check-in and visit services refuse anything else), so
this is the same as per person; if that ever did not hold, a site's figures would still use
that site's visits only, as before the summaries existed.

Concurrency: refreshes are serialised (an advisory lock on PostgreSQL; SQLite has one writer
at a time). Marks are taken and deleted in one statement, so a change committed while a
refresh runs leaves its mark for the next one.
"""

# ruff: noqa: S608 (fixed SQL only; nothing typed by a user reaches the text)

from django.db import connection, transaction

from clinic.db_roles import as_owner, owns_tables
from reports import _sql
from reports._sql import dn

# pg_advisory_xact_lock key: "THRE" as a 32-bit integer, so refreshes queue behind each other.
LOCK_KEY = 0x54485245

SUMMARY_TABLES = (
    "reports_visitday",
    "reports_serviceday",
    "reports_visitwait",
    "reports_coveragerun",
    "reports_siteday",
)

# Arrivals whose outcome is known (M17, M18) and the state of leaving before being seen.
KNOWN_OUTCOMES = ("left", "with_staff", "done")
LWBS_STATE = "left"

# The temporary tables of one refresh: the stale people and site-days.
PEOPLE = "rs_people"
SITE_DAYS = "rs_site_days"


def _visit_days(people: str) -> str:
    return f"""
        INSERT INTO reports_visitday
            (site_id, person_id, d, visits, multi, medication_events, prev, next)
        SELECT s, p, d, n, multi, meds,
               LAG(d) OVER (PARTITION BY s, p ORDER BY d),
               LEAD(d) OVER (PARTITION BY s, p ORDER BY d)
        FROM (
            SELECT v.site_id AS s, v.person_id AS p, {dn("v.day")} AS d, COUNT(*) AS n,
                   CASE WHEN MIN(v.opened_by_id) <> MAX(v.opened_by_id) THEN 1 ELSE 0 END
                       AS multi,
                   SUM((SELECT COUNT(*) FROM visits_medicationevent m
                        WHERE m.visit_id = v.id)) AS meds
            FROM visits_visit v
            WHERE {people("v.person_id")}
            GROUP BY v.site_id, v.person_id, v.day
        ) AS days
        ORDER BY s, d
    """


def _service_days(people: str) -> str:
    return f"""
        INSERT INTO reports_serviceday (site_id, person_id, service_id, d, deliveries, prev)
        SELECT s, p, sv, d, n, LAG(d) OVER (PARTITION BY s, p, sv ORDER BY d)
        FROM (
            SELECT v.site_id AS s, v.person_id AS p, vs.service_id AS sv, {dn("v.day")} AS d,
                   COUNT(*) AS n
            FROM visits_visit_services vs JOIN visits_visit v ON v.id = vs.visit_id
            WHERE {people("v.person_id")}
            GROUP BY v.site_id, v.person_id, vs.service_id, v.day
        ) AS days
        ORDER BY s, d
    """


def _anonymous_service_days(site_days) -> str:
    return f"""
        INSERT INTO reports_serviceday (site_id, person_id, service_id, d, deliveries, prev)
        SELECT v.site_id, NULL, vs.service_id, {dn("v.day")}, COUNT(*), NULL
        FROM visits_visit_services vs JOIN visits_visit v ON v.id = vs.visit_id
        WHERE v.person_id IS NULL AND {site_days("v")}
        GROUP BY v.site_id, vs.service_id, v.day
    """


def _waits(people: str) -> str:
    return f"""
        INSERT INTO reports_visitwait (site_id, person_id, d, ms)
        SELECT v.site_id, v.person_id, {dn("v.day")},
               CASE WHEN a.import_key IS NULL
                    THEN {_sql.millis_between("a.arrived_at", "v.started_at")} END
        FROM visits_visit v JOIN queue_arrival a ON a.id = v.arrival_id
        WHERE {people("v.person_id")}
        ORDER BY v.site_id, v.day
    """


def _coverage_runs(people: str) -> str:
    """A person's runs of coverage from one site's medication events, supplies stacked.

    With the events in order, t_i the day and s_i the supply, the last covered day is
    E_i = max(E_{i-1}, t_i - 1) + s_i. Unrolled, E_i = S_i + max over j <= i of
    (t_j - 1 - S_{j-1}) with S the running sum of supplies, which two window passes compute.
    Event i then covers E_i - s_i + 1 ... E_i, and a new run starts where t_i > E_{i-1} + 1
    (gaps and islands); a run ends where the next one starts (at the E_{i-1} of its first
    event) or at the person's last E. Later events only ever cover later days, so the runs
    up to any day are the same whether or not events after it are counted.
    """
    w = "PARTITION BY s, p ORDER BY t, id ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW"
    return f"""
        INSERT INTO reports_coveragerun (site_id, person_id, cs, ce, pce, ncs)
        WITH med AS (
            SELECT v.site_id AS s, v.person_id AS p, {dn("v.day")} AS t,
                   m.days_supply AS sup, m.id
            FROM visits_medicationevent m
            JOIN visits_visit v ON v.id = m.visit_id
            WHERE {people("v.person_id")}
        ), sums AS (
            SELECT s, p, t, id, sup, SUM(sup) OVER ({w}) - sup AS before FROM med
        ), ends AS (
            SELECT s, p, t, id, before + sup + MAX(t - 1 - before) OVER ({w}) AS e FROM sums
        ), prev AS (
            SELECT s, p, t, e, LAG(e) OVER (PARTITION BY s, p ORDER BY t, id) AS pe,
                   MAX(e) OVER (PARTITION BY s, p) AS last_e
            FROM ends
        ), starts AS (
            SELECT s, p, t, pe, last_e FROM prev WHERE pe IS NULL OR t > pe + 1
        )
        SELECT s, p, t,
               COALESCE(LEAD(pe) OVER (PARTITION BY s, p ORDER BY t), last_e),
               pe,
               LEAD(t) OVER (PARTITION BY s, p ORDER BY t)
        FROM starts
    """


def _site_days(site_days) -> str:
    known = f"CASE WHEN state IN ({', '.join(repr(s) for s in KNOWN_OUTCOMES)}) THEN 1 ELSE 0 END"
    named = "CASE WHEN person_id IS NOT NULL THEN 1 ELSE 0 END"
    walk_in = "CASE WHEN appointment_at IS NULL THEN 1 ELSE 0 END"
    return f"""
        INSERT INTO reports_siteday (site_id, d, arrivals, lwbs, waiting, named, walk_in,
                                     named_waiting, visits, named_visits)
        SELECT s, d, SUM(arrivals), SUM(lwbs), SUM(waiting), SUM(named), SUM(walk_in),
               SUM(named_waiting), SUM(visits), SUM(named_visits)
        FROM (
            SELECT site_id AS s, {dn("day")} AS d,
                   SUM({known}) AS arrivals,
                   SUM(CASE WHEN state = '{LWBS_STATE}' THEN 1 ELSE 0 END) AS lwbs,
                   SUM(1 - {known}) AS waiting,
                   SUM({named} * {known}) AS named,
                   SUM({named} * {known} * {walk_in}) AS walk_in,
                   SUM({named} * (1 - {known})) AS named_waiting,
                   0 AS visits, 0 AS named_visits
            FROM queue_arrival a WHERE {site_days("a")}
            GROUP BY site_id, day
            UNION ALL
            SELECT site_id, {dn("day")}, 0, 0, 0, 0, 0, 0, COUNT(*), COUNT(person_id)
            FROM visits_visit v WHERE {site_days("v")}
            GROUP BY site_id, day
        ) AS parts
        GROUP BY s, d
    """


# The builders of the tables the measures read by period insert in (site, day) order: a
# period's rows then sit together on disk after a rebuild (about 10% off the dashboard).
PERSON_TABLES = ("reports_visitday", "reports_visitwait", "reports_coveragerun")
PERSON_BUILDERS = (_visit_days, _service_days, _waits, _coverage_runs)


def _build(cursor, people, site_days) -> None:
    for build in PERSON_BUILDERS:
        cursor.execute(build(people))
    cursor.execute(_anonymous_service_days(site_days))
    cursor.execute(_site_days(site_days))


def rebuild() -> None:
    """Every summary row again from the clinical tables (after a bulk load, or to check)."""
    with transaction.atomic(), connection.cursor() as cursor:
        _lock(cursor)
        cursor.execute("DELETE FROM reports_stale")
        for table in SUMMARY_TABLES:
            cursor.execute(f"DELETE FROM {table}")
        _build(cursor, lambda column: f"{column} IS NOT NULL", lambda alias: "1 = 1")
    tidy()


def tidy() -> None:
    """PostgreSQL: fresh planner statistics for the summaries and, outside a transaction, a
    VACUUM, which marks their pages all-visible again so the measures read the waits' covering
    index without visiting the table. Run after a rebuild and by the end-of-day close."""
    if not _sql.is_postgres():
        return
    if connection.in_atomic_block:
        if owns_tables(SUMMARY_TABLES):  # else: autovacuum's statistics will do
            with connection.cursor() as cursor:
                for table in SUMMARY_TABLES:
                    cursor.execute(f"ANALYZE {table}")
        return
    with as_owner(), connection.cursor() as cursor:  # only the tables' owner may VACUUM them
        for table in SUMMARY_TABLES:
            cursor.execute(f"VACUUM ANALYZE {table}")


def refresh() -> int:
    """Rebuild what changed since the last refresh; returns how many marks it took.

    Cheap when nothing changed (one DELETE on an empty table)."""
    with transaction.atomic(), connection.cursor() as cursor:
        _lock(cursor)
        for name in (PEOPLE, SITE_DAYS, "rs_marks"):
            _sql.drop_temporary(cursor, name)
        cursor.execute(
            "CREATE TEMPORARY TABLE rs_marks (person_id BIGINT, site_id BIGINT, day DATE)"
        )
        if _sql.is_postgres():
            # Taken and deleted in one statement: a mark committed meanwhile stays.
            cursor.execute(
                """
                WITH taken AS (DELETE FROM reports_stale RETURNING person_id, site_id, day)
                INSERT INTO rs_marks SELECT person_id, site_id, day FROM taken
                """
            )
            taken = cursor.rowcount
        else:
            cursor.execute("DELETE FROM reports_stale RETURNING person_id, site_id, day")
            marks = cursor.fetchall()
            cursor.executemany("INSERT INTO rs_marks VALUES (%s, %s, %s)", marks)
            taken = len(marks)
        if taken:
            if _sql.is_postgres():
                # A refresh reads a few people's rows out of large tables: by their indexes.
                # With the default cost of a random read (4, for spinning disks) the planner
                # scans whole tables instead once a few hundred people changed (0.17 s
                # against 0.06 s a table for 1,000 people); 1.1 is the usual setting for SSDs
                # and cached data. Set back at once: the refresh may be part of a larger
                # transaction (SET LOCAL would last until its end).
                cursor.execute("SET LOCAL random_page_cost = 1.1")
            _refresh_marked(cursor)
            if _sql.is_postgres():
                cursor.execute("RESET random_page_cost")
        for name in (PEOPLE, SITE_DAYS, "rs_marks"):
            _sql.drop_temporary(cursor, name)
    return taken


def _refresh_marked(cursor) -> None:
    cursor.execute(
        f"CREATE TEMPORARY TABLE {PEOPLE} AS "
        "SELECT DISTINCT person_id AS p FROM rs_marks WHERE person_id IS NOT NULL"
    )
    cursor.execute(
        f"CREATE TEMPORARY TABLE {SITE_DAYS} AS SELECT DISTINCT site_id AS s, day "
        "FROM rs_marks WHERE site_id IS NOT NULL"
    )
    if _sql.is_postgres():
        cursor.execute(f"ANALYZE {PEOPLE}")
        cursor.execute(f"ANALYZE {SITE_DAYS}")
    else:
        cursor.execute(f"CREATE INDEX {PEOPLE}_idx ON {PEOPLE} (p)")
        cursor.execute(f"CREATE INDEX {SITE_DAYS}_idx ON {SITE_DAYS} (s, day)")

    def people(column: str) -> str:
        return f"{column} IN (SELECT p FROM {PEOPLE})"

    def site_days(alias: str) -> str:
        return (
            f"EXISTS (SELECT 1 FROM {SITE_DAYS} x "
            f"WHERE x.s = {alias}.site_id AND x.day = {alias}.day)"
        )

    for table in (*PERSON_TABLES, "reports_serviceday"):
        cursor.execute(f"DELETE FROM {table} WHERE {people('person_id')}")
    in_days = f"(site_id, d) IN (SELECT s, {dn('day')} FROM {SITE_DAYS})"
    cursor.execute(f"DELETE FROM reports_serviceday WHERE person_id IS NULL AND {in_days}")
    cursor.execute(f"DELETE FROM reports_siteday WHERE {in_days}")
    _build(cursor, people, site_days)


def _lock(cursor) -> None:
    if _sql.is_postgres():
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])
