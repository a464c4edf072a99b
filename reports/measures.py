"""The process measures of METRICS.md, computed in the database.

One code path serves the dashboard, the CSV export and the `metrics` command. Each public
function works on a period (local dates, both ends included) and a set of sites, and reads
only rows dated on or before the period end.

How it works: a call materialises a few temporary tables (per connection, dropped at the
end) and runs every measure over them with CTEs and window functions:

    rt_pv    completed visits in the period (site, person, day, staff, arrival, start)
    rt_pa    arrival counts per site and day in the period (M17, M18)
    rt_w     arrival-to-visit milliseconds for people's visits in the period (M16)
    rt_v     one row per person and day with a completed visit in the period: visits, more
             than one staff member?, the previous such day, the person's first in the period
    rt_hist  per person, the last completed visit before the period (M2 look-back, M9, M10)
    rt_pp    per person seen in the period: first and last visit in it, last one before it
    rt_med   medication events at the period's visits (M2, M3)
    rt_cov   runs of medication coverage per person from all history up to the period end,
             supplies stacked (POD rule)
    rt_st    treatment starts in the period (M4, M5)
    rt_svc   services delivered at the period's visits, counted per service, site and
             person (M13, M14, by_service)

`shared()` keeps the tables between calls, so a page that shows several of these functions
for one period builds them once (and reads one snapshot on PostgreSQL).

Dates are integer day numbers (reports/_sql.py) so "day k after d" is d + k on both engines.
Only integers coerced with int() and dates rendered by date.isoformat() are put into the SQL
text; nothing typed by a user reaches it.
"""

# ruff: noqa: S608 (see the last paragraph of the module docstring)

import threading
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta

from django.db import connection, transaction

from reports import _sql
from reports._sql import dn

MEASURE_IDS = (
    "M2",
    "M3",
    "M4",
    "M5",
    "M6",
    "M7",
    "M8",
    "M9",
    "M10",
    "M12",
    "M13",
    "M14",
    "M16",
    "M17",
    "M18",
)

# Windows from METRICS.md, in days.
IET_LOOKBACK = 194  # M2: no completed visit on days e-194 ... e-1
IET_INITIATION = 13  # M2: initiation on days e ... e+13
IET_ENGAGEMENT = 34  # M3: engagement events on days i+1 ... i+34
IET_EVALUABLE = IET_INITIATION + IET_ENGAGEMENT  # 47: e <= end - 47
POD_NEGATIVE = 31  # M4: no coverage on days t-31 ... t-1
POD_DAYS = 180  # M4: days t ... t+179
POD_GAP = 8  # M4: 8 or more uncovered days in a row break continuity
RETENTION_DAYS = (30, 90, 180)  # M5: medication on hand at day t+30, t+90, t+180
APART_DAYS = 90  # M6
BLOCK_DAYS = 30  # M8
INTERRUPTION_DAYS = 31  # M9, M10
NALOXONE_CODE = "naloxone"  # M13: the site's service with this code

KNOWN_OUTCOMES = ("left", "with_staff", "done")  # M17, M18: arrivals whose outcome is known
LWBS_STATE = "left"


@dataclass(frozen=True)
class Period:
    """Local dates [start, end], both included."""

    start: date
    end: date

    def __post_init__(self):
        if not isinstance(self.start, date) or not isinstance(self.end, date):
            raise TypeError("Period start and end must be dates.")
        if self.start > self.end:
            raise ValueError("The period starts after it ends.")
        if self.end > _add_years(self.start, 3) + timedelta(days=1):
            raise ValueError("The period is longer than three years.")

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


def _add_years(d: date, years: int) -> date:
    try:
        return d.replace(year=d.year + years)
    except ValueError:  # 29 February
        return d.replace(year=d.year + years, day=28)


def _rate(numerator, denominator) -> float | None:
    if not denominator:
        return None
    return round(numerator / denominator, 4)


def _ratio(numerator: int, denominator: int) -> dict:
    numerator, denominator = int(numerator or 0), int(denominator or 0)
    return {
        "numerator": numerator,
        "denominator": denominator,
        "rate": _rate(numerator, denominator),
    }


def _minutes(millis) -> float | None:
    return None if millis is None else round(float(millis) / 60000, 2)


# --- SQL plumbing -------------------------------------------------------------------------------


def _ids(site_ids: Sequence[int]) -> tuple[int, ...]:
    return tuple(sorted({int(i) for i in site_ids}))


def _in_sites(column: str, ids: tuple[int, ...]) -> str:
    if not ids:
        return "1 = 0"
    return f"{column} IN ({', '.join(str(i) for i in ids)})"


def _date(d: date) -> str:
    """A date literal comparable with a DATE column on both engines."""
    literal = f"'{date.fromordinal(d.toordinal()).isoformat()}'"
    return f"DATE {literal}" if _sql.is_postgres() else literal


def _one(cursor, sql: str) -> tuple:
    cursor.execute(sql)
    return cursor.fetchone()


def _all(cursor, sql: str) -> list[tuple]:
    cursor.execute(sql)
    return cursor.fetchall()


TEMP_TABLES = (
    "rt_svc",
    "rt_st",
    "rt_pp",
    "rt_cov",
    "rt_med",
    "rt_hist",
    "rt_v",
    "rt_last",
    "rt_w",
    "rt_pa",
    "rt_pv",
)


def _drop(cursor) -> None:
    # Qualified with the temporary schema: never a permanent table of the same name.
    schema = "pg_temp" if _sql.is_postgres() else "temp"
    for name in TEMP_TABLES:
        cursor.execute(f"DROP TABLE IF EXISTS {schema}.{name}")


class _Shared(threading.local):
    """Inside `shared()`: the key of the temporary tables on hand and which ones exist."""

    active = False
    key = None
    built: set
    values: dict


_shared = _Shared()


def _built(name: str) -> bool:
    return _shared.active and name in _shared.built


# Only aggregated or scanned once: the row count PostgreSQL takes from the table's size is
# all the planner needs there.
NOT_ANALYSED = ("rt_pa", "rt_w", "rt_st", "rt_svc")


def _create(cursor, name: str, select: str, index: str | None = None) -> None:
    if _built(name):
        return
    cursor.execute(f"CREATE TEMPORARY TABLE {name} AS {select}")
    if _sql.is_postgres():
        # Temporary tables are never analysed by autovacuum; without statistics the planner
        # guesses badly at joins. With them it hashes, so no index is needed.
        if name not in NOT_ANALYSED:
            cursor.execute(f"ANALYZE {name}")
    elif index:
        # SQLite joins by nested loops: look-ups need an index.
        cursor.execute(f"CREATE INDEX {name}_idx ON {name} ({index})")
    if _shared.active:
        _shared.built.add(name)


@contextmanager
def _settings():
    """On PostgreSQL, one transaction with settings for this work (SET LOCAL ends with it):
    JIT compilation costs more than it saves on queries this size, the sorts and hashes of a
    year's visits fit in 64 MB instead of spilling to disk, and the temporary tables are
    analysed from a small sample (their joins need row counts and rough distributions only,
    and the full sample takes about 0.3 s more over the dashboard's tables)."""
    if not _sql.is_postgres():
        with connection.cursor() as cursor:
            yield cursor
        return
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL jit = off")
        cursor.execute("SET LOCAL work_mem = '64MB'")
        cursor.execute("SET LOCAL default_statistics_target = 10")
        yield cursor


@contextmanager
def _session(key):
    """A cursor for one computation; `key` names what its temporary tables hold.

    Alone, the tables are dropped before and after. Inside `shared()` they are kept, and a
    later call with the same key reuses them.
    """
    if _shared.active:
        with connection.cursor() as cursor:
            if _shared.key != key:
                _drop(cursor)
                _shared.key, _shared.built, _shared.values = key, set(), {}
            yield cursor
        return
    with _settings() as cursor:
        _drop(cursor)
        yield cursor
        _drop(cursor)


@contextmanager
def shared():
    """Compute several of this module's functions for the same period and sites from one set
    of temporary tables (and one transaction on PostgreSQL, so the figures agree), e.g.:

        with measures.shared():
            figures = measures.measures(period, site_ids)
            weeks = measures.weekly(period, site_ids)

    Without it every function works alone and builds its own tables.
    """
    if _shared.active:
        yield
        return
    with _settings() as cursor:
        _drop(cursor)
        _shared.active, _shared.key, _shared.built, _shared.values = True, None, set(), {}
        try:
            yield
        finally:
            _shared.active, _shared.key, _shared.built, _shared.values = False, None, set(), {}
        _drop(cursor)


def _pv_ranges(cursor) -> tuple:
    """The ids of rt_pv's visits (lowest, highest) and of the arrivals of its people's visits,
    from one scan (kept inside `shared()`)."""
    if _shared.active and "pv_ranges" in _shared.values:
        return _shared.values["pv_ranges"]
    ranges = _one(
        cursor,
        """
        SELECT MIN(id), MAX(id), MIN(CASE WHEN p IS NOT NULL THEN arr END),
               MAX(CASE WHEN p IS NOT NULL THEN arr END)
        FROM rt_pv
        """,
    )
    if _shared.active:
        _shared.values["pv_ranges"] = ranges
    return ranges


def _make_period_tables(cursor, period: Period, ids, *, waits: bool = True) -> None:
    """rt_pv (completed visits in the period); with `waits`, rt_pa (arrival counts per site
    and day) and rt_w (milliseconds from arrival to the start of people's visits that came
    through the queue, NULL when imported)."""
    in_period = f"day >= {_date(period.start)} AND day <= {_date(period.end)}"
    _create(
        cursor,
        "rt_pv",
        f"""
        SELECT id, site_id AS s, person_id AS p, {dn("day")} AS d, opened_by_id AS staff,
               arrival_id AS arr, started_at
        FROM visits_visit WHERE {_in_sites("site_id", ids)} AND {in_period}
        """,
        "id",
    )
    if not waits:
        return
    _create(
        cursor,
        "rt_pa",
        f"""
        SELECT site_id AS s, {dn("day")} AS d, {_arrival_columns()}
        FROM queue_arrival
        WHERE {_in_sites("site_id", ids)} AND {in_period}
        GROUP BY site_id, day
        """,
    )
    if _built("rt_w"):
        return
    lo, hi = _pv_ranges(cursor)[2:]
    # The id range is implied by the join; stated, it lets the planner read only the part of
    # the arrivals the period's visits can point to.
    in_range = "1 = 0" if lo is None else f"a.id BETWEEN {int(lo)} AND {int(hi)}"
    _create(
        cursor,
        "rt_w",
        f"""
        SELECT v.s, v.d,
               CASE WHEN a.import_key IS NULL
                    THEN {_sql.millis_between("a.arrived_at", "v.started_at")} END AS ms,
               CASE WHEN a.import_key IS NULL THEN 0 ELSE 1 END AS imported
        FROM rt_pv v JOIN queue_arrival a ON a.id = v.arr
        WHERE v.p IS NOT NULL AND {in_range}
        """,
    )


def _make_cov(cursor, ids, end: date) -> None:
    """rt_cov: the runs of medication coverage that events up to `end` give, per person:
    first and last covered day (cs, ce), the previous run's last day (pce) and the next
    run's first day (ncs).

    Supplies stack (POD rule): with a person's events in order, t_i the day and s_i the
    supply, the last covered day is E_i = max(E_{i-1}, t_i - 1) + s_i. Unrolled,
    E_i = S_i + max over j <= i of (t_j - 1 - S_{j-1}) with S the running sum of supplies,
    which two window passes compute. Event i then covers E_i - s_i + 1 ... E_i, and a new
    run starts where t_i > E_{i-1} + 1 (gaps and islands); a run ends where the next one
    starts (at the E_{i-1} of its first event) or at the person's last E.
    """
    w = "PARTITION BY p ORDER BY t, id ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW"
    _create(
        cursor,
        "rt_cov",
        f"""
        WITH med AS (
            SELECT v.person_id AS p, {dn("v.day")} AS t, m.days_supply AS s, m.id
            FROM visits_medicationevent m
            JOIN visits_visit v ON v.id = m.visit_id
            WHERE {_in_sites("v.site_id", ids)} AND v.person_id IS NOT NULL
              AND v.day <= {_date(end)}
        ), sums AS (
            SELECT p, t, id, s, SUM(s) OVER ({w}) - s AS before FROM med
        ), ends AS (
            SELECT p, t, id, before + s + MAX(t - 1 - before) OVER ({w}) AS e FROM sums
        ), prev AS (
            SELECT p, t, e, LAG(e) OVER (PARTITION BY p ORDER BY t, id) AS pe,
                   MAX(e) OVER (PARTITION BY p) AS last_e
            FROM ends
        ), starts AS (
            SELECT p, t, pe, last_e FROM prev WHERE pe IS NULL OR t > pe + 1
        )
        SELECT p, t AS cs,
               COALESCE(LEAD(pe) OVER (PARTITION BY p ORDER BY t), last_e) AS ce,
               pe AS pce,
               LEAD(t) OVER (PARTITION BY p ORDER BY t) AS ncs
        FROM starts
        """,
        "p, cs",
    )


def _make_starts(cursor, period: Period) -> None:
    """rt_st: treatment starts in the period (no coverage on days t-31 ... t-1).

    A start is always the first day of a coverage run: inside a run, day t-1 is covered.
    """
    s, e = _sql.day_number(period.start), _sql.day_number(period.end)
    _create(
        cursor,
        "rt_st",
        f"""
        SELECT p, cs AS t FROM rt_cov
        WHERE (pce IS NULL OR cs - pce - 1 >= {POD_NEGATIVE}) AND cs >= {s} AND cs <= {e}
        """,
    )


def _make_person_tables(cursor, period: Period, ids) -> None:
    """rt_v (person-days with a completed visit in the period, from rt_pv: visits that day,
    whether more than one staff member saw them, the previous such day and the first, `f`),
    rt_hist (each person's last completed visit before the period) and rt_pp (per person
    seen in the period: first and last visit in it, and `b`, the last one before it)."""
    if _sql.is_postgres() and not _built("rt_v"):
        # Sorting once by (p, d) serves both the grouping and the LAG window; hashing first
        # would mean a second sort.
        cursor.execute("SET LOCAL enable_hashagg = off")
    _create(
        cursor,
        "rt_v",
        """
        SELECT p, d, n, multi, LAG(d) OVER (PARTITION BY p ORDER BY d) AS prev,
               FIRST_VALUE(d) OVER (PARTITION BY p ORDER BY d) AS f
        FROM (
            SELECT p, d, COUNT(*) AS n,
                   CASE WHEN MIN(staff) <> MAX(staff) THEN 1 ELSE 0 END AS multi
            FROM rt_pv WHERE p IS NOT NULL
            GROUP BY p, d
        ) AS days
        """,
        "p, d",
    )
    if _sql.is_postgres():
        cursor.execute("SET LOCAL enable_hashagg = on")
    _create(
        cursor,
        "rt_hist",
        f"""
        SELECT person_id AS p, {dn("MAX(day)")} AS last_pre
        FROM visits_visit
        WHERE {_in_sites("site_id", ids)} AND person_id IS NOT NULL
          AND day < {_date(period.start)}
        GROUP BY person_id
        """,
        "p",
    )
    # Medication events at the period's visits (M2, M3).
    _create(
        cursor,
        "rt_med",
        """
        SELECT v.p, v.d AS t, m.days_supply AS s
        FROM rt_pv v JOIN visits_medicationevent m ON m.visit_id = v.id
        WHERE v.p IS NOT NULL
        """,
        "p, t",
    )
    _create(
        cursor,
        "rt_pp",
        """
        SELECT v.p, MIN(v.d) AS f, MAX(v.d) AS l, MAX(h.last_pre) AS b
        FROM rt_v v LEFT JOIN rt_hist h ON h.p = v.p
        GROUP BY v.p
        """,
        "p",
    )


# --- the measures -------------------------------------------------------------------------------


def _m2_m3(cursor, period: Period) -> tuple[dict, dict]:
    e = _sql.day_number(period.end)
    episode = f"(b IS NULL OR b < f - {IET_LOOKBACK})"
    # An episode starts on the person's first visit day in the period (e = rt_v's f) and
    # initiation falls on e ... e + 13: the conditions on v.f below follow from the joins and
    # let the planner drop most of rt_v before joining.
    row = _one(
        cursor,
        f"""
        WITH ep AS (
            SELECT p, f AS e FROM rt_pp WHERE f <= {e - IET_EVALUABLE} AND {episode}
        ), cand AS (
            SELECT ep.p, m.t AS i FROM ep
            JOIN rt_med m ON m.p = ep.p AND m.t >= ep.e AND m.t <= ep.e + {IET_INITIATION}
            UNION ALL
            SELECT ep.p, v.d FROM ep
            JOIN rt_v v ON v.p = ep.p AND v.d >= ep.e + 1 AND v.d <= ep.e + {IET_INITIATION}
            WHERE v.d > v.f AND v.d <= v.f + {IET_INITIATION}
            UNION ALL
            SELECT ep.p, v.d FROM ep
            JOIN rt_v v ON v.p = ep.p AND v.d = ep.e AND v.multi = 1
            WHERE v.d = v.f
        ), ini AS (
            SELECT p, MIN(i) AS i FROM cand GROUP BY p
        ), ev AS (
            SELECT ini.p, v.n AS k FROM ini
            JOIN rt_v v ON v.p = ini.p AND v.d >= ini.i + 1 AND v.d <= ini.i + {IET_ENGAGEMENT}
            WHERE v.d > v.f AND v.d <= v.f + {IET_EVALUABLE}
            UNION ALL
            SELECT ini.p, 1 FROM ini
            JOIN rt_med m ON m.p = ini.p AND m.t >= ini.i + 1 AND m.t <= ini.i + {IET_ENGAGEMENT}
        )
        SELECT (SELECT COUNT(*) FROM ep),
               (SELECT COUNT(*) FROM ini),
               (SELECT COUNT(*) FROM (SELECT p FROM ev GROUP BY p HAVING SUM(k) >= 2) AS x),
               (SELECT COUNT(*) FROM rt_pp WHERE f > {e - IET_EVALUABLE} AND {episode})
        """,
    )
    episodes, initiated, engaged, not_evaluable = (int(x or 0) for x in row)
    return (
        {**_ratio(initiated, episodes), "not_evaluable": not_evaluable},
        {**_ratio(engaged, episodes), "not_evaluable": not_evaluable},
    )


def _starts_summary(cursor, period: Period) -> tuple:
    """Per treatment start: continuity broken?, on hand at day 30/90/180, days covered;
    summed. Kept inside `shared()` (measures() and retention_curve() both need it)."""
    if _shared.active and "starts_summary" in _shared.values:
        return _shared.values["starts_summary"]
    e = _sql.day_number(period.end)
    last = POD_DAYS - 1  # t+179, the last day of the POD window
    on_hand = ", ".join(
        f"MAX(CASE WHEN r.cs <= st.t + {k} AND r.ce >= st.t + {k} THEN 1 ELSE 0 END) AS d{k}"
        for k in RETENTION_DAYS
    )
    # Within the window, after run r: uncovered days r.ce+1 ... min(next run start - 1, t+179).
    gap_end = (
        f"CASE WHEN r.ncs IS NULL OR r.ncs - 1 > st.t + {last} THEN st.t + {last} "
        "ELSE r.ncs - 1 END"
    )
    per_start = f"""
        SELECT st.p, st.t,
               MAX(CASE WHEN r.cs <= st.t + {last} AND r.ce < st.t + {last}
                         AND {gap_end} - r.ce >= {POD_GAP} THEN 1 ELSE 0 END) AS broken,
               SUM(CASE WHEN r.cs > st.t + {last} THEN 0
                        WHEN r.ce > st.t + {last} THEN st.t + {last} - r.cs + 1
                        ELSE r.ce - r.cs + 1 END) AS covered,
               {on_hand}
        FROM rt_st st
        JOIN rt_cov r ON r.p = st.p AND r.cs >= st.t AND r.cs <= st.t + {max(RETENTION_DAYS)}
        GROUP BY st.p, st.t
    """
    pod = f"t <= {e - last}"
    cols = [
        f"SUM(CASE WHEN {pod} THEN 1 ELSE 0 END)",
        f"SUM(CASE WHEN {pod} AND broken = 0 THEN 1 ELSE 0 END)",
        f"SUM(CASE WHEN {pod} THEN 0 ELSE 1 END)",
        f"SUM(CASE WHEN {pod} THEN covered ELSE 0 END)",
    ]
    for k in RETENTION_DAYS:
        cols += [
            f"SUM(CASE WHEN t <= {e - k} THEN 1 ELSE 0 END)",
            f"SUM(CASE WHEN t <= {e - k} THEN d{k} ELSE 0 END)",
            f"SUM(CASE WHEN t <= {e - k} THEN 0 ELSE 1 END)",
        ]
    summary = tuple(
        int(x or 0) for x in _one(cursor, f"SELECT {', '.join(cols)} FROM ({per_start}) AS s")
    )
    if _shared.active:
        _shared.values["starts_summary"] = summary
    return summary


def _m4_m5(summary: tuple) -> tuple[dict, dict, list[dict]]:
    pod_den, pod_num, pod_ne, covered_days = summary[:4]
    m4 = {**_ratio(pod_num, pod_den), "not_evaluable": pod_ne}
    curve = []
    for i, k in enumerate(RETENTION_DAYS):
        den, num, ne = summary[4 + 3 * i : 7 + 3 * i]
        curve.append({"day": k, **_ratio(num, den), "not_evaluable": ne})
    m5 = {f"day_{row['day']}": {k: v for k, v in row.items() if k != "day"} for row in curve}
    m5["pdc_180"] = {
        # Mean share of days t ... t+179 covered: total covered days over 180 per start.
        "value": round(covered_days / (POD_DAYS * pod_den), 4) if pod_den else None,
        "denominator": pod_den,
        "not_evaluable": pod_ne,
    }
    return m4, {**m5["day_90"], **m5}, curve


def _m6(cursor, period: Period) -> dict:
    cutoff = _sql.day_number(period.end) - APART_DAYS
    den, num, ne = _one(
        cursor,
        f"""
        SELECT SUM(CASE WHEN f <= {cutoff} THEN 1 ELSE 0 END),
               SUM(CASE WHEN f <= {cutoff} AND l - f >= {APART_DAYS} THEN 1 ELSE 0 END),
               SUM(CASE WHEN f > {cutoff} THEN 1 ELSE 0 END)
        FROM rt_pp
        """,
    )
    return {**_ratio(num, den), "not_evaluable": int(ne or 0)}


def _m7(cursor, period: Period) -> dict:
    # First half: the first period.days // 2 days; second half: the rest (the middle day of
    # an odd-length period belongs to the second half).
    # rt_pp has each person's first (f) and last (l) visit day in the period.
    mid = _sql.day_number(period.start) + period.days // 2
    den, num = _one(
        cursor,
        f"""
        SELECT COUNT(*), SUM(CASE WHEN l >= {mid} THEN 1 ELSE 0 END)
        FROM rt_pp WHERE f < {mid}
        """,
    )
    return {**_ratio(num, den), "not_evaluable": 0}


def _m8(cursor, period: Period) -> dict:
    # Whole 30-day blocks from the first visit in the period that end by the period end; a
    # person with no whole block yet is not yet evaluable.
    e = _sql.day_number(period.end)
    den, total, ne = _one(
        cursor,
        f"""
        WITH pb AS (SELECT p, f, ({e} - f + 1) / {BLOCK_DAYS} AS nb FROM rt_pp),
        hits AS (
            SELECT p, nb, COUNT(*) AS h FROM (
                SELECT p, ({e} - f + 1) / {BLOCK_DAYS} AS nb, (d - f) / {BLOCK_DAYS} AS blk
                FROM rt_v WHERE d < f + ({e} - f + 1) / {BLOCK_DAYS} * {BLOCK_DAYS}
                GROUP BY p, f, (d - f) / {BLOCK_DAYS}
            ) AS blocks
            GROUP BY p, nb
        )
        SELECT (SELECT COUNT(*) FROM hits), (SELECT SUM(h * 1.0 / nb) FROM hits),
               (SELECT COUNT(*) FROM pb WHERE nb = 0)
        """,
    )
    den = int(den or 0)
    return {
        "value": round(float(total) / den, 4) if den else None,
        "denominator": den,
        "not_evaluable": int(ne or 0),
    }


def _m9(cursor) -> dict:
    """Welcome-backs: visits in the period that end a run of >= 31 days with no completed
    visit and no coverage (history before the period counts).

    The days without a visit before a visit day d run from the previous visit (in the
    period, else the last one before it); only where those are >= 31 can coverage matter,
    and then the latest end of a coverage run that started before d shortens the gap.
    """
    gaps = f"""
        WITH cand AS (
            SELECT v.p, v.d, COALESCE(v.prev, h.last_pre) AS pv
            FROM rt_v v LEFT JOIN rt_hist h ON h.p = v.p
            WHERE v.d - COALESCE(v.prev, h.last_pre) - 1 >= {INTERRUPTION_DAYS}
        ), ends AS (
            SELECT c.p, c.d, c.pv, MAX(r.ce) AS ce
            FROM cand c LEFT JOIN rt_cov r ON r.p = c.p AND r.cs < c.d
            GROUP BY c.p, c.d, c.pv
        )
        SELECT 1 AS k, d - (CASE WHEN ce > pv THEN ce ELSE pv END) - 1 AS x FROM ends
        WHERE d - (CASE WHEN ce > pv THEN ce ELSE pv END) - 1 >= {INTERRUPTION_DAYS}
    """
    row = _one(cursor, _sql.percentiles_sql(gaps, {"p50": (1, 2)}))
    return {
        "count": int(row[1]) if row else 0,
        "median_days": round(float(row[2]), 1) if row else None,
        "not_evaluable": 0,
    }


def _m10(cursor, period: Period) -> dict:
    # The last visit in the period is rt_pp's l (the latest day in rt_v).
    e = _sql.day_number(period.end)
    count = _one(
        cursor,
        f"""
        SELECT COUNT(*) FROM (
            SELECT p, MAX(x) AS x FROM (
                SELECT p, last_pre AS x FROM rt_hist
                UNION ALL SELECT p, l FROM rt_pp
                UNION ALL SELECT p, ce FROM rt_cov
            ) AS u GROUP BY p
        ) AS z WHERE {e} - x >= {INTERRUPTION_DAYS}
        """,
    )[0]
    return {"count": int(count or 0), "not_evaluable": 0}


def _make_services(cursor) -> None:
    """rt_svc: visits_visit_services rows of the period's visits, counted per (service, site
    of the visit, person); one join of the (large) services table serves M13, M14 and
    by_service, and the counting groups integers only. The counts are INTEGER so that their
    sums are bigint, not numeric, on PostgreSQL (much faster to add up)."""
    if _built("rt_svc"):
        return
    lo, hi = _pv_ranges(cursor)[:2]
    # The id range is implied by the join; stated, it lets the planner read only that part of
    # the (visit, service) index.
    in_range = "1 = 0" if lo is None else f"vs.visit_id BETWEEN {int(lo)} AND {int(hi)}"
    _create(
        cursor,
        "rt_svc",
        f"""
        SELECT vs.service_id AS sv, v.s, v.p, CAST(COUNT(*) AS INTEGER) AS n
        FROM visits_visit_services vs JOIN rt_pv v ON v.id = vs.visit_id
        WHERE {in_range}
        GROUP BY vs.service_id, v.s, v.p
        """,
    )


def _visit_totals(cursor) -> dict:
    visits, named = _one(cursor, "SELECT COUNT(*), COUNT(p) FROM rt_pv")
    _make_services(cursor)
    kits, kit_people = _one(
        cursor,
        f"""
        SELECT SUM(x.n), COUNT(DISTINCT x.p) FROM rt_svc x
        JOIN clinic_service s ON s.id = x.sv
        WHERE s.code = '{NALOXONE_CODE}' AND s.site_id = x.s AND x.p IS NOT NULL
        """,
    )
    # METRICS.md: an anonymous contact counts in M12 and M17 only, so not in M13 or M14.
    deliveries = _one(cursor, "SELECT SUM(n) FROM rt_svc WHERE p IS NOT NULL")[0]
    return {
        "visits": int(visits),
        "named": int(named),
        "kits": int(kits or 0),
        "kit_people": int(kit_people or 0),
        "deliveries": int(deliveries or 0),
    }


def _m12(cursor, totals: dict) -> dict:
    people, new = _one(
        cursor,
        "SELECT COUNT(*), SUM(CASE WHEN b IS NULL THEN 1 ELSE 0 END) FROM rt_pp",
    )
    people, new = int(people or 0), int(new or 0)
    return {
        "count": totals["visits"],
        "people": people,
        "new_people": new,
        "returning_people": people - new,
        "anonymous": totals["visits"] - totals["named"],
        "not_evaluable": 0,
    }


def _waits(key: str = "1") -> str:
    """(k, x): milliseconds from arrival to the visit's start, per key, from rt_w."""
    return f"SELECT {key} AS k, ms AS x FROM rt_w WHERE ms IS NOT NULL"


def _m16(cursor) -> dict:
    untimed = _one(cursor, "SELECT COUNT(*) FROM rt_w WHERE imported = 1")[0]
    row = _one(cursor, _sql.percentiles_sql(_waits(), {"p50": (1, 2), "p90": (9, 10)}))
    return {
        "median_minutes": _minutes(row[2]) if row else None,
        "p90_minutes": _minutes(row[3]) if row else None,
        "denominator": int(row[1]) if row else 0,
        "not_evaluable": int(untimed or 0),
    }


ARRIVAL_COUNTS = ("arrivals", "lwbs", "waiting", "named", "walk_in", "named_waiting")


def _arrival_columns() -> str:
    """Per group of arrivals: with an outcome, LWBS, still waiting; and for people only
    (M18): with an outcome, walk-ins among them, still waiting."""
    known = f"CASE WHEN state IN ({', '.join(repr(s) for s in KNOWN_OUTCOMES)}) THEN 1 ELSE 0 END"
    named = "CASE WHEN person_id IS NOT NULL THEN 1 ELSE 0 END"
    walk_in = "CASE WHEN appointment_at IS NULL THEN 1 ELSE 0 END"
    sums = (
        f"SUM({known})",
        f"SUM(CASE WHEN state = '{LWBS_STATE}' THEN 1 ELSE 0 END)",
        f"SUM(1 - {known})",
        f"SUM({named} * {known})",
        f"SUM({named} * {known} * {walk_in})",
        f"SUM({named} * (1 - {known}))",
    )
    return ", ".join(f"{sql} AS {name}" for sql, name in zip(sums, ARRIVAL_COUNTS, strict=True))


def _arrival_sums() -> str:
    return ", ".join(f"SUM({name})" for name in ARRIVAL_COUNTS)


def _m17_m18(cursor, period: Period, ids, totals: dict) -> tuple[dict, dict]:
    row = _one(cursor, f"SELECT {_arrival_sums()} FROM rt_pa")
    arrivals, lwbs, waiting, named, walk_in, named_waiting = (int(x or 0) for x in row)
    seconds = _one(
        cursor,
        f"""
        SELECT SUM({_sql.millis_between("starts_at", "ends_at")}) FROM clinic_shift
        WHERE {_in_sites("site_id", ids)}
          AND day >= {_date(period.start)} AND day <= {_date(period.end)}
        """,
    )[0]
    hours = round(float(seconds or 0) / 3_600_000, 2)
    m17 = {**_ratio(lwbs, arrivals), "not_evaluable": waiting}
    m18 = {
        **_ratio(walk_in, named),
        "visits_per_staff_hour": round(totals["named"] / hours, 2) if hours else None,
        "staff_hours": hours,
        "not_evaluable": named_waiting,
    }
    return m17, m18


# --- public API -------------------------------------------------------------------------------


def measures(period: Period, site_ids: Sequence[int]) -> dict[str, dict]:
    """Every measure of METRICS.md for the period and sites, keyed by measure id."""
    ids = _ids(site_ids)
    with _session(("period", period, ids)) as cursor:
        _make_period_tables(cursor, period, ids)
        _make_person_tables(cursor, period, ids)
        _make_cov(cursor, ids, period.end)
        _make_starts(cursor, period)
        m2, m3 = _m2_m3(cursor, period)
        m4, m5, _ = _m4_m5(_starts_summary(cursor, period))
        totals = _visit_totals(cursor)
        m12 = _m12(cursor, totals)
        m17, m18 = _m17_m18(cursor, period, ids, totals)
        result = {
            "M2": m2,
            "M3": m3,
            "M4": m4,
            "M5": m5,
            "M6": _m6(cursor, period),
            "M7": _m7(cursor, period),
            "M8": _m8(cursor, period),
            "M9": _m9(cursor),
            "M10": _m10(cursor, period),
            "M12": m12,
            "M13": {
                "count": totals["kits"],
                **_ratio(totals["kit_people"], m12["people"]),
                "not_evaluable": 0,
            },
            "M14": {
                "value": _rate(totals["deliveries"], totals["named"]),
                "numerator": totals["deliveries"],
                "denominator": totals["named"],
                "not_evaluable": 0,
            },
            "M16": _m16(cursor),
            "M17": m17,
            "M18": m18,
        }
    return result


def retention_curve(period: Period, site_ids: Sequence[int]) -> list[dict]:
    """M5 as a cohort curve: medication on hand at day 30, 90 and 180 after a start."""
    ids = _ids(site_ids)
    with _session(("period", period, ids)) as cursor:
        _make_cov(cursor, ids, period.end)
        _make_starts(cursor, period)
        return _m4_m5(_starts_summary(cursor, period))[2]


def _monday(d: date) -> date:
    return d - timedelta(days=d.weekday())


def _grouped(cursor, key) -> tuple[dict, dict, dict]:
    """Visits and people, arrival counts and the median wait per group; `key(site, day)`
    gives the group's SQL expression from a site id and a day number expression."""
    visits = {
        k: (int(n), int(people))
        for k, n, people in _all(
            cursor,
            f"SELECT {key('s', 'd')} AS k, COUNT(*), COUNT(DISTINCT p) FROM rt_pv GROUP BY 1",
        )
    }
    arrivals = {
        row[0]: tuple(int(x or 0) for x in row[1:])
        for row in _all(
            cursor,
            f"SELECT {key('s', 'd')} AS k, {_arrival_sums()} FROM rt_pa GROUP BY 1",
        )
    }
    waits = {
        k: median
        for k, _n, median in _all(
            cursor, _sql.percentiles_sql(_waits(key("s", "d")), {"p50": (1, 2)})
        )
    }
    return visits, arrivals, waits


def weekly(period: Period, site_ids: Sequence[int]) -> list[dict]:
    """One row per week (Monday first) overlapping the period, counting only days in it."""
    ids = _ids(site_ids)
    first = _monday(period.start)
    with _session(("period", period, ids)) as cursor:
        _make_period_tables(cursor, period, ids)
        monday0 = _sql.day_number(first)
        visits, arrivals, waits = _grouped(cursor, lambda site, day: f"({day} - {monday0}) / 7")
    rows = []
    monday, w = first, 0
    while monday <= period.end:
        n_arrivals, lwbs = arrivals.get(w, (0, 0))[:2]
        n_visits, people = visits.get(w, (0, 0))
        rows.append(
            {
                "week": monday,
                "visits": n_visits,
                "people": people,
                "arrivals": n_arrivals,
                "lwbs": lwbs,
                "lwbs_rate": _rate(lwbs, n_arrivals),
                "median_wait_minutes": _minutes(waits.get(w)),
            }
        )
        monday += timedelta(days=7)
        w += 1
    return rows


def by_site(period: Period, site_ids: Sequence[int]) -> list[dict]:
    """One row per site in scope (ordered by name)."""
    ids = _ids(site_ids)
    with _session(("period", period, ids)) as cursor:
        sites = _all(
            cursor,
            f"SELECT id, name FROM clinic_site WHERE {_in_sites('id', ids)} ORDER BY name, id",
        )
        _make_period_tables(cursor, period, ids)
        visits, arrivals, waits = _grouped(cursor, lambda site, day: site)
    rows = []
    for sid, name in sites:
        n_visits, people = visits.get(sid, (0, 0))
        n_arrivals, lwbs, _, named, walk_in, _ = arrivals.get(sid, (0,) * 6)
        rows.append(
            {
                "site_id": sid,
                "site": name,
                "visits": n_visits,
                "people": people,
                "arrivals": n_arrivals,
                "lwbs": lwbs,
                "lwbs_rate": _rate(lwbs, n_arrivals),
                "median_wait_minutes": _minutes(waits.get(sid)),
                "walk_in_rate": _rate(walk_in, named),
            }
        )
    return rows


def by_service(period: Period, site_ids: Sequence[int]) -> list[dict]:
    """Services delivered at completed visits in the period, grouped by name across sites."""
    ids = _ids(site_ids)
    with _session(("period", period, ids)) as cursor:
        _make_period_tables(cursor, period, ids, waits=False)
        _make_services(cursor)
        rows = _all(
            cursor,
            """
            SELECT name, MAX(code), SUM(n), COUNT(p) FROM (
                SELECT s.name, MAX(s.code) AS code, x.p, SUM(x.n) AS n
                FROM rt_svc x JOIN clinic_service s ON s.id = x.sv
                GROUP BY s.name, x.p
            ) AS per_person
            GROUP BY name
            ORDER BY SUM(n) DESC, name
            """,
        )
    return [
        {"service": name, "code": code or "", "visits": int(n), "people": int(people)}
        for name, code, n, people in rows
    ]


def coverage_runs(site_ids: Sequence[int], end: date) -> list[tuple[int, date, date]]:
    """(person id, first day, last day) of every run of medication coverage, supplies stacked.

    For checking the engine (tests, support questions); no page shows it.
    """
    ids = _ids(site_ids)
    with _session(("coverage", ids, end)) as cursor:
        _make_cov(cursor, ids, end)
        rows = _all(cursor, "SELECT p, cs, ce FROM rt_cov ORDER BY p, cs")
    return [(p, _sql.from_day_number(cs), _sql.from_day_number(ce)) for p, cs, ce in rows]


def outreach_list(site_ids: Sequence[int], as_of: date) -> list[dict]:
    """The people M10 counts at `as_of`, for care staff: longest time without contact first."""
    ids = _ids(site_ids)
    today = _sql.day_number(as_of)
    with _session(("outreach", ids, as_of)) as cursor:
        _make_cov(cursor, ids, as_of)
        _create(
            cursor,
            "rt_last",
            f"""
            SELECT person_id AS p, {dn("MAX(day)")} AS last_visit FROM visits_visit
            WHERE {_in_sites("site_id", ids)} AND person_id IS NOT NULL
              AND day <= {_date(as_of)}
            GROUP BY person_id
            """,
            "p",
        )
        rows = _all(
            cursor,
            f"""
            SELECT x.p, pe.name, pe.site_id, x.last_visit, x.covered, pe.what_helps,
                   {today} - CASE WHEN x.covered > x.last_visit THEN x.covered
                                  ELSE x.last_visit END AS days_since
            FROM (
                SELECT l.p, l.last_visit,
                       (SELECT MAX(c.ce) FROM rt_cov c WHERE c.p = l.p) AS covered
                FROM rt_last l
            ) AS x
            JOIN clinic_person pe ON pe.id = x.p
            WHERE {today} - CASE WHEN x.covered > x.last_visit THEN x.covered
                                 ELSE x.last_visit END >= {INTERRUPTION_DAYS}
            ORDER BY days_since DESC, pe.name, x.p
            """,
        )
    return [
        {
            "person_id": p,
            "name": name,
            "site_id": site_id,
            "last_contact": _sql.from_day_number(int(last)),
            "days_since": int(days),
            "covered_until": None if covered is None else _sql.from_day_number(int(covered)),
            "what_helps": what_helps,
        }
        for p, name, site_id, last, covered, what_helps, days in rows
    ]
