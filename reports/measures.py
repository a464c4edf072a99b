"""The process measures of METRICS.md, computed in the database.

One code path serves the dashboard, the CSV export and the `metrics` command. Each public
function works on a period (local dates, both ends included) and a set of sites, and reads
only what happened on or before the period end.

How it works: the measures read the summaries of reports/summaries.py (per person and day:
visits, medication events, the previous and next visit day; runs of medication coverage;
services; waits; per site and day: arrivals by outcome), which are brought up to date first
(`summaries.refresh()`), and compute every measure over them with CTEs and window
functions. One small temporary table is built per period:

    rt_pp    per person seen in the period: first (f) and last (l) completed visit day in it,
             and the last one before it (b)
    rt_svc   services delivered in the period per service and site: deliveries, deliveries
             to people, and people (M13, M14, by_service)

`shared()` keeps them between calls, so a page that shows several of these functions for one
period builds them once, and reads one snapshot on PostgreSQL.

The summaries hold every day, also after the period end. Where a measure looks at a day
after its end it only asks whether it exists (a person's next visit day marks the last one in
the period); a run of medication coverage may reach past the end through events after it, but
only ever on days after the end (later events cover later days), which no measure counts.

Dates are integer day numbers (reports/_sql.py) so "day k after d" is d + k on both engines.
Only integers coerced with int() are put into the SQL text; nothing typed by a user reaches
it.
"""

# ruff: noqa: S608 (see the last paragraph of the module docstring)

import threading
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta

from django.db import connection, transaction

from reports import _sql, summaries

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


TEMP_TABLES = ("rt_svc", "rt_pp")


def _drop(cursor) -> None:
    for name in TEMP_TABLES:
        _sql.drop_temporary(cursor, name)


class _Shared(threading.local):
    """Inside `shared()`: the key of the temporary tables on hand and which ones exist."""

    active = False
    key = None
    built: set
    values: dict


_shared = _Shared()


def _built(name: str) -> bool:
    return _shared.active and name in _shared.built


def _create(cursor, name: str, select: str, index: str | None = None) -> None:
    if _built(name):
        return
    cursor.execute(f"CREATE TEMPORARY TABLE {name} AS {select}")
    if _sql.is_postgres():
        # Temporary tables are never analysed by autovacuum; without statistics the planner
        # guesses badly at joins.
        cursor.execute(f"ANALYZE {name}")
    elif index:
        # SQLite joins by nested loops: look-ups need an index.
        cursor.execute(f"CREATE INDEX {name}_idx ON {name} ({index})")
    if _shared.active:
        _shared.built.add(name)


@contextmanager
def _settings():
    """Bring the summaries up to date, then, on PostgreSQL, read them in one transaction
    with one snapshot (REPEATABLE READ, when not already inside a transaction) and settings
    for this work (SET LOCAL ends with it): JIT compilation costs more than it saves on
    queries this size, the sorts and hashes of a year fit in 64 MB instead of spilling to
    disk, and the temporary tables are analysed from a small sample (their joins need row
    counts and rough distributions only)."""
    summaries.refresh()
    if not _sql.is_postgres():
        with connection.cursor() as cursor:
            yield cursor
        return
    outermost = not connection.in_atomic_block
    with transaction.atomic(), connection.cursor() as cursor:
        if outermost:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
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
    """Compute several of this module's functions for the same period and sites from one
    refresh of the summaries, one set of temporary tables and one transaction (one snapshot
    on PostgreSQL, so the figures agree), e.g.:

        with measures.shared():
            figures = measures.measures(period, site_ids)
            weeks = measures.weekly(period, site_ids)

    Without it every function works alone.
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


class _Scope:
    """The SQL pieces for one period and set of sites: `days(alias)` restricts a summary to
    the period's days at those sites."""

    def __init__(self, period: Period, ids: tuple[int, ...]):
        self.period, self.ids = period, ids
        self.s, self.e = _sql.day_number(period.start), _sql.day_number(period.end)

    def sites(self, alias: str) -> str:
        return _in_sites(f"{alias}.site_id", self.ids)

    def days(self, alias: str) -> str:
        return f"{self.sites(alias)} AND {alias}.d >= {self.s} AND {alias}.d <= {self.e}"

    def visit_days(self, alias: str = "v") -> str:
        """The person-days with a completed visit in the period: s, p, d, n (visits), k
        (medication events), multi, prev (the person's previous such day, any time)."""
        return f"""
            SELECT {alias}.site_id AS s, {alias}.person_id AS p, {alias}.d, {alias}.visits AS n,
                   {alias}.medication_events AS k, {alias}.multi, {alias}.prev
            FROM reports_visitday {alias} WHERE {self.days(alias)}
        """


def _make_people(cursor, scope: _Scope) -> None:
    """rt_pp: per person seen in the period, the first (f) and last (l) completed visit day in
    it and the last one before it (b): the first day is the one whose previous visit day is
    before the period, the last the one whose next is after it. Also, from the first day:
    medication events (fk), more than one staff member (fmulti) and the next visit day
    (fnext)."""
    _create(
        cursor,
        "rt_pp",
        f"""
        SELECT f.site_id AS s, f.person_id AS p, f.d AS f, l.d AS l, f.prev AS b,
               f.medication_events AS fk, f.multi AS fmulti, f.next AS fnext
        FROM reports_visitday f
        JOIN reports_visitday l ON l.person_id = f.person_id AND l.site_id = f.site_id
        WHERE {scope.days("f")} AND (f.prev IS NULL OR f.prev < {scope.s})
          AND {scope.days("l")} AND (l.next IS NULL OR l.next > {scope.e})
        """,
        "p, s",
    )


def _make_services(cursor, scope: _Scope) -> None:
    """rt_svc: per service and site, deliveries in the period (all, and to people) and the
    people who had it: a person counts on their first day with it in the period, the one
    whose previous day with it is before the period. The deliveries are INTEGER so that
    their sums are bigint, not numeric, on PostgreSQL."""
    _create(
        cursor,
        "rt_svc",
        f"""
        SELECT x.service_id AS sv, x.site_id AS s,
               CAST(SUM(x.deliveries) AS INTEGER) AS n,
               CAST(SUM(CASE WHEN x.person_id IS NOT NULL THEN x.deliveries ELSE 0 END)
                    AS INTEGER) AS named,
               CAST(SUM(CASE WHEN x.person_id IS NOT NULL
                              AND (x.prev IS NULL OR x.prev < {scope.s}) THEN 1 ELSE 0 END)
                    AS INTEGER) AS people
        FROM reports_serviceday x WHERE {scope.days("x")}
        GROUP BY x.service_id, x.site_id
        """,
    )


# --- the measures -------------------------------------------------------------------------------


def _m2_m3(cursor, scope: _Scope) -> tuple[dict, dict]:
    e = scope.e
    episode = f"(b IS NULL OR b < f - {IET_LOOKBACK})"
    # An episode starts on the person's first visit day in the period, e. Initiation: the
    # earliest day in e ... e+13 with a medication event, a visit after day e, or on day e
    # visits by more than one staff member. Medication events happen at visits, so after day
    # e the earliest is the next visit day. Engagement: 2 or more events (visits, and
    # medication events) on days i+1 ... i+34: the first visit day after i (d1) is in that
    # window and either holds two events or is followed by another visit day in it. Those
    # days are looked up by (person, site, day): a few per episode, no scan.
    row = _one(
        cursor,
        f"""
        WITH ep AS (
            SELECT s, p, f AS e, fk, fmulti, fnext FROM rt_pp
            WHERE f <= {e - IET_EVALUABLE} AND {episode}
        ), ini AS (
            SELECT s, p, e, fnext, CASE WHEN fk > 0 OR fmulti = 1 THEN e ELSE fnext END AS i
            FROM ep WHERE fk > 0 OR fmulti = 1 OR fnext <= e + {IET_INITIATION}
        ), first_after AS (
            SELECT s, p, i,
                   CASE WHEN i = e THEN fnext ELSE ({_day("next", "ini", "fnext")}) END AS d1
            FROM ini
        ), engaged AS (
            SELECT s, p FROM first_after
            WHERE d1 <= i + {IET_ENGAGEMENT}
              AND (({_day("visits + medication_events", "first_after", "d1")}) >= 2
                   OR ({_day("next", "first_after", "d1")}) <= i + {IET_ENGAGEMENT})
        )
        SELECT (SELECT COUNT(*) FROM ep),
               (SELECT COUNT(*) FROM ini),
               (SELECT COUNT(*) FROM engaged),
               (SELECT COUNT(*) FROM rt_pp WHERE f > {e - IET_EVALUABLE} AND {episode})
        """,
    )
    episodes, initiated, engaged, not_evaluable = (int(x or 0) for x in row)
    return (
        {**_ratio(initiated, episodes), "not_evaluable": not_evaluable},
        {**_ratio(engaged, episodes), "not_evaluable": not_evaluable},
    )


def _day(columns: str, row: str, day: str) -> str:
    """SQL for `columns` of the visit day `day` of the person (s, p) of `row`."""
    return (
        f"SELECT {columns} FROM reports_visitday x "
        f"WHERE x.person_id = {row}.p AND x.site_id = {row}.s AND x.d = {row}.{day}"
    )


def _starts(scope: _Scope) -> str:
    """Treatment starts in the period: a coverage run's first day with no coverage on days
    t-31 ... t-1 (a start is always the first day of a run: inside one, day t-1 is
    covered)."""
    return f"""
        SELECT site_id AS s, person_id AS p, cs AS t FROM reports_coveragerun c
        WHERE {scope.sites("c")} AND cs >= {scope.s} AND cs <= {scope.e}
          AND (pce IS NULL OR cs - pce - 1 >= {POD_NEGATIVE})
    """


def _starts_summary(cursor, scope: _Scope) -> tuple:
    """Per treatment start: continuity broken?, on hand at day 30/90/180, days covered;
    summed. Kept inside `shared()` (measures() and retention_curve() both need it)."""
    if _shared.active and "starts_summary" in _shared.values:
        return _shared.values["starts_summary"]
    e = scope.e
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
        FROM ({_starts(scope)}) AS st
        JOIN reports_coveragerun r ON r.person_id = st.p AND r.site_id = st.s
             AND r.cs >= st.t AND r.cs <= st.t + {max(RETENTION_DAYS)}
        GROUP BY st.s, st.p, st.t
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


def _m6(cursor, scope: _Scope) -> dict:
    cutoff = scope.e - APART_DAYS
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


def _m7(cursor, scope: _Scope) -> dict:
    # First half: the first period.days // 2 days; second half: the rest (the middle day of
    # an odd-length period belongs to the second half).
    # rt_pp has each person's first (f) and last (l) visit day in the period.
    mid = scope.s + scope.period.days // 2
    den, num = _one(
        cursor,
        f"""
        SELECT COUNT(*), SUM(CASE WHEN l >= {mid} THEN 1 ELSE 0 END)
        FROM rt_pp WHERE f < {mid}
        """,
    )
    return {**_ratio(num, den), "not_evaluable": 0}


def _m8(cursor, scope: _Scope) -> dict:
    # Whole 30-day blocks from the first visit in the period (f) that end by the period end
    # (nb of them); a person with no whole block yet is not yet evaluable. A block holds a
    # visit when some visit day in it is the first there: its previous visit day is before
    # the block's first day. Each such day adds 1/nb to its person's share; every person
    # with a whole block has a visit in the first one.
    e = scope.e
    nb = f"(({e} - pp.f + 1) / {BLOCK_DAYS})"
    den, ne = _one(
        cursor,
        f"SELECT SUM(CASE WHEN {nb} > 0 THEN 1 ELSE 0 END), "
        f"SUM(CASE WHEN {nb} = 0 THEN 1 ELSE 0 END) FROM rt_pp pp",
    )
    total = _one(
        cursor,
        f"""
        SELECT SUM(1.0 / {nb})
        FROM rt_pp pp JOIN ({scope.visit_days()}) AS v ON v.p = pp.p AND v.s = pp.s
        WHERE v.d < pp.f + {nb} * {BLOCK_DAYS}
          AND (v.d = pp.f OR v.prev < pp.f + (v.d - pp.f) / {BLOCK_DAYS} * {BLOCK_DAYS})
        """,
    )[0]
    den = int(den or 0)
    return {
        "value": round(float(total) / den, 4) if den else None,
        "denominator": den,
        "not_evaluable": int(ne or 0),
    }


def _m9(cursor, scope: _Scope) -> dict:
    """Welcome-backs: visits in the period that end a run of >= 31 days with no completed
    visit and no coverage (history before the period counts).

    The days without a visit before a visit day d run from the previous visit day; only
    where those are >= 31 can coverage matter, and then the latest end of a coverage run
    that started before d shortens the gap.
    """
    # The coverage run that started last before d has the latest end among those (runs do
    # not overlap): the one whose next run starts on d or later.
    gaps = f"""
        WITH ends AS (
            SELECT v.d, v.prev AS pv, r.ce
            FROM reports_visitday v
            LEFT JOIN reports_coveragerun r
                 ON r.person_id = v.person_id AND r.site_id = v.site_id AND r.cs < v.d
                AND (r.ncs IS NULL OR r.ncs >= v.d)
            WHERE {scope.days("v")} AND v.d - v.prev - 1 >= {INTERRUPTION_DAYS}
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


def _last_contacts(ids: tuple[int, ...], day: int) -> str:
    """Per person with a completed visit on or before `day` at these sites: the last visit
    day then (the one whose next visit day is later) and the last day of the coverage run
    going on or ended by then (the last run that had started: its next one had not)."""
    return f"""
        SELECT v.site_id AS s, v.person_id AS p, v.d AS last_visit, c.ce AS covered
        FROM reports_visitday v
        LEFT JOIN reports_coveragerun c
             ON c.person_id = v.person_id AND c.site_id = v.site_id AND c.cs <= {day}
            AND (c.ncs IS NULL OR c.ncs > {day})
        WHERE {_in_sites("v.site_id", ids)} AND v.d <= {day}
          AND (v.next IS NULL OR v.next > {day})
    """


def _m10(cursor, scope: _Scope) -> dict:
    e = scope.e
    since = "CASE WHEN covered > last_visit THEN covered ELSE last_visit END"
    count = _one(
        cursor,
        f"""
        SELECT COUNT(*) FROM ({_last_contacts(scope.ids, e)}) AS x
        WHERE {e} - {since} >= {INTERRUPTION_DAYS}
        """,
    )[0]
    return {"count": int(count or 0), "not_evaluable": 0}


def _site_day_sums(scope: _Scope, key: str = "1") -> str:
    return f"""
        SELECT {key} AS k, SUM(arrivals), SUM(lwbs), SUM(waiting), SUM(named), SUM(walk_in),
               SUM(named_waiting), SUM(visits), SUM(named_visits)
        FROM reports_siteday sd WHERE {scope.days("sd")} GROUP BY {key}
    """


def _visit_totals(cursor, scope: _Scope) -> dict:
    row = _one(cursor, _site_day_sums(scope))
    visits, named = (int(x or 0) for x in row[7:]) if row else (0, 0)
    _make_services(cursor, scope)
    kits, kit_people, deliveries = _one(
        cursor,
        f"""
        SELECT SUM(CASE WHEN s.code = '{NALOXONE_CODE}' AND s.site_id = x.s
                        THEN x.named ELSE 0 END),
               SUM(CASE WHEN s.code = '{NALOXONE_CODE}' AND s.site_id = x.s
                        THEN x.people ELSE 0 END),
               SUM(x.named)
        FROM rt_svc x JOIN clinic_service s ON s.id = x.sv
        """,
    )
    # METRICS.md: an anonymous contact counts in M12 and M17 only, so not in M13 or M14.
    return {
        "visits": visits,
        "named": named,
        "kits": int(kits or 0),
        "kit_people": int(kit_people or 0),
        "deliveries": int(deliveries or 0),
        "arrivals": tuple(int(x or 0) for x in row[1:7]) if row else (0,) * 6,
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


def _waits(scope: _Scope, key: str = "1") -> str:
    """(k, x): milliseconds from arrival to the visit's start, per key."""
    return f"""
        SELECT {key} AS k, w.ms AS x FROM reports_visitwait w
        WHERE {scope.days("w")} AND w.ms IS NOT NULL
    """


def _wait_stats(cursor, scope: _Scope) -> dict:
    """Waits in the period: count, median and 90th percentile over all ("all"), median per
    site ("site") and per week of `_week` ("week"). Kept inside `shared()`: the dashboard
    shows all three. (One pass with grouping sets is slower on PostgreSQL: the sorts are
    what costs, and it does them all the same.)"""
    if _shared.active and "waits" in _shared.values:
        return _shared.values["waits"]
    fractions = {"p50": (1, 2), "p90": (9, 10)}
    row = _one(cursor, _sql.percentiles_sql(_waits(scope), fractions))
    stats = {"all": row[1:] if row else None}
    for kind, key in (("site", "w.site_id"), ("week", _week(scope, "w"))):
        sql = _sql.percentiles_sql(_waits(scope, key), {"p50": (1, 2)})
        stats[kind] = {k: median for k, _n, median in _all(cursor, sql)}
    if _shared.active:
        _shared.values["waits"] = stats
    return stats


def _m16(cursor, scope: _Scope) -> dict:
    untimed = _one(
        cursor,
        f"SELECT COUNT(*) FROM reports_visitwait w WHERE {scope.days('w')} AND w.ms IS NULL",
    )[0]
    n, p50, p90 = _wait_stats(cursor, scope)["all"] or (0, None, None)
    return {
        "median_minutes": _minutes(p50),
        "p90_minutes": _minutes(p90),
        "denominator": int(n),
        "not_evaluable": int(untimed or 0),
    }


def _m17_m18(cursor, scope: _Scope, totals: dict) -> tuple[dict, dict]:
    arrivals, lwbs, waiting, named, walk_in, named_waiting = totals["arrivals"]
    period = scope.period
    seconds = _one(
        cursor,
        f"""
        SELECT SUM({_sql.millis_between("starts_at", "ends_at")}) FROM clinic_shift
        WHERE {_in_sites("site_id", scope.ids)}
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
    scope = _Scope(period, ids)
    with _session(("period", period, ids)) as cursor:
        _make_people(cursor, scope)
        m2, m3 = _m2_m3(cursor, scope)
        m4, m5, _ = _m4_m5(_starts_summary(cursor, scope))
        totals = _visit_totals(cursor, scope)
        m12 = _m12(cursor, totals)
        m17, m18 = _m17_m18(cursor, scope, totals)
        result = {
            "M2": m2,
            "M3": m3,
            "M4": m4,
            "M5": m5,
            "M6": _m6(cursor, scope),
            "M7": _m7(cursor, scope),
            "M8": _m8(cursor, scope),
            "M9": _m9(cursor, scope),
            "M10": _m10(cursor, scope),
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
            "M16": _m16(cursor, scope),
            "M17": m17,
            "M18": m18,
        }
    return result


def retention_curve(period: Period, site_ids: Sequence[int]) -> list[dict]:
    """M5 as a cohort curve: medication on hand at day 30, 90 and 180 after a start."""
    ids = _ids(site_ids)
    with _session(("period", period, ids)) as cursor:
        return _m4_m5(_starts_summary(cursor, _Scope(period, ids)))[2]


def _monday(d: date) -> date:
    return d - timedelta(days=d.weekday())


def _week(scope: _Scope, alias: str) -> str:
    """SQL for the week of a summary row's day: 0 for the week (Monday first) of the
    period's first day, 1 for the next..."""
    return f"(({alias}.d - {_sql.day_number(_monday(scope.period.start))}) / 7)"


def _grouped(cursor, scope: _Scope, key, people_sql: str) -> tuple[dict, dict]:
    """Visits and people, and arrival counts per group. `key(alias)` gives the group's SQL
    expression for a summary row; `people_sql` the people per group (k, n)."""
    people = {k: int(n) for k, n in _all(cursor, people_sql)}
    visits, arrivals = {}, {}
    for row in _all(cursor, _site_day_sums(scope, key("sd"))):
        visits[row[0]] = (int(row[7] or 0), people.get(row[0], 0))
        arrivals[row[0]] = tuple(int(x or 0) for x in row[1:7])
    return visits, arrivals


def weekly(period: Period, site_ids: Sequence[int]) -> list[dict]:
    """One row per week (Monday first) overlapping the period, counting only days in it."""
    ids = _ids(site_ids)
    scope = _Scope(period, ids)
    first = _monday(period.start)
    monday0 = _sql.day_number(first)

    # A person counts once a week, on their first visit day in the week's part of the
    # period: the one whose previous visit day is before that part starts.
    monday = f"{monday0} + 7 * {_week(scope, 'v')}"
    week_start = f"(CASE WHEN {monday} > {scope.s} THEN {monday} ELSE {scope.s} END)"
    people = f"""
        SELECT {_week(scope, "v")} AS k,
               SUM(CASE WHEN v.prev IS NULL OR v.prev < {week_start} THEN 1 ELSE 0 END)
        FROM reports_visitday v WHERE {scope.days("v")} GROUP BY {_week(scope, "v")}
    """
    with _session(("period", period, ids)) as cursor:
        visits, arrivals = _grouped(cursor, scope, lambda alias: _week(scope, alias), people)
        waits = _wait_stats(cursor, scope)["week"]
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
    scope = _Scope(period, ids)
    with _session(("period", period, ids)) as cursor:
        sites = _all(
            cursor,
            f"SELECT id, name FROM clinic_site WHERE {_in_sites('id', ids)} ORDER BY name, id",
        )
        _make_people(cursor, scope)
        visits, arrivals = _grouped(
            cursor,
            scope,
            lambda alias: f"{alias}.site_id",
            "SELECT s AS k, COUNT(*) FROM rt_pp GROUP BY s",
        )
        waits = _wait_stats(cursor, scope)["site"]
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
        _make_services(cursor, _Scope(period, ids))
        rows = _all(
            cursor,
            """
            SELECT s.name, MAX(s.code), SUM(x.n), SUM(x.people)
            FROM rt_svc x JOIN clinic_service s ON s.id = x.sv
            GROUP BY s.name
            ORDER BY SUM(x.n) DESC, s.name
            """,
        )
    return [
        {"service": name, "code": code or "", "visits": int(n), "people": int(people)}
        for name, code, n, people in rows
    ]


def coverage_runs(site_ids: Sequence[int], end: date) -> list[tuple[int, date, date]]:
    """(person id, first day, last day) of every run of medication coverage that has started
    by `end`, supplies stacked (a run's last day counts every event, also later ones).

    For checking the engine (tests, support questions); no page shows it.
    """
    ids = _ids(site_ids)
    with _session(("coverage", ids, end)) as cursor:
        rows = _all(
            cursor,
            f"""
            SELECT person_id, cs, ce FROM reports_coveragerun c
            WHERE {_in_sites("c.site_id", ids)} AND cs <= {_sql.day_number(end)}
            ORDER BY person_id, cs
            """,
        )
    return [(p, _sql.from_day_number(cs), _sql.from_day_number(ce)) for p, cs, ce in rows]


def outreach_list(site_ids: Sequence[int], as_of: date) -> list[dict]:
    """The people M10 counts at `as_of`, for care staff: longest time without contact first."""
    ids = _ids(site_ids)
    today = _sql.day_number(as_of)
    since = "CASE WHEN x.covered > x.last_visit THEN x.covered ELSE x.last_visit END"
    with _session(("outreach", ids, as_of)) as cursor:
        rows = _all(
            cursor,
            f"""
            SELECT x.p, pe.name, pe.site_id, x.last_visit, x.covered, pe.what_helps,
                   {today} - {since} AS days_since
            FROM ({_last_contacts(ids, today)}) AS x
            JOIN clinic_person pe ON pe.id = x.p
            WHERE {today} - {since} >= {INTERRUPTION_DAYS} AND pe.merged_into_id IS NULL
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
