"""The director's landing as really used: signing in lands on the dashboard, a director of
several sites starts with all of them, the two arrival counts (M17 and M18) say on the page
exactly why they differ, and the emergency-release reviews directors may read are linked."""

import re

import pytest
from django.urls import reverse

from clinic import roles
from tests.factories import grant
from tests.reports.conftest import D
from tests.reports.test_views import DASHBOARD, PERIOD, cards

pytestmark = pytest.mark.django_db


@pytest.fixture
def arrivals(build):
    """Four arrivals of known people (one with an appointment, one who left before being
    seen) and two anonymous arrivals through the queue (naloxone at the door)."""
    ana, ben = build.person("Ana"), build.person("Ben")
    build.visit(ana, D(1), waited=5)
    build.visit(ana, D(8), waited=5, appointment=True)
    build.visit(ben, D(2), waited=15)
    build.lwbs(ben, D(3))
    build.visit(None, D(4), waited=1, services=["naloxone"])
    build.visit(None, D(5), waited=1, services=["naloxone"])
    return build


def test_a_director_lands_on_the_dashboard(client, director):
    client.force_login(director)
    response = client.get(reverse("home"))
    assert response.status_code == 302
    assert response.url == DASHBOARD


def test_a_director_of_several_sites_starts_with_all_of_them(
    client, build, director, site, other_site
):
    grant(director, other_site, roles.DIRECTOR)
    build.visit(build.person("Ivy", site=other_site), D(3), site=other_site)
    client.force_login(director)
    response = client.get(DASHBOARD, {"start": PERIOD["start"], "end": PERIOD["end"]})
    assert set(response.context["form"].cleaned_data["sites"]) == {site, other_site}
    html = response.content.decode()
    assert "All my sites (Hillside, Riverside)" in html
    assert cards(html)["M12"]["headline"] == "1"  # Ivy's visit, at the other site


def test_the_two_arrival_counts_say_why_they_differ(client, arrivals, director):
    client.force_login(director)
    html = client.get(DASHBOARD, PERIOD).content.decode()
    found = cards(html)
    assert found["M17"]["denominator"] == "6"  # every arrival, anonymous included
    assert found["M18"]["denominator"] == "4"  # arrivals of known people
    assert found["M18"]["anonymous_arrivals"] == "2"  # exactly the difference, on the page
    assert "arrivals, anonymous contacts included" in html
    assert "arrivals of known people" in html
    assert "anonymous arrivals left out (counted in M17)" in html


def test_the_dashboard_links_the_emergency_release_reviews(client, director):
    client.force_login(director)
    html = client.get(DASHBOARD).content.decode()
    link = reverse("releases:emergency_reviews")
    assert re.search(rf'href="{link}"', html)
    assert client.get(link).status_code == 200
