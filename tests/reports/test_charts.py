"""The dashboard's SVG charts, on hand-made rows shaped like reports.measures' output.

These fakes live only here: the views are tested against the real engine (test_views.py).
"""

import re
from datetime import date, timedelta

import pytest

from reports import charts
from reports.charts import Point, nice_ticks


def weeks(values, *, first=date(2025, 1, 6)):
    """Rows shaped like measures.weekly(): one per Monday."""
    rows = []
    for i, value in enumerate(values):
        rows.append(
            {
                "week": first + timedelta(weeks=i),
                "visits": value if value is not None else 0,
                "people": value if value is not None else 0,
                "arrivals": 0,
                "lwbs": 0,
                "lwbs_rate": None,
                "median_wait_minutes": value,
            }
        )
    return rows


def y_tick_labels(svg: str) -> list[str]:
    return re.findall(r'text-anchor="end" fill="#1b1f24">([^<]+)</text>', svg)


def x_tick_labels(svg: str) -> list[str]:
    return re.findall(r'text-anchor="middle" fill="#1b1f24">([^<]+)</text>', svg)


@pytest.mark.parametrize(
    ("maximum", "integer", "expected"),
    [
        # Nothing to show: still a readable 0..1 axis, not a division by zero.
        (0, False, [0, 0.2, 0.4, 0.6, 0.8, 1.0]),
        (None, False, [0, 0.2, 0.4, 0.6, 0.8, 1.0]),
        # 7 visits / 5 intervals = 1.4 a step -> 2; top 8.
        (7, True, [0, 2, 4, 6, 8]),
        # 1234 / 5 = 246.8 -> 250 (2.5 x 100); top 1250.
        (1234, True, [0, 250, 500, 750, 1000, 1250]),
        # A 13.7% rate: 0.0274 a step -> 0.05; top 0.15.
        (0.137, False, [0, 0.05, 0.1, 0.15]),
        # Counts never get half-visit ticks: 3 / 5 = 0.6 -> 1.
        (3, True, [0, 1, 2, 3]),
    ],
)
def test_ticks_fall_on_round_steps_and_cover_the_largest_value(maximum, integer, expected):
    assert nice_ticks(maximum, integer=integer) == pytest.approx(expected)


def test_a_missing_week_is_a_gap_in_the_line_not_a_zero():
    # Median wait 12, (nobody timed), 30, 18: the line stops before the gap and restarts after.
    points = [Point(label=f"w{i}", value=v) for i, v in enumerate([12, None, 30, 18])]
    svg = str(charts.line_chart(points, chart_id="c", title="Wait", y_caption="min", fmt=str))
    paths = re.findall(r'<path d="([^"]+)"', svg)
    # One drawn segment (w2-w3); w0 stands alone as a marker. Three markers, none for w1.
    assert len(paths) == 1
    assert paths[0].count("M") == 1 and paths[0].count("L") == 1
    assert svg.count("<circle") == 3
    assert "w1:" not in svg
    assert "1 week has no value and is left as a gap." in svg
    # Nothing is drawn at zero for the gap: every marker sits above the baseline.
    baseline = charts.TOP + charts.PLOT_H
    ys = [float(y) for y in re.findall(r'<circle cx="[^"]+" cy="([^"]+)"', svg)]
    assert all(y < baseline for y in ys)


def test_charts_are_accessible_and_fetch_nothing():
    rows = weeks([3, 5, 8, 2])
    svg = str(
        charts.bar_chart(
            charts.week_points(rows, "visits", start=date(2025, 1, 6), end=date(2025, 2, 2)),
            chart_id="chart-contacts",
            title="Contacts per week",
            y_caption="Completed visits",
        )
    )
    assert svg.startswith('<svg class="chart" id="chart-contacts"')
    assert 'role="img"' in svg and 'aria-label="Contacts per week"' in svg
    # The name is the title alone; the description is read after it.
    assert 'aria-describedby="chart-contacts-desc"' in svg
    assert '<title id="chart-contacts-title">Contacts per week</title>' in svg
    # The description says what a sighted reader sees: range, highest, lowest, latest.
    desc = re.search(r'<desc id="chart-contacts-desc">([^<]+)</desc>', svg).group(1)
    assert "4 weeks from 6 Jan 2025 to 27 Jan 2025" in desc
    assert "Highest 8 (week of 20 Jan 2025)" in desc and "lowest 2" in desc
    assert "latest 2" in desc
    assert "http" not in svg.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "<script" not in svg
    # 0..8 in steps of 2, each labelled.
    assert y_tick_labels(svg) == ["0", "2", "4", "6", "8"]


def test_text_is_escaped():
    points = [Point(label="<b>week</b>", value=1)]
    svg = str(
        charts.line_chart(
            points, chart_id="x", title='<script>"t"</script>', y_caption="&", fmt=str
        )
    )
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert "<b>" not in svg


def test_weeks_sticking_out_of_the_period_are_drawn_as_partial():
    # Period Wed 8 Jan .. Sun 26 Jan 2025: the week of 6 Jan starts before it; the week of
    # 20 Jan ends on the 26th, inside it.
    rows = weeks([4, 6, 5])
    points = charts.week_points(rows, "visits", start=date(2025, 1, 8), end=date(2025, 1, 26))
    assert [p.partial for p in points] == [True, False, False]
    svg = str(charts.bar_chart(points, chart_id="c", title="t", y_caption="y"))
    assert svg.count(f'fill="{charts.PARTIAL}"') == 1
    assert svg.count(f'fill="{charts.SERIES}"') == 2
    assert "Lighter columns are weeks only partly inside the period." in svg


def test_a_long_period_gets_a_few_readable_dates_with_the_year_where_it_changes():
    # 60 weeks from 2 Dec 2024: at most 7 labels, the latest week always labelled, the year
    # written on the first label and on the first label of 2025 and 2026.
    rows = weeks(list(range(60)), first=date(2024, 12, 2))
    points = charts.week_points(rows, "visits", start=date(2024, 12, 2), end=date(2026, 1, 25))
    svg = str(charts.bar_chart(points, chart_id="c", title="t", y_caption="y"))
    labels = x_tick_labels(svg)
    assert 2 <= len(labels) <= charts.MAX_X_LABELS
    assert labels[-1] == "19 Jan 2026"  # the 60th Monday
    with_year = [label for label in labels if re.search(r"\d{4}$", label)]
    assert with_year[0] == labels[0]
    assert any("2025" in label for label in with_year)
    assert [label for label in labels if "2026" in label] == ["19 Jan 2026"]


def test_retention_curve_points_carry_percent_and_cohort_size():
    rows = [
        {"day": 30, "numerator": 8, "denominator": 10, "rate": 0.8, "not_evaluable": 0},
        {"day": 90, "numerator": 3, "denominator": 6, "rate": 0.5, "not_evaluable": 4},
        {"day": 180, "numerator": 0, "denominator": 0, "rate": None, "not_evaluable": 10},
    ]
    svg = str(charts.retention_chart(rows, chart_id="r", title="On hand"))
    assert svg.count("<circle") == 2
    assert "80% of 10" in svg and "50% of 6" in svg
    assert "not yet evaluable" in svg
    assert "Not yet evaluable: day 180." in svg
    assert y_tick_labels(svg) == ["0%", "20%", "40%", "60%", "80%", "100%"]


def test_the_last_label_goes_below_its_point_when_the_line_comes_down_to_it():
    def label_and_point(rows, text):
        svg = str(charts.retention_chart(rows, chart_id="r", title="On hand"))
        label_y = float(re.search(rf'<text[^>]* y="([0-9.]+)"[^>]*>{text}</text>', svg)[1])
        point_y = float(re.findall(r'<circle[^>]* cy="([0-9.]+)"', svg)[-1])
        return label_y, point_y

    def row(day, rate):
        return {"day": day, "numerator": 1, "denominator": 9, "rate": rate, "not_evaluable": 0}

    falling = [row(30, 0.73), row(90, 0.72), row(180, 0.39)]
    label_y, point_y = label_and_point(falling, "39% of 9")
    assert label_y > point_y  # below: the falling line arrives from the upper left
    rising = [row(30, 0.2), row(90, 0.3), row(180, 0.6)]
    label_y, point_y = label_and_point(rising, "60% of 9")
    assert label_y < point_y


def test_retention_curve_with_nothing_evaluable_says_so():
    rows = [
        {"day": d, "numerator": 0, "denominator": 0, "rate": None, "not_evaluable": 2}
        for d in (30, 90, 180)
    ]
    svg = str(charts.retention_chart(rows, chart_id="r", title="On hand"))
    assert "<circle" not in svg and "<path" not in svg
    assert "No medication starts are far enough in the past to evaluate yet." in svg


def test_a_long_line_keeps_markers_only_where_a_value_stands_alone():
    # 40 weeks: the line carries them; only week 20, with gaps either side, gets a marker.
    values = [10.0] * 40
    values[19] = values[21] = None
    points = [Point(label=f"w{i}", value=v) for i, v in enumerate(values)]
    svg = str(charts.line_chart(points, chart_id="c", title="t", y_caption="y", fmt=str))
    assert svg.count("<circle") == 1
    assert "<title>w20: 10.0</title>" in svg
    assert svg.count("<path") == 2  # weeks 0-18 and 22-39
