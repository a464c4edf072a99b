"""The director's dashboard, its CSV downloads and the care team's outreach list, against the
real engine (reports.measures) with a small hand-worked clinic."""

import csv
import io
import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from clinic import roles
from clinic.models import AccessLog
from reports import measures
from reports.measures import Period
from tests.factories import make_staff
from tests.helpers import PERSONAS, assert_login_redirect
from tests.reports.conftest import D

DASHBOARD = reverse("reports:dashboard")
OUTREACH = reverse("reports:outreach")
PERIOD = {"start": D(0).isoformat(), "end": D(119).isoformat()}  # 6 Jan - 5 May 2025


def export_url(name: str) -> str:
    return reverse("reports:export", args=[name])


@pytest.fixture
def clinic(build, site):
    """Riverside, 6 Jan - 5 May 2025 (D(0) is Monday 6 Jan).

    - Ana (likes coffee): visits D0 (waited 10 min, 30 days of medication), D10 (waited 20),
      D100 (waited 30). Ben: visit D2 (waited 40), then left before being seen on D3.
      Cy: left before being seen on D4, never a visit. An anonymous contact on D5 was given
      naloxone. Dee, Eve, Fay, Gus and Hal: one visit each on D1, not through the queue.
    """
    ana = build.person("Ana", what_helps="likes coffee")
    build.med(build.visit(ana, D(0), waited=10), 30)
    build.visit(ana, D(10), waited=20)
    build.visit(ana, D(100), waited=30)
    ben = build.person("Ben")
    build.visit(ben, D(2), waited=40)
    build.lwbs(ben, D(3))
    build.lwbs(build.person("Cy"), D(4))
    build.visit(None, D(5), services=["naloxone"])
    for name in ("Dee", "Eve", "Fay", "Gus", "Hal"):
        build.visit(build.person(name), D(1))
    return build


@pytest.fixture
def other_site_director(other_site):
    return make_staff(site=other_site, roles=[roles.DIRECTOR], username="odile")


def cards(html: str) -> dict[str, dict]:
    """{measure id: {"headline": text, figure key: shown text}} from the dashboard."""
    found = {}
    for mid, body in re.findall(r'data-measure="(M\d+)">(.*?)</article>', html, re.S):
        figures = dict(re.findall(r'data-figure="([\w.]+)"><dt>.*?</dt><dd>([^<]*)</dd>', body))
        figures["headline"] = re.search(r'data-testid="headline">([^<]*)<', body).group(1)
        found[mid] = figures
    return found


def table_rows(html: str, name: str) -> list[list[str]]:
    table = re.search(rf'<table id="table-{name}".*?</table>', html, re.S).group(0)
    body = table.split("<tbody", 1)[1]
    rows = []
    for row in re.findall(r"<tr>(.*?)</tr>", body, re.S):
        rows.append([c.strip() for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)])
    return rows


def read_csv(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.content.decode())))


# --- what the director sees -----------------------------------------------------------------


def test_numbers_on_screen_are_the_engines_and_the_hand_worked_ones(client, clinic, director, site):
    client.force_login(director)
    response = client.get(DASHBOARD, PERIOD)
    assert response.status_code == 200
    shown = cards(response.content.decode())
    assert sorted(shown, key=lambda m: int(m[1:])) == [
        "M2", "M3", "M4", "M5", "M6", "M7", "M8", "M9", "M10",
        "M12", "M13", "M14", "M16", "M17", "M18",
    ]  # fmt: skip

    # Hand-worked. M12: Ana 3 + Ben 1 + anonymous 1 + five single visits = 10 completed
    # visits; 7 people (the anonymous contact is nobody); Cy only left, so is not counted.
    assert shown["M12"]["headline"] == "10"
    assert shown["M12"]["people"] == "7"
    assert shown["M12"]["anonymous"] == "1"
    # M17: arrivals with an outcome = Ana's 3 + Ben's 2 + Cy's 1 = 6; 2 left: 33%.
    assert shown["M17"]["numerator"] == "2"
    assert shown["M17"]["denominator"] == "6"
    assert shown["M17"]["headline"] == "33%"
    # M16: waits 10, 20, 30, 40 -> median (20 + 30) / 2 = 25; p90 at 0.9 x 3 = 2.7 between
    # 30 and 40 -> 37.
    assert shown["M16"]["headline"] == "25"
    assert shown["M16"]["p90_minutes"] == "37"
    assert shown["M16"]["denominator"] == "4"
    # M13: the only kit went to the anonymous contact, which counts in M12 and M17 only.
    assert shown["M13"]["headline"] == "0"
    assert shown["M13"]["numerator"] == "0"
    assert shown["M13"]["denominator"] == "7"

    # And every numerator, denominator and not-yet-evaluable count is the engine's own.
    engine = measures.measures(Period(D(0), D(119)), [site.pk])
    for mid, figures in shown.items():
        for key in ("numerator", "denominator", "not_evaluable", "count", "people"):
            if key in figures and mid != "M5":
                assert figures[key] == f"{engine[mid][key]:,}", (mid, key)
        assert "not_evaluable" in figures
    # M5 shows each horizon with its numerator and denominator, and each horizon's
    # not-yet-evaluable count.
    horizons = ("day_30", "day_90", "day_180")
    for horizon in horizons:
        h = engine["M5"][horizon]
        assert f"({h['numerator']} of {h['denominator']})" in shown["M5"][horizon]
    assert shown["M5"]["not_evaluable"] == " / ".join(
        f"{engine['M5'][h]['not_evaluable']:,}" for h in horizons
    )


def test_each_measure_explains_itself_in_plain_words(client, clinic, director):
    client.force_login(director)
    html = client.get(DASHBOARD, PERIOD).content.decode()
    assert html.count("Why a process measure:") == 15
    assert html.count("Definition:") == 15
    for source in (
        "HEDIS IET",
        "HEDIS POD / NQF 3175",
        "CMS eCQM HIV retention",
        "HRSA HAB",
        "PEPFAR",
        "SHaRP",
        "CMS OP-22",
    ):
        assert source in html, source
    assert "Welcome-backs" in html
    assert "Left before being seen" in html
    for word in ("no-show", "no show", "non-compliant", "failed", "dropout"):
        assert word not in html.lower()


def test_the_dashboard_shows_no_staff_and_no_test_results(client, clinic, director):
    client.force_login(director)
    html = client.get(DASHBOARD, PERIOD).content.decode()
    assert clinic.staff.username not in html and clinic.staff.first_name not in html
    assert "positivity" not in html.lower() and "abstinence rate" not in html.lower()
    headers = re.findall(r'<th scope="col"[^>]*>(.*?)</th>', html, re.S)
    assert headers and not any(
        re.search(r"staff|clinician|tox", h, re.I) for h in headers if "hour" not in h
    )


def test_charts_are_inline_svg_and_nothing_is_fetched_from_elsewhere(client, clinic, director):
    client.force_login(director)
    html = client.get(DASHBOARD, PERIOD).content.decode()
    for chart_id in ("chart-contacts", "chart-wait", "chart-lwbs", "chart-retention"):
        assert f'<svg class="chart" id="{chart_id}"' in html
    assert html.count('role="img"') == 4
    links = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert links
    assert all(link[:1] in "/#?" and "http" not in link for link in links), links
    # No chart script: the only scripts are the header's menu and the screen lock every
    # signed-in page has.
    assert re.findall(r"<script\b[^>]*>", html) == [
        '<script src="/static/js/menu.js" defer>',
        '<script src="/static/js/lock.js" defer>',
    ]


def test_the_week_table_sorts_by_a_column_from_the_query_string(client, clinic, director):
    client.force_login(director)
    by_week = table_rows(client.get(DASHBOARD, PERIOD).content.decode(), "weeks")
    # Weeks of 6 Jan .. 5 May 2025: 18 Mondays, in date order by default.
    assert len(by_week) == 18
    assert by_week[0][:3] == ["6 Jan 2025", "8", "7"]  # 8 visits, 7 people
    by_visits = table_rows(
        client.get(DASHBOARD, {**PERIOD, "weeks-sort": "-visits"}).content.decode(), "weeks"
    )
    assert by_visits[0][0] == "6 Jan 2025"
    ascending = table_rows(
        client.get(DASHBOARD, {**PERIOD, "weeks-sort": "visits"}).content.decode(), "weeks"
    )
    assert ascending[-1][0] == "6 Jan 2025"
    assert [int(r[1]) for r in ascending] == sorted(int(r[1]) for r in ascending)


def test_default_period_is_the_last_90_complete_days_at_the_current_site(client, director, site):
    client.force_login(director)
    response = client.get(DASHBOARD)
    assert response.status_code == 200
    yesterday = timezone.localdate(timezone=site.tz) - timedelta(days=1)
    start = yesterday - timedelta(days=89)
    form = response.context["form"]
    assert form.cleaned_data["period"] == Period(start, yesterday)
    assert form.cleaned_data["sites"] == [site]
    assert "(90 days)" in response.content.decode()


def test_a_director_of_two_sites_can_see_them_together(client, clinic, director, site, other_site):
    from clinic import roles
    from tests.factories import grant

    grant(director, other_site, roles.DIRECTOR)
    clinic.visit(clinic.person("Ivy", site=other_site), D(3), site=other_site)
    client.force_login(director)
    response = client.get(DASHBOARD, {**PERIOD, "site": "all"})
    html = response.content.decode()
    # 10 visits at Riverside + Ivy's 1 at Hillside; one row per site in the site table.
    assert cards(html)["M12"]["headline"] == "11"
    assert "All my sites (Hillside, Riverside)" in html
    assert [row[0] for row in table_rows(html, "sites")] == ["Hillside", "Riverside"]
    one = client.get(DASHBOARD, {**PERIOD, "site": "hillside"}).content.decode()
    assert cards(one)["M12"]["headline"] == "1"


# --- bad input: a message, and nothing computed -----------------------------------------------


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"start": "2025-02-01", "end": "2025-01-01"}, "The period starts after it ends."),
        ({"start": "2025-13-01", "end": "2025-02-01"}, "Enter a valid date."),
        ({"start": "not a date", "end": "2025-02-01"}, "Enter a valid date."),
        ({"start": "", "end": "2025-02-01"}, "This field is required."),
        ({"start": "2021-01-01", "end": "2024-01-03"}, "at most three years"),
        ({"start": "0001-01-01", "end": "2025-02-01"}, "from 1 Jan 1990 on"),
        ({"start": "2025-01-01", "end": "2999-01-01"}, "cannot end after today"),
        ({"site": "hillside"}, "Reports can only be shown for sites you work at"),
        ({"site": "no-such-site"}, "Reports can only be shown for sites you work at"),
        ({"site": "all"}, "Reports can only be shown for sites you work at"),
    ],
)
def test_bad_input_is_explained_and_nothing_is_computed(
    client, director, other_site, monkeypatch, query, message
):
    def refuse(*args, **kwargs):
        raise AssertionError("the engine must not run on bad input")

    for name in ("measures", "weekly", "retention_curve", "by_site", "by_service"):
        monkeypatch.setattr(measures, name, refuse)
    client.force_login(director)
    response = client.get(DASHBOARD, query)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'role="alert"' in html and message in html
    assert "Nothing was calculated" in html
    assert "data-measure" not in html and "<svg" not in html
    # The download answers the same way: back to the dashboard, which explains.
    export = client.get(export_url("summary"), query)
    assert export.status_code == 302
    assert export.url.startswith(DASHBOARD + "?")


def test_a_period_of_exactly_three_years_is_accepted(client, director):
    client.force_login(director)
    response = client.get(DASHBOARD, {"start": "2021-01-01", "end": "2024-01-01"})
    assert response.status_code == 200
    assert 'role="alert"' not in response.content.decode()


def test_another_sites_director_cannot_pick_this_site(client, clinic, other_site_director):
    client.force_login(other_site_director)
    response = client.get(DASHBOARD, {**PERIOD, "site": "riverside"})
    html = response.content.decode()
    assert "Reports can only be shown for sites you work at" in html
    assert "data-measure" not in html
    assert "Riverside" not in html  # not even the site's name is offered
    # Their own site works, and holds none of Riverside's visits.
    own = client.get(DASHBOARD, PERIOD).content.decode()
    assert cards(own)["M12"]["headline"] == "0"


# --- permissions ------------------------------------------------------------------------------

EXPECTED = {
    # persona: (dashboard, outreach list, CSV download)
    "anonymous": ("login", "login", "login"),
    "front_desk": (403, 403, 403),
    "clinician": (403, 200, 403),
    "director": (200, 403, 200),
    "privacy_officer": (403, 403, 403),
    "other_site_clinician": (403, 200, 403),
}


@pytest.mark.parametrize("persona", PERSONAS)
def test_who_may_open_what(client, login, persona):
    login(persona)
    urls = (DASHBOARD, OUTREACH, export_url("summary"))
    for url, expected in zip(urls, EXPECTED[persona], strict=True):
        response = client.get(url)
        if expected == "login":
            assert_login_redirect(response)
        else:
            assert response.status_code == expected, (persona, url)


def test_reading_the_dashboard_and_downloads_writes_no_access_log(client, clinic, director):
    client.force_login(director)
    client.get(DASHBOARD, PERIOD)
    client.get(export_url("summary"), PERIOD)
    assert not AccessLog.objects.exists()


def test_unknown_download_is_404(client, director):
    client.force_login(director)
    assert client.get(export_url("staff"), PERIOD).status_code == 404


def test_the_dashboard_only_answers_get(client, director):
    client.force_login(director)
    assert client.post(DASHBOARD, PERIOD).status_code == 405


# --- downloads: small counts of people as "<5" ---------------------------------------------


def test_week_csv_hides_small_counts_that_the_screen_shows(client, clinic, director):
    client.force_login(director)
    response = client.get(export_url("weeks"), PERIOD)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert (
        'filename="threshold-weeks-riverside-20250106-20250505.csv"'
        in (response["Content-Disposition"])
    )
    rows = read_csv(response)
    assert rows[0][:3] == ["Week of (Monday)", "Completed visits", "People"]
    by_week = {row[0]: row[1:] for row in rows[1:]}
    # Week of 6 Jan: 8 visits, 7 people, 4 arrivals (Ana D0, Ben D2 and D3, Cy D4), 2 left:
    # arrivals and left become "<5" and the share left (2 of 4) is withheld with them.
    assert by_week["2025-01-06"] == ["8", "7", "<5", "<5", "suppressed", "suppressed"]
    # Week of 13 Jan: Ana alone (D10, waited 20): every count "<5", her wait withheld.
    assert by_week["2025-01-13"] == ["<5", "<5", "<5", "0", "suppressed", "suppressed"]
    # An empty week stays 0: zero identifies nobody.
    assert by_week["2025-01-20"] == ["0", "0", "0", "0", "", ""]
    # On screen the director sees the real numbers.
    html = client.get(DASHBOARD, PERIOD).content.decode()
    assert table_rows(html, "weeks")[1][:4] == ["13 Jan 2025", "1", "1", "1"]


def test_summary_csv_hides_small_counts_and_what_they_give_away(client, clinic, director):
    client.force_login(director)
    rows = read_csv(client.get(export_url("summary"), PERIOD))
    assert rows[0] == ["measure", "name", "figure", "value", "period_start", "period_end", "scope"]
    value = {(r[0], r[2]): r[3] for r in rows[1:]}
    assert {r[4:] == ["2025-01-06", "2025-05-05", "riverside"] for r in rows[1:]} == {True}
    assert value[("M12", "count")] == "10"
    assert value[("M12", "people")] == "7"
    assert value[("M12", "anonymous")] == "<5"  # 1 anonymous contact
    assert value[("M13", "count")] == "0"  # the one kit was anonymous: zero is not suppressed
    assert value[("M13", "denominator")] == "7"
    # M17: 2 of 6 left: the 2 is "<5" and the 33% that would give it away is withheld.
    assert value[("M17", "numerator")] == "<5"
    assert value[("M17", "rate")] == "suppressed"
    # M16: four timed visits: their median and p90 are withheld.
    assert value[("M16", "denominator")] == "<5"
    assert value[("M16", "median_minutes")] == "suppressed"
    # M5 is one row per horizon.
    assert ("M5", "day_90.rate") in value and ("M5", "pdc_180.value") in value
    # No figure anywhere in the file is a count of 1-4.
    for row in rows[1:]:
        assert row[3] not in {"1", "2", "3", "4"}, row


def test_site_and_service_csvs(client, clinic, director):
    client.force_login(director)
    sites = read_csv(client.get(export_url("sites"), PERIOD))
    assert sites[0][0] == "Site"
    assert sites[1][:3] == ["Riverside", "10", "7"]
    services = read_csv(client.get(export_url("services"), PERIOD))
    assert services[0] == ["Service", "Completed visits", "People"]
    # One naloxone kit, to the anonymous contact: the per-service table counts contacts (as
    # M12 does), so 1 visit, 0 people.
    assert services[1] == ["Naloxone", "<5", "0"]


# --- the care team's outreach list ------------------------------------------------------------


@pytest.fixture
def away(build, site):
    """Relative to today at the site. Jess: last visit 45 days ago. Max: last visit 70 days
    ago with 30 days of medication, on hand through 41 days ago. Kim: seen 10 days ago. Lou:
    visit 60 days ago with 40 days of medication, on hand through 21 days ago."""
    today = timezone.localdate(timezone=site.tz)
    jess = build.person("Jess", what_helps="Has a dog, Biscuit; text first")
    build.visit(jess, today - timedelta(days=45))
    max_ = build.person("Max")
    build.visit_with_med(max_, today - timedelta(days=70), 30)
    build.visit(build.person("Kim"), today - timedelta(days=10))
    build.visit_with_med(build.person("Lou"), today - timedelta(days=60), 40)
    return {"today": today, "jess": jess, "max": max_}


def test_the_care_team_sees_who_to_reach_out_to(client, away, clinician):
    client.force_login(clinician)
    response = client.get(OUTREACH)
    assert response.status_code == 200
    html = response.content.decode()
    names = re.findall(r'<th scope="row"><a href="([^"]+)">([^<]+)</a>', html)
    # Longest time first: Jess 45 days; Max 41 (medication on hand until 41 days ago).
    assert names == [
        (reverse("visits:person", args=[away["jess"].pk]), "Jess"),
        (reverse("visits:person", args=[away["max"].pk]), "Max"),
    ]
    assert "Has a dog, Biscuit; text first" in html
    today = away["today"]
    assert (today - timedelta(days=45)).strftime("%Y-%m-%d") in html
    rows = re.findall(r'<td class="num">(\d+)</td>', html)
    assert rows == ["45", "41"]
    assert "Kim" not in html and "Lou" not in html
    assert "no-show" not in html.lower() and "flag" not in html.lower()


def test_opening_the_outreach_list_is_logged_for_each_person_on_it(client, away, clinician):
    client.force_login(clinician)
    client.get(OUTREACH)
    logged = AccessLog.objects.filter(user=clinician, what=AccessLog.What.OUTREACH)
    assert sorted(e.person.name for e in logged) == ["Jess", "Max"]


def test_directors_see_only_the_count(client, away, director):
    client.force_login(director)
    html = client.get(DASHBOARD).content.decode()
    # At the period end (yesterday) Jess is 44 days away and Max 40; Kim 9, Lou 20.
    assert cards(html)["M10"]["headline"] == "2"
    assert "Jess" not in html and "Biscuit" not in html and "Max" not in html
    assert reverse("reports:outreach") not in html


def test_another_sites_care_team_sees_only_their_own_people(client, away, other_site_clinician):
    client.force_login(other_site_clinician)
    html = client.get(OUTREACH).content.decode()
    assert "Jess" not in html and "Max" not in html
    assert "Nobody on the list right now." in html
    assert not AccessLog.objects.exists()


def test_nav_links_follow_permissions(client, login):
    login("director")
    html = client.get(reverse("home"), follow=True).content.decode()
    assert f'href="{DASHBOARD}"' in html and f'href="{OUTREACH}"' not in html
    login("clinician")
    html = client.get(reverse("home"), follow=True).content.decode()
    assert f'href="{OUTREACH}"' in html and f'href="{DASHBOARD}"' not in html
