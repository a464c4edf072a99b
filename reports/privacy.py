"""Small-count suppression for anything that leaves the system (CSV downloads).

METRICS.md: a count of 1-4 people is shown as "<5" in every export. Screens show the director
the real numbers; the `metrics` command (an operator tool) does too.

A rate or a median computed from a handful of people gives the handful away just as well
(2 of 40 is 5%), so those are withheld with the counts they come from. Counts of visits, kits
and arrivals are suppressed the same way: a row about a handful of visits is a row about a
handful of people. When in doubt, suppress.
"""

from collections.abc import Iterable, Mapping

SMALL = "<5"
WITHHELD = "suppressed"


def small_count(n: int | None) -> str | int | None:
    """`n` unless it is 1-4, which becomes "<5". Zero is not small: nobody is identified."""
    if n is None:
        return None
    return SMALL if 1 <= n <= 4 else n


def is_small(n) -> bool:
    return isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= 4


def rate_count(rate: float | None, denominator: int | None) -> int | None:
    """The numerator a rate and its (shown) denominator give away."""
    if rate is None or not denominator:
        return None
    return round(rate * denominator)


def suppress_row(
    row: Mapping, *, counts: Iterable[str], derived: Mapping[str, Iterable[str]] | None = None
) -> dict:
    """A copy of `row` for export: each field in `counts` through `small_count`, and each
    field in `derived` (a rate, mean or median) withheld when any count it is computed from
    is 1-4. A rate field named in `derived` also checks the numerator it reveals."""
    out = dict(row)
    for field, sources in (derived or {}).items():
        if out.get(field) is None:
            continue
        sources = list(sources)
        values = [row.get(source) for source in sources]
        if "rate" in field and len(sources) == 1:
            # A rate shown beside its denominator gives its numerator away.
            values.append(rate_count(row.get(field), row.get(sources[0])))
        if any(is_small(value) for value in values):
            out[field] = WITHHELD
    for field in counts:
        if field in out:
            out[field] = small_count(out[field])
    return out
