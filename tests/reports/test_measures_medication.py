"""Coverage (POD rule), M4, M5, M9, M10 and the outreach list on hand-worked scenarios.

A medication event on day t with supply s covers t ... t+s-1; an event while supply is on
hand starts the day after it runs out (supplies stack).
"""

import random

import pytest

from reports.measures import Period, coverage_runs, measures, outreach_list, retention_curve
from tests.reports.conftest import D

pytestmark = pytest.mark.django_db


def run(site, start: int, end: int) -> dict:
    return measures(Period(D(start), D(end)), [site.pk])


def meds(build, person, *events):
    """(day, supply) pairs, each prescribed at a visit that day."""
    for day, supply in events:
        build.visit_with_med(person, D(day), supply)


def test_refills_stack_and_merge_into_runs(build, site):
    # D0 30 days -> D0..D29; D20 30 days while 10 are left -> D30..D59 (stacked);
    # D66 30 -> D66..D95; D70 10 -> D96..D105 (stacked onto D95).
    person = build.person()
    meds(build, person, (0, 30), (20, 30), (66, 30), (70, 10))
    assert coverage_runs([site.pk], D(200)) == [
        (person.pk, D(0), D(59)),
        (person.pk, D(66), D(105)),
    ]


def test_stacking_matches_the_day_by_day_rule_on_random_histories(build, site):
    # The window-function formula against the rule applied one event at a time.
    rng = random.Random(5)
    people = [build.person() for _ in range(12)]
    expected = []
    for person in people:
        events = sorted(
            (rng.randrange(0, 300), rng.choice((1, 3, 7, 14, 28, 30, 90)))
            for _ in range(rng.randrange(1, 9))
        )
        meds(build, person, *events)
        last, runs = None, []
        for day, supply in events:  # sorted by day; same-day events stack in either order
            if last is None or day > last + 1:
                runs.append([day, day + supply - 1])
            else:
                runs[-1][1] = max(last, day - 1) + supply
            last = runs[-1][1]
        expected += [(person.pk, D(a), D(b)) for a, b in runs]
    assert coverage_runs([site.pk], D(400)) == expected


def test_continuity_retention_and_days_covered(build, site):
    # Period D0..D400: M4 needs t <= D221 (t+179 <= end).
    a, b, c, dd, e, f, g, h, i = (build.person() for _ in range(9))
    # A, stacked refills: runs D0..D59, D66..D95, D100..D189. Gaps 6 and 4 days -> continuous.
    #    (Without stacking D20's supply would end on D49: a 16-day gap.)
    #    Covered in D0..D179: 60 + 30 + 80 = 170.
    meds(build, a, (0, 30), (20, 30), (66, 30), (100, 90))
    # B: D0..D29, D38..D187: D30..D37 is an 8-day gap -> broken. Covered 30 + 142 = 172.
    meds(build, b, (0, 30), (38, 150))
    # C: D0..D29, D37..D186: a 7-day gap -> continuous. Covered 30 + 143 = 173.
    meds(build, c, (0, 30), (37, 150))
    # Dd: D0..D169: D170..D179 uncovered, 10 days at the end -> broken. Covered 170.
    meds(build, dd, (0, 170))
    # E: D0..D172: 7 uncovered days at the end -> continuous. Covered 173.
    meds(build, e, (0, 173))
    # F: D0..D9, then D41..D240. D41 has no coverage on D10..D40 (31 days): a second start.
    #    Start D0: gap D10..D40 -> broken, covered 10 + 139 = 149.
    #    Start D41: covered all of D41..D220 -> continuous, 180.
    meds(build, f, (0, 10), (41, 200))
    # G: D0..D9, then D40..D239. D9 is within D40-31..D40-1, so D40 is not a start.
    #    Start D0: broken, covered 10 + 140 = 150.
    meds(build, g, (0, 10), (40, 200))
    # H: start D250 > D221 -> not yet evaluable for M4 (and day 180, D430 > D400).
    meds(build, h, (250, 30))
    # I: start D-50, before the period: not a start of this period.
    meds(build, i, (-50, 30))
    result = run(site, 0, 400)
    # M4: starts A, B, C, Dd, E, F0, F41, G0 = 8; continuous A, C, E, F41 = 4.
    assert result["M4"] == {"numerator": 4, "denominator": 8, "rate": 0.5, "not_evaluable": 1}
    m5 = result["M5"]
    # Day 30 (t+30 <= D400, all 9 starts): covered on t+30: A (D30, stacked), Dd, E,
    # F41 (D71) = 4. B, C (D30 in the gap), F0, G0 (D30 in the gap), H (D280) are not.
    assert m5["day_30"] == {"numerator": 4, "denominator": 9, "rate": 0.4444, "not_evaluable": 0}
    # Day 90: all 9 evaluable (H: D340 <= D400); everyone but H (D340) has it on hand.
    assert m5["day_90"] == {"numerator": 8, "denominator": 9, "rate": 0.8889, "not_evaluable": 0}
    # Day 180: H not evaluable; Dd (ends D169) and E (ends D172) have run out -> 6 of 8.
    assert m5["day_180"] == {"numerator": 6, "denominator": 8, "rate": 0.75, "not_evaluable": 1}
    # Days covered t..t+179: (170 + 172 + 173 + 170 + 173 + 149 + 180 + 150) / (8 * 180)
    #   = 1337 / 1440 = 0.92847...
    assert m5["pdc_180"] == {"value": 0.9285, "denominator": 8, "not_evaluable": 1}
    # The headline M5 figures are day 90's, and the cohort curve says the same.
    assert {k: m5[k] for k in ("numerator", "denominator", "rate", "not_evaluable")} == m5["day_90"]
    assert retention_curve(Period(D(0), D(400)), [site.pk]) == [
        {"day": k, **m5[f"day_{k}"]} for k in (30, 90, 180)
    ]


def test_medication_at_anonymous_contacts_is_ignored(build, site):
    visit = build.visit(None, D(0))
    build.med(visit, 30)
    result = run(site, 0, 400)
    assert result["M4"]["denominator"] == result["M5"]["day_30"]["denominator"] == 0
    assert result["M4"]["rate"] is None


def test_welcome_backs_end_interruptions_of_31_days_or_more(build, site):
    # Period D100..D200. An interruption: >= 31 days with no visit and no coverage.
    a, b, c, dd, e, f, g, h, i = (build.person() for _ in range(9))
    build.visit(a, D(0))
    build.visit(a, D(131))  # D1..D130: 130 days -> welcome-back (history before counts)
    build.visit(b, D(100))
    build.visit(b, D(131))  # D101..D130: 30 days -> no
    build.visit(c, D(100))
    build.visit(c, D(132))  # D101..D131: 31 days -> welcome-back
    build.visit_with_med(dd, D(90), 30)  # covered D90..D119
    build.visit(dd, D(160))  # D120..D159: 40 days -> welcome-back (not 69: coverage counts)
    build.visit_with_med(e, D(100), 30)  # covered D100..D129
    build.visit(e, D(150))  # D130..D149: 20 days -> no
    build.visit(f, D(150))  # first ever visit: nothing interrupted
    build.visit(g, D(0))
    build.visit(g, D(250))  # after the period end: ignored
    build.visit(h, D(-300))
    build.visit(h, D(140))  # D-299..D139: 439 days -> welcome-back
    for day in (0, 110, 150):  # D1..D109 (109) and D111..D149 (39): two welcome-backs
        build.visit(i, D(day))
    build.lwbs(b, D(160))  # left before being seen: not a visit, ends nothing
    result = run(site, 100, 200)
    # Interruptions ended: 31, 39, 40, 109, 130, 439 -> 6, median (40 + 109) / 2 = 74.5.
    assert result["M9"] == {"count": 6, "median_days": 74.5, "not_evaluable": 0}


def test_havent_seen_in_a_while_and_the_outreach_list(build, site, other_site):
    # As of D100 (the period end).
    a = build.person(name="Avery", what_helps="Text first")
    b, c, dd, e = (build.person(name=n) for n in ("Blair", "Casey", "Devon", "Emery"))
    build.visit_with_med(a, D(30), 10)  # covered D30..D39
    build.visit(a, D(69))  # D70..D100: 31 days -> counts
    build.visit(b, D(70))  # 30 days -> no
    build.visit_with_med(c, D(40), 40)  # covered to D79: 21 days -> no
    build.visit(dd, D(-500))  # long ago -> counts, 600 days
    build.visit(e, D(50))
    build.visit(e, D(150))  # after D100: ignored -> 50 days, counts
    build.visit(None, D(0))  # anonymous: nobody to reach out to
    elsewhere = build.person(name="Frankie", site=other_site)
    build.visit(elsewhere, D(0), site=other_site)  # another site: not in scope
    assert run(site, 0, 100)["M10"] == {"count": 3, "not_evaluable": 0}
    rows = outreach_list([site.pk], D(100))
    assert [(r["name"], r["days_since"]) for r in rows] == [
        ("Devon", 600),
        ("Emery", 50),
        ("Avery", 31),
    ]
    assert rows[2] == {
        "person_id": a.pk,
        "name": "Avery",
        "site_id": site.pk,
        "last_contact": D(69),
        "days_since": 31,
        "covered_until": D(39),
        "what_helps": "Text first",
    }
    assert rows[0]["covered_until"] is None
    # With both sites, Frankie (D1..D100 = 100 days) joins.
    both = outreach_list([site.pk, other_site.pk], D(100))
    assert [r["name"] for r in both] == ["Devon", "Frankie", "Emery", "Avery"]
