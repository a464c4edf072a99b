"""M13, M14, M16, M17, M18, the weekly/site/service tables, scoping and the period rules."""

from datetime import date

import pytest

from reports import _sql
from reports.measures import (
    Period,
    by_service,
    by_site,
    measures,
    outreach_list,
    retention_curve,
    shared,
    weekly,
)
from tests.reports.conftest import D

pytestmark = pytest.mark.django_db


def run(sites, start: int, end: int) -> dict:
    return measures(Period(D(start), D(end)), [s.pk for s in sites])


def test_naloxone_kits_and_services_per_visit(build, site, other_site):
    # Period D0..D99.
    # A: D1 naloxone + wound care; D2 naloxone.      B: D3, no services.
    # C: D4 wound care + counselling + primary care.  Anonymous: D5 naloxone.
    # Another site's naloxone visit, and a visit after the end: out of scope.
    a, b, c = (build.person() for _ in range(3))
    build.visit(a, D(1), services=["naloxone", "wound-care"])
    build.visit(a, D(2), services=["naloxone"])
    build.visit(b, D(3))
    build.visit(c, D(4), services=["wound-care", "counselling", "primary-care"])
    build.visit(None, D(5), services=["naloxone"])
    build.visit(build.person(site=other_site), D(5), site=other_site, services=["naloxone"])
    build.visit(b, D(100), services=["naloxone"])
    result = run([site], 0, 99)
    # An anonymous contact counts in M12 and M17 only (METRICS.md), so not here.
    # Kits: A 2 = 2. People given naloxone: A = 1 of 3 people (A, B, C).
    assert result["M13"] == {
        "count": 2,
        "numerator": 1,
        "denominator": 3,
        "rate": 0.3333,
        "not_evaluable": 0,
    }
    # Services: 2 + 1 + 0 + 3 = 6 over 4 named visits = 1.5.
    assert result["M14"] == {"value": 1.5, "numerator": 6, "denominator": 4, "not_evaluable": 0}
    # The anonymous naloxone contact is still a contact.
    assert result["M12"]["count"] == 5
    assert result["M12"]["anonymous"] == 1


def test_wait_median_and_90th_percentile(build, site):
    # Period D0..D9. Ten timed visits waiting 5, 10, ..., 45 and 120 minutes.
    # Median (25 + 30) / 2 = 27.5. p90: position (10 - 1) * 0.9 = 8.1 between the 9th (45)
    # and 10th (120) values: 45 + 0.1 * 75 = 52.5.
    for minutes in (5, 10, 15, 20, 25, 30, 35, 40, 45, 120):
        build.visit(build.person(), D(minutes % 10), waited=minutes)
    build.visit(build.person(), D(1), imported=True)  # imported: no clock times
    build.visit(build.person(), D(1))  # outreach-style visit with no arrival: not timed
    build.visit(None, D(1), waited=500)  # anonymous: not a person measure
    build.lwbs(build.person(), D(1))  # left before being seen: no visit, no wait
    build.visit(build.person(), D(10), waited=900)  # after the end
    assert run([site], 0, 9)["M16"] == {
        "median_minutes": 27.5,
        "p90_minutes": 52.5,
        "denominator": 10,
        "not_evaluable": 1,
    }


def test_wait_percentiles_with_an_odd_count_and_fractions_of_minutes(build, site):
    # Waits 1.5, 2 and 10 minutes: median 2; p90 position 2 * 0.9 = 1.8: 2 + 0.8 * 8 = 8.4.
    for minutes in (10, 1.5, 2):
        build.visit(build.person(), D(0), waited=minutes)
    m16 = run([site], 0, 0)["M16"]
    assert (m16["median_minutes"], m16["p90_minutes"]) == (2.0, 8.4)


def test_no_timed_visits_means_no_wait_figures(build, site):
    build.visit(build.person(), D(0), imported=True)
    assert run([site], 0, 0)["M16"] == {
        "median_minutes": None,
        "p90_minutes": None,
        "denominator": 0,
        "not_evaluable": 1,
    }


@pytest.mark.parametrize(
    ("values", "fraction", "expected"),
    [
        ([7], (1, 2), 7),
        ([1, 2], (1, 2), 1.5),
        ([4, 1, 3, 2], (1, 2), 2.5),
        ([4, 1, 3, 2], (9, 10), 3.7),  # (4 - 1) * 0.9 = 2.7: 3 + 0.7 * 1
        ([10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110], (9, 10), 100),  # position 9 exactly
        ([5, 5, 5, 6], (9, 10), 5.7),
    ],
)
def test_percentiles_interpolate_like_percentile_cont(values, fraction, expected):
    from django.db import connection

    source = " UNION ALL ".join(f"SELECT 1 AS k, {v} AS x" for v in values)
    with connection.cursor() as cursor:
        cursor.execute(_sql.percentiles_sql(source, {"q": fraction}))
        (_key, n, value), *rest = cursor.fetchall()
    assert not rest
    assert n == len(values)
    assert float(value) == pytest.approx(expected)


def test_left_before_seen_and_walk_in_share(build, site, other_site, clinician, second_clinician):
    # Period D0..D9.
    # Named arrivals with an outcome: 3 seen (1 with an appointment), 1 LWBS with an
    # appointment, 1 still with staff (outcome known: being seen).
    # Anonymous: 1 LWBS, 1 seen (an arrival that became an anonymous visit).
    # Still waiting (today): 1 named -> not yet evaluable.
    p = [build.person() for _ in range(6)]
    build.visit(p[0], D(0), waited=5)
    build.visit(p[1], D(1), waited=5)
    build.visit(p[2], D(2), waited=5, appointment=True)
    build.lwbs(p[3], D(2), appointment=True)
    build.arrival(p[4], D(3), state="with_staff")
    build.lwbs(None, D(3))
    build.visit(None, D(4), waited=3)
    build.arrival(p[5], D(9), state="waiting")
    build.lwbs(build.person(site=other_site), D(3), site=other_site)  # another site
    build.lwbs(p[0], D(10))  # after the end
    # Shifts: 8 hours and 4 hours in the period; one after the end, one at another site.
    build.shift(clinician, D(0), 8)
    build.shift(second_clinician, D(1), 4)
    build.shift(clinician, D(10), 8)
    build.shift(clinician, D(2), 6, site=other_site)
    result = run([site], 0, 9)
    # M17 (anonymous included): known outcomes 3 + 1 + 1 + 1 + 1 = 7; LWBS 2; waiting 1.
    assert result["M17"] == {"numerator": 2, "denominator": 7, "rate": 0.2857, "not_evaluable": 1}
    # M18 (people only): known 5 (3 seen, 1 LWBS, 1 with staff), walk-ins 5 - 2 = 3.
    # Visits per staff-hour: 3 named visits / 12 hours = 0.25.
    assert result["M18"] == {
        "numerator": 3,
        "denominator": 5,
        "rate": 0.6,
        "visits_per_staff_hour": 0.25,
        "staff_hours": 12.0,
        "not_evaluable": 1,
    }


def test_visits_per_staff_hour_is_not_evaluable_without_shifts(build, site):
    build.visit(build.person(), D(0))
    m18 = run([site], 0, 0)["M18"]
    assert (m18["visits_per_staff_hour"], m18["staff_hours"]) == (None, 0.0)


def test_sites_restrict_everything(build, site, other_site):
    # P visits the other site on D0 and this site on D10, and leaves unseen there on D20.
    # Period D0..D100. (The check-in and visit services keep a person's visits at their own
    # site; the builder here does not, to show that each site's history stays its own.)
    # This site alone: D10 is P's first visit here: an episode, nothing initiates it.
    # Both sites: still each site's history on its own: two episodes (D0 there, D10 here),
    # neither initiated; the D10 visit does not initiate the other site's episode.
    p = build.person()
    build.visit(p, D(0), site=other_site)
    build.visit(p, D(10))
    build.lwbs(p, D(20), site=other_site)
    here = run([site], 0, 100)
    assert (here["M2"]["numerator"], here["M2"]["denominator"]) == (0, 1)
    assert here["M12"]["count"] == 1
    assert here["M17"]["denominator"] == 0
    both = run([site, other_site], 0, 100)
    assert (both["M2"]["numerator"], both["M2"]["denominator"]) == (0, 2)
    assert both["M12"]["count"] == 2
    assert both["M17"]["denominator"] == 1
    # Period D5..D100: D0 at the other site is before the period and does not look back
    # into this site's history: D10 is an episode either way.
    assert run([site], 5, 100)["M2"]["denominator"] == 1
    assert run([site, other_site], 5, 100)["M2"]["denominator"] == 1
    assert run([], 0, 100)["M12"]["count"] == 0


def test_nothing_after_the_period_end_changes_any_measure(build, site, clinician):
    # A history up to D100, computed; then visits, medication, arrivals and shifts after
    # D100 are added: every figure for D0..D100 stays the same.
    a, b = build.person(), build.person()
    build.visit_with_med(a, D(0), 14)
    build.visit(a, D(40))
    build.visit(b, D(60), waited=10)
    build.lwbs(b, D(70))
    build.shift(clinician, D(5), 8)
    before = run([site], 0, 100)
    build.visit_with_med(a, D(101), 90)
    build.visit(b, D(101), waited=30, services=["naloxone"])
    build.lwbs(a, D(102))
    build.visit(build.person(), D(150))
    build.shift(clinician, D(101), 8)
    after = run([site], 0, 100)
    assert after == before
    # ...while the same additions do show in a period that includes them.
    assert run([site], 0, 101)["M12"]["count"] == before["M12"]["count"] + 2


def test_weekly_rows_cover_the_weeks_overlapping_the_period(build, site):
    # Period Wed D2 .. Tue D15 (D0 is a Monday): weeks of D0, D7 and D14, counting only days
    # in the period.
    a, b = build.person(), build.person()
    build.visit(a, D(1))  # Tuesday before the period: not counted
    build.visit(a, D(2), waited=4)
    build.visit(b, D(8), waited=10)
    build.visit(b, D(8), waited=20)
    build.lwbs(a, D(9))
    build.visit(None, D(15))
    build.visit(a, D(16))  # after the end
    rows = weekly(Period(D(2), D(15)), [site.pk])
    assert rows == [
        {
            "week": D(0),
            "visits": 1,
            "people": 1,
            "arrivals": 1,
            "lwbs": 0,
            "lwbs_rate": 0.0,
            "median_wait_minutes": 4.0,
        },
        {
            # 2 visits by B; arrivals: B's 2 + A's LWBS = 3, LWBS 1; median (10 + 20) / 2.
            "week": D(7),
            "visits": 2,
            "people": 1,
            "arrivals": 3,
            "lwbs": 1,
            "lwbs_rate": 0.3333,
            "median_wait_minutes": 15.0,
        },
        {
            "week": D(14),
            "visits": 1,
            "people": 0,
            "arrivals": 0,
            "lwbs": 0,
            "lwbs_rate": None,
            "median_wait_minutes": None,
        },
    ]


def test_weekly_people_count_each_person_once_a_week(build, site):
    # D0 is a Monday; period D0 .. D20, three weeks.
    # C: Mon D7 and Wed D9 (one week), Mon D14 and Sun D20 (the next). E: Thu D3, Wed D10.
    # People per week: {E}, {C, E}, {C}; visits: 1, 3, 2.
    c, e = build.person(), build.person()
    for day in (7, 9, 14, 20):
        build.visit(c, D(day))
    for day in (3, 10):
        build.visit(e, D(day))
    rows = weekly(Period(D(0), D(20)), [site.pk])
    assert [(row["week"], row["visits"], row["people"]) for row in rows] == [
        (D(0), 1, 1),
        (D(7), 3, 2),
        (D(14), 2, 1),
    ]
    # Starting on Wednesday D9: C's Monday D7 is before the period, so D9 is C's first day in
    # the period's part of that week; E's D10 counts too.
    rows = weekly(Period(D(9), D(20)), [site.pk])
    assert [(row["week"], row["visits"], row["people"]) for row in rows] == [
        (D(7), 2, 2),
        (D(14), 2, 1),
    ]


def test_by_site_and_by_service(build, site, other_site):
    # Riverside: A seen twice (waits 10, 30), one LWBS, one naloxone kit to A.
    # Hillside: B seen once (wait 6, with an appointment), one naloxone kit to B.
    a = build.person()
    b = build.person(site=other_site)
    build.visit(a, D(0), waited=10, services=["naloxone"])
    build.visit(a, D(1), waited=30, services=["wound-care"])
    build.lwbs(a, D(2))
    build.visit(b, D(0), waited=6, site=other_site, services=["naloxone"], appointment=True)
    period = Period(D(0), D(9))
    assert by_site(period, [site.pk, other_site.pk]) == [
        {
            "site_id": other_site.pk,
            "site": "Hillside",
            "visits": 1,
            "people": 1,
            "arrivals": 1,
            "lwbs": 0,
            "lwbs_rate": 0.0,
            "median_wait_minutes": 6.0,
            "walk_in_rate": 0.0,
        },
        {
            "site_id": site.pk,
            "site": "Riverside",
            "visits": 2,
            "people": 1,
            "arrivals": 3,
            "lwbs": 1,
            "lwbs_rate": 0.3333,
            "median_wait_minutes": 20.0,
            "walk_in_rate": 1.0,
        },
    ]
    # The two sites' naloxone services share a name: one row, 2 visits by 2 people.
    assert by_service(period, [site.pk, other_site.pk]) == [
        {"service": "Naloxone", "code": "naloxone", "visits": 2, "people": 2},
        {"service": "Wound care", "code": "wound-care", "visits": 1, "people": 1},
    ]
    assert by_service(period, [site.pk]) == [
        {"service": "Naloxone", "code": "naloxone", "visits": 1, "people": 1},
        {"service": "Wound care", "code": "wound-care", "visits": 1, "people": 1},
    ]


@pytest.mark.parametrize(
    ("start", "end", "ok"),
    [
        (date(2025, 1, 1), date(2025, 1, 1), True),
        (date(2025, 1, 2), date(2025, 1, 1), False),
        (date(2024, 1, 1), date(2027, 1, 2), True),  # three years and a day
        (date(2024, 1, 1), date(2027, 1, 3), False),
        (date(2024, 2, 29), date(2027, 3, 1), True),
    ],
)
def test_period_validation(start, end, ok):
    if ok:
        assert Period(start, end).end == end
    else:
        with pytest.raises(ValueError):
            Period(start, end)


def test_shared_tables_give_the_same_figures_as_separate_calls(build, site, other_site):
    # Inside shared() the functions reuse one set of temporary tables; a call for another
    # period (or the outreach list) in between must not leak into the figures.
    a, b = build.person(name="Ari"), build.person(name="Bo")
    build.visit_with_med(a, D(0), 30)
    build.visit(a, D(50), waited=12, services=["naloxone"])
    build.visit(b, D(3), waited=30)
    build.lwbs(b, D(4))
    build.visit(build.person(site=other_site), D(5), site=other_site, waited=2)
    period, other = Period(D(0), D(99)), Period(D(0), D(9))
    ids = [site.pk, other_site.pk]
    alone = [
        measures(period, ids),
        weekly(period, ids),
        retention_curve(period, ids),
        by_site(period, ids),
        by_service(period, ids),
    ]
    shorter = measures(other, ids)
    listed = outreach_list(ids, D(99))
    with shared():
        together = [
            measures(period, ids),
            weekly(period, ids),
            retention_curve(period, ids),
            by_site(period, ids),
        ]
        assert measures(other, ids) == shorter
        assert outreach_list(ids, D(99)) == listed
        together += [by_service(period, ids)]
        assert measures(period, [site.pk]) != alone[0]  # a different scope is recomputed
    assert together == alone
    assert shorter["M12"]["count"] == 3 and alone[0]["M12"]["count"] == 4
