# ruff: noqa: S608 (fixed SQL and integers only; nothing typed by a user reaches the text)
"""The little that differs between PostgreSQL and SQLite in the report queries.

Everything else in reports/measures.py is plain SQL both engines run the same way. Dates are
turned into integer day numbers (days since 1970-01-01) so that "day k after d" is d + k on
both engines, and durations into whole milliseconds so that medians and percentiles are
computed with the same integer arithmetic everywhere.
"""

from datetime import date

from django.db import connection

EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def day_number(d: date) -> int:
    return d.toordinal() - EPOCH_ORDINAL


def from_day_number(n: int) -> date:
    return date.fromordinal(n + EPOCH_ORDINAL)


def is_postgres() -> bool:
    return connection.vendor == "postgresql"


def dn(column: str) -> str:
    """SQL for the day number of a DATE column or expression."""
    if is_postgres():
        return f"({column} - DATE '1970-01-01')"
    # julianday('1970-01-01') is exactly 2440587.5 and every date is a whole day away from it.
    return f"CAST(julianday({column}) - 2440587.5 AS INTEGER)"


def millis_between(earlier: str, later: str) -> str:
    """SQL for `later - earlier` (two timestamp columns) in whole milliseconds."""
    if is_postgres():
        # date_part gives double precision (EXTRACT gives numeric, much slower to compute).
        return f"CAST(ROUND(date_part('epoch', {later} - {earlier}) * 1000) AS BIGINT)"
    # julianday keeps ~50 microseconds of precision at today's dates: rounding to the
    # millisecond gives the exact value PostgreSQL gives.
    return f"CAST(ROUND((julianday({later}) - julianday({earlier})) * 86400000.0) AS INTEGER)"


def drop_temporary(cursor, name: str) -> None:
    """Drop a temporary table if it exists; qualified with the temporary schema, so never a
    permanent table of the same name."""
    schema = "pg_temp" if is_postgres() else "temp"
    cursor.execute(f"DROP TABLE IF EXISTS {schema}.{name}")


def placeholders(values) -> str:
    return ", ".join(["%s"] * len(values))


def percentiles_sql(source: str, fractions: dict[str, tuple[int, int]]) -> str:
    """SQL giving, per key `k`, the count `n` and percentiles of `x` in `source` (a query with
    columns k, x).

    `fractions` maps an output column to a fraction as (numerator, denominator), e.g.
    {"p50": (1, 2), "p90": (9, 10)}. Linear interpolation between the two nearest ranks:
    position h = (n - 1) * p counted from 0, value = x[floor(h)] + (x[floor(h) + 1] -
    x[floor(h)]) * frac(h); the median is the usual median. PostgreSQL has this built in
    (percentile_cont); SQLite gets the same arithmetic from ROW_NUMBER and COUNT windows,
    with the position computed in integers.
    """
    if is_postgres():
        cols = [
            f"percentile_cont({int(num)} / {float(den)}) WITHIN GROUP (ORDER BY x) AS {name}"
            for name, (num, den) in fractions.items()
        ]
        return f"SELECT k, COUNT(*) AS n, {', '.join(cols)} FROM ({source}) AS src GROUP BY k"
    cols = []
    for name, (num, den) in fractions.items():
        num, den = int(num), int(den)
        lo = f"((n - 1) * {num}) / {den}"
        rem = f"((n - 1) * {num}) % {den}"
        x_lo = f"MAX(CASE WHEN i = {lo} THEN x END)"
        x_hi = f"COALESCE(MAX(CASE WHEN i = {lo} + 1 THEN x END), {x_lo})"
        frac = f"MAX({rem}) * 1.0 / {den}"
        cols.append(f"{x_lo} + ({x_hi} - {x_lo}) * {frac} AS {name}")
    return f"""
        SELECT k, MAX(n) AS n, {", ".join(cols)}
        FROM (
            SELECT k, x,
                   ROW_NUMBER() OVER (PARTITION BY k ORDER BY x) - 1 AS i,
                   COUNT(*) OVER (PARTITION BY k) AS n
            FROM ({source}) AS src
        ) AS ranked
        GROUP BY k
    """
