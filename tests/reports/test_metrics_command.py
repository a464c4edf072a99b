"""`manage.py metrics`: every measure as JSON or as a table, and clear errors."""

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from reports.management.commands.metrics import Command
from tests.reports.conftest import D

pytestmark = pytest.mark.django_db

IDS = [
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
]
RATIO = {"numerator", "denominator", "rate", "not_evaluable"}


def metrics(*args) -> str:
    out = StringIO()
    call_command("metrics", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def history(build, site, other_site):
    # Riverside, period D100..D200:
    # A: visits D0 and D140 -> a welcome-back after 139 days (D1..D139); as of D200, 60
    #    days without a visit -> haven't seen in a while.
    # B: visits D100 (waited 10 min) and D101 (waited 20 min) -> last seen D101: as of D200,
    #    99 days -> haven't seen in a while. Waits: median 15, p90 10 + 0.9 * 10 = 19.
    # C: visit D-50 only -> 250 days at D200 -> haven't seen in a while.
    # Hillside: D visits D150 and leaves unseen on D151.
    a, b, c = build.person(), build.person(), build.person()
    build.visit(a, D(0))
    build.visit(a, D(140))
    build.visit(b, D(100), waited=10)
    build.visit(b, D(101), waited=20)
    build.visit(c, D(-50))
    d = build.person(site=other_site)
    build.visit(d, D(150), site=other_site)
    build.lwbs(d, D(151), site=other_site)


def test_json_has_every_measure_with_the_documented_shape(history):
    result = json.loads(metrics("--start", str(D(100)), "--end", str(D(200)), "--format", "json"))
    assert list(result) == IDS
    for measure_id in ("M2", "M3", "M4", "M6", "M7", "M17"):
        assert set(result[measure_id]) == RATIO
    assert set(result["M5"]) == RATIO | {"day_30", "day_90", "day_180", "pdc_180"}
    assert set(result["M5"]["pdc_180"]) == {"value", "denominator", "not_evaluable"}
    assert set(result["M8"]) == {"value", "denominator", "not_evaluable"}
    assert set(result["M12"]) == {
        "count",
        "people",
        "new_people",
        "returning_people",
        "anonymous",
        "not_evaluable",
    }
    assert set(result["M13"]) == RATIO | {"count"}
    assert set(result["M14"]) == {"value", "numerator", "denominator", "not_evaluable"}
    assert set(result["M18"]) == RATIO | {"visits_per_staff_hour", "staff_hours"}
    # Figures from the fixture's comments (both sites: D is at Hillside).
    assert result["M9"] == {"count": 1, "median_days": 139.0, "not_evaluable": 0}
    # A (60 days), B (99), C (250), and at Hillside D (D151..D200: 50 days).
    assert result["M10"] == {"count": 4, "not_evaluable": 0}
    assert result["M16"] == {
        "median_minutes": 15.0,
        "p90_minutes": 19.0,
        "denominator": 2,
        "not_evaluable": 0,
    }
    # Visits in the period: A D140, B D100, B D101, D D150 = 4 by 3 people.
    assert (result["M12"]["count"], result["M12"]["people"]) == (4, 3)


def test_site_option_restricts_to_one_site(history):
    args = ["--start", str(D(100)), "--end", str(D(200)), "--format", "json"]
    here = json.loads(metrics(*args, "--site", "riverside"))
    there = json.loads(metrics(*args, "--site", "hillside"))
    # Riverside: visits A D140, B D100, B D101; M10 A, B, C; arrivals: B's two.
    assert (here["M12"]["count"], here["M10"]["count"], here["M17"]["denominator"]) == (3, 3, 2)
    # Hillside: D's visit, D in M10, one arrival, and it left before being seen.
    assert (there["M12"]["count"], there["M10"]["count"], there["M17"]["denominator"]) == (1, 1, 1)
    assert there["M17"]["numerator"] == 1


def test_table_is_the_default_and_names_every_measure(history):
    out = metrics("--start", str(D(100)), "--end", str(D(200)), "--site", "riverside")
    lines = out.splitlines()
    assert lines[0] == f"Process measures {D(100)} to {D(200)} (riverside)"
    assert [line.split()[0] for line in lines[1:]] == IDS
    assert "Welcome-backs" in out and "1 (median interruption 139 days)" in out
    assert "median 15 min, 90th percentile 19 min over 2 visits" in out
    assert next(line for line in lines if line.startswith("M10")).endswith(" 3 people")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--start", "2025-13-01", "--end", "2025-12-31"], "--start must be a date"),
        (["--start", "2025-01-01", "--end", "soon"], "--end must be a date"),
        (["--start", "2025-02-01", "--end", "2025-01-31"], "starts after it ends"),
        (["--start", "2020-01-01", "--end", "2025-01-01"], "longer than three years"),
        (["--start", "2025-01-01", "--end", "2025-01-31", "--site", "nowhere"], "No site"),
    ],
)
def test_bad_arguments_are_clear_errors(site, args, message):
    with pytest.raises(CommandError, match=message):
        metrics(*args)


def test_errors_exit_non_zero_from_the_command_line(site, capsys):
    with pytest.raises(SystemExit) as exited:
        Command().run_from_argv(
            ["manage.py", "metrics", "--start", "2025-02-01", "--end", "2025-01-31"]
        )
    assert exited.value.code == 1
    assert "starts after it ends" in capsys.readouterr().err
