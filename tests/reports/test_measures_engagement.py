"""M2, M3, M6, M7, M8 and M12 on hand-worked scenarios (METRICS.md; day k of d is d + k).

Scenario dates are D(n): n days after a fixed Monday. Every expected number is worked out in
the comments from the rows the test creates.
"""

import pytest

from reports.measures import Period, measures
from tests.reports.conftest import D

pytestmark = pytest.mark.django_db


def run(site, start: int, end: int) -> dict:
    return measures(Period(D(start), D(end)), [site.pk])


def test_left_before_seen_is_never_a_visit(build, site):
    # A: a visit on D0, then left before being seen on D5. Period D0..D100, e = D0 <= D53.
    # If the LWBS arrival were a visit, D5 (within e+1..e+13) would initiate; it is not.
    a = build.person()
    build.visit(a, D(0))
    build.lwbs(a, D(5))
    result = run(site, 0, 100)
    assert result["M2"] == {"numerator": 0, "denominator": 1, "rate": 0.0, "not_evaluable": 0}
    assert result["M12"]["count"] == 1  # the visit only
    assert result["M17"]["numerator"] == 1  # the LWBS arrival, counted where it belongs


def test_same_day_visit_with_a_different_staff_member_initiates(
    build, site, clinician, second_clinician
):
    # A: two visits on e = D0 with two different staff members -> initiated on D0.
    # B: two visits on D0 with the same staff member -> not initiated.
    a, b = build.person(), build.person()
    build.visit(a, D(0), staff=clinician)
    build.visit(a, D(0), staff=second_clinician)
    build.visit(b, D(0), staff=clinician)
    build.visit(b, D(0), staff=clinician)
    result = run(site, 0, 100)
    assert result["M2"] == {"numerator": 1, "denominator": 2, "rate": 0.5, "not_evaluable": 0}


def test_initiation_window_is_days_e_to_e_plus_13(build, site):
    # A: visit D0 and a visit on D13 = e+13 -> initiated.
    # B: visit D0 and a visit on D14 = e+14 -> not initiated.
    # C: a visit with a prescription on D0 -> initiated on D0 (medication on day e counts).
    # E: visit D0, prescription at a visit on D14 -> too late, not initiated.
    # Episodes 4, initiated 2 (A, C).
    a, b, c, e = (build.person() for _ in range(4))
    build.visit(a, D(0))
    build.visit(a, D(13))
    build.visit(b, D(0))
    build.visit(b, D(14))
    build.visit_with_med(c, D(0), 7)
    build.visit(e, D(0))
    build.visit_with_med(e, D(14), 7)
    assert run(site, 0, 100)["M2"] == {
        "numerator": 2,
        "denominator": 4,
        "rate": 0.5,
        "not_evaluable": 0,
    }


def test_episode_needs_194_clean_days_before_it(build, site):
    # Period D200..D300; episodes need e <= D253.
    # F: visits D6 and D200: D6 = e-194 is inside the look-back -> no episode.
    # G: visits D5 and D200: D5 = e-195 is outside -> an episode (not initiated).
    # H: first visit in the period on D260 > D253 -> not yet evaluable, not a failure.
    # J: visits D250 and D260: e = D250 <= D253 -> episode; D260 = e+10 initiates it.
    # K: visits D100 and D260: not an episode (D100 is within 194 days) and not counted as
    #    not evaluable either.
    f, g, h, j, k = (build.person() for _ in range(5))
    for person, days in (
        (f, (6, 200)),
        (g, (5, 200)),
        (h, (260,)),
        (j, (250, 260)),
        (k, (100, 260)),
    ):
        for day in days:
            build.visit(person, D(day))
    result = run(site, 200, 300)
    # Episodes: G, J = 2; initiated: J = 1; not yet evaluable: H = 1.
    assert result["M2"] == {"numerator": 1, "denominator": 2, "rate": 0.5, "not_evaluable": 1}
    assert result["M3"]["denominator"] == 2
    assert result["M3"]["not_evaluable"] == 1


def test_engagement_counts_a_visit_and_a_prescription_on_one_day_twice(build, site):
    # Period D0..D100 (e <= D53 for everyone below). Engagement: >= 2 events on i+1..i+34.
    # A: prescription visit D0 (i = D0); on D10 a visit with a prescription = 2 events
    #    -> engaged.
    # B: prescription visit D0 (i = D0); a plain visit on D10 = 1 event -> not engaged.
    # C: visits D0, D5 (i = D5); visits D20 and D39 (= i+34) -> 2 events -> engaged.
    # Dd: visits D0, D5 (i = D5); visits D20 and D40 (= i+35, outside) -> 1 -> not engaged.
    # E: visit D0, then visits D20 and D25: never initiated (D20 > e+13) -> not engaged.
    # F: visits D0, D1 (i = D1); two visits on D10 -> 2 events -> engaged.
    # Episodes 6; initiated A, B, C, Dd, F = 5; engaged A, C, F = 3.
    a, b, c, dd, e, f = (build.person() for _ in range(6))
    build.visit_with_med(a, D(0), 7)
    build.visit_with_med(a, D(10), 28)
    build.visit_with_med(b, D(0), 7)
    build.visit(b, D(10))
    for day in (0, 5, 20, 39):
        build.visit(c, D(day))
    for day in (0, 5, 20, 40):
        build.visit(dd, D(day))
    for day in (0, 20, 25):
        build.visit(e, D(day))
    for day in (0, 1, 10, 10):
        build.visit(f, D(day))
    result = run(site, 0, 100)
    assert result["M2"] == {"numerator": 5, "denominator": 6, "rate": 0.8333, "not_evaluable": 0}
    assert result["M3"] == {"numerator": 3, "denominator": 6, "rate": 0.5, "not_evaluable": 0}


def test_two_visits_at_least_90_days_apart(build, site):
    # Period D0..D200: people need a visit in the period on or before D110 (= end - 90).
    # A: D0, D90 -> 90 apart, counts.         B: D0, D89, left before seen on D95 -> no.
    # C: D100, D195 -> 95 apart, counts.      Dd: D120, D200 -> first after D110: not yet
    #                                              evaluable.
    # E: D10 only -> no.                      F: D-10 (before the period) and D80: in the
    #                                              period first = last -> no.
    # Numerator 2 (A, C), denominator 5 (A, B, C, E, F), not evaluable 1 (Dd).
    a, b, c, dd, e, f = (build.person() for _ in range(6))
    for person, days in ((a, (0, 90)), (b, (0, 89)), (c, (100, 195)), (dd, (120, 200))):
        for day in days:
            build.visit(person, D(day))
    build.lwbs(b, D(95))
    build.visit(e, D(10))
    build.visit(f, D(-10))
    build.visit(f, D(80))
    assert run(site, 0, 200)["M6"] == {
        "numerator": 2,
        "denominator": 5,
        "rate": 0.4,
        "not_evaluable": 1,
    }


def test_still_connected_in_the_second_half(build, site):
    # Period D0..D99 (100 days): first half D0..D49, second half D50..D99.
    # A: D10, D60 -> yes.   B: D10 only -> no.   C: D49, D50 -> yes.
    # Dd: D60 only -> not in the denominator.    E: D10, then D100 after the end -> no.
    # Denominator A, B, C, E = 4; numerator A, C = 2.
    a, b, c, dd, e = (build.person() for _ in range(5))
    for person, days in ((a, (10, 60)), (b, (10,)), (c, (49, 50)), (dd, (60,)), (e, (10, 100))):
        for day in days:
            build.visit(person, D(day))
    assert run(site, 0, 99)["M7"] == {
        "numerator": 2,
        "denominator": 4,
        "rate": 0.5,
        "not_evaluable": 0,
    }


def test_visit_constancy_over_whole_30_day_blocks(build, site):
    # Period D0..D99.
    # A: first D0 -> blocks D0-29, D30-59, D60-89 (D90-99 is not a whole block); visits D0,
    #    D65, D95 -> blocks 1 and 3 -> 2/3.
    # B: first D40 -> blocks D40-69, D70-99; visits D40, D41, D99 -> 2/2.
    # C: first D80 -> no whole block before the end -> not yet evaluable.
    # Dd: first D10 -> blocks D10-39, D40-69, D70-99; only D10 -> 1/3.
    # Mean (2/3 + 1 + 1/3) / 3 = 2/3.
    a, b, c, dd = (build.person() for _ in range(4))
    for person, days in ((a, (0, 65, 95)), (b, (40, 41, 99)), (c, (80,)), (dd, (10,))):
        for day in days:
            build.visit(person, D(day))
    assert run(site, 0, 99)["M8"] == {"value": 0.6667, "denominator": 3, "not_evaluable": 1}


def test_contacts_count_anonymous_visits_but_not_as_people(build, site):
    # Period D0..D99.
    # A: first ever visit D0 -> new; left before seen D3 (not a visit).
    # B: visits D-10 and D5, D6 -> returning.
    # C: visits D-400 (long before) and D5 -> returning.
    # Two anonymous contacts on D7.
    # Visits in the period: A 1 + B 2 + C 1 + anonymous 2 = 6; people 3 (1 new, 2 returning).
    a, b, c = (build.person() for _ in range(3))
    build.visit(a, D(0))
    build.lwbs(a, D(3))
    for day in (-10, 5, 6):
        build.visit(b, D(day))
    build.visit(c, D(-400))
    build.visit(c, D(5))
    build.visit(None, D(7))
    build.visit(None, D(7))
    result = run(site, 0, 99)
    assert result["M12"] == {
        "count": 6,
        "people": 3,
        "new_people": 1,
        "returning_people": 2,
        "anonymous": 2,
        "not_evaluable": 0,
    }
    # Anonymous contacts are in no person measure. M2 episodes: A (nothing before D0) and
    # C (D-400 is before D5-194 = D-189); B's D-10 is inside its look-back.
    assert result["M2"]["denominator"] == 2
    assert result["M6"]["denominator"] + result["M6"]["not_evaluable"] == 3
