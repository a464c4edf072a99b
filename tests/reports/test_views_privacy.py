"""reports.privacy: what a download may show of a small count (METRICS.md: 1-4 people)."""

import pytest

from reports.privacy import SMALL, WITHHELD, small_count, suppress_row


@pytest.mark.parametrize(
    ("n", "shown"),
    [(0, 0), (1, SMALL), (4, SMALL), (5, 5), (1234, 1234), (None, None)],
)
def test_small_count_hides_one_to_four(n, shown):
    assert small_count(n) == shown


def test_a_rate_beside_its_denominator_is_withheld_when_it_gives_a_small_count_away():
    # 3 walk-ins of 100 arrivals: "3%" beside "100" says 3 people.
    row = {"arrivals": 100, "walk_in_rate": 0.03}
    assert suppress_row(row, counts=["arrivals"], derived={"walk_in_rate": ("arrivals",)}) == {
        "arrivals": 100,
        "walk_in_rate": WITHHELD,
    }
    # 30 of 100 is safe to show.
    row = {"arrivals": 100, "walk_in_rate": 0.3}
    assert suppress_row(row, counts=["arrivals"], derived={"walk_in_rate": ("arrivals",)}) == row


def test_a_median_over_a_handful_is_withheld_and_a_missing_one_stays_missing():
    rule = {"median": ("n",)}
    assert suppress_row({"n": 2, "median": 14.0}, counts=["n"], derived=rule) == {
        "n": SMALL,
        "median": WITHHELD,
    }
    assert suppress_row({"n": 0, "median": None}, counts=["n"], derived=rule) == {
        "n": 0,
        "median": None,
    }
    assert suppress_row({"n": 9, "median": 14.0}, counts=["n"], derived=rule) == {
        "n": 9,
        "median": 14.0,
    }
