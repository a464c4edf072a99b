"""The waiting-room display page: the optional chime (a site setting, off unless a director
turns it on in the admin), what an empty list says, the mark display.js chimes by, the favicon."""

import pytest
from django.urls import reverse

from clinic.models import Site
from queues import services
from queues.selectors import queue_version
from tests.clinic.formdata import form_data
from tests.factories import check_in

pytestmark = pytest.mark.django_db

SOUND_BUTTON = "Tap to turn sound on"


def display_page(client, site) -> str:
    return client.get(reverse("queues:display", args=[site.display_token])).content.decode()


def test_the_chime_is_off_unless_the_site_wants_it(client, site):
    """The setting travels in the live part of the page (display.js shows the sound button
    and chimes only while it says "on"), so every snapshot carries it."""
    assert Site._meta.get_field("display_chime").default is False
    page = display_page(client, site)
    assert 'data-chime="off"' in page and 'data-chime="on"' not in page
    live = client.get(reverse("queues:display_live", args=[site.display_token])).json()["html"]
    assert 'data-chime="off"' in live

    site.display_chime = True
    site.save()

    page = display_page(client, site)
    assert 'data-chime="on"' in page
    assert SOUND_BUTTON in page  # hidden until display.js sees the setting
    assert "js/display.js" in page
    live = client.get(reverse("queues:display_live", args=[site.display_token])).json()["html"]
    assert 'data-chime="on"' in live


def test_changing_the_chime_in_the_admin_brings_open_displays_a_new_version(
    client, site, director, django_capture_on_commit_callbacks
):
    """Open TVs hear of it at once, like any change to the queue; other edits of the site
    leave the queue's version alone."""
    client.force_login(director)
    change = reverse("admin:clinic_site_change", args=[site.pk])
    before = queue_version(site.pk)

    data = form_data(client.get(change), "site_form")
    data["name"] = ["Kingsway Clinic"]
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(change, data).status_code == 302
    assert queue_version(site.pk) == before

    data = form_data(client.get(change), "site_form")
    data["display_chime"] = ["on"]
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert client.post(change, data).status_code == 302
    assert queue_version(site.pk) == before + 1
    assert callbacks  # the hint, after the commit


def test_a_director_turns_the_chime_on_where_the_site_is_edited(client, site, director):
    client.force_login(director)
    change = reverse("admin:clinic_site_change", args=[site.pk])
    data = form_data(client.get(change), "site_form")
    data["display_chime"] = ["on"]

    response = client.post(change, data)

    assert response.status_code == 302, response.context and response.context["errors"]
    site.refresh_from_db()
    assert site.display_chime


def test_an_empty_display_says_so_in_words_not_dashes(client, site):
    page = display_page(client, site)

    assert "No one is waiting right now." in page
    assert "Also called" not in page
    assert "<li>" not in page and ">—<" not in page


def test_the_latest_call_carries_when_it_was_made_and_nothing_about_the_person(
    client, site, room, front_desk, clinician
):
    for name in ("Marcus", "Jess"):
        check_in(site=site, by=front_desk, name=name)
    first = services.arrival_call_next(site=site, by=clinician, room=room)
    second = services.arrival_call_next(site=site, by=clinician)
    second.refresh_from_db()

    live = client.get(reverse("queues:display_live", args=[site.display_token])).json()["html"]

    called_at = int(second.state_changed_at.timestamp() * 1000)
    assert f'data-called-at="{called_at}"' in live
    assert "Also called" in live and first.ticket in live
    assert "Marcus" not in live and "Jess" not in live


@pytest.mark.parametrize("url_name", ["queues:board", "queues:check_in"])
def test_every_page_has_the_favicon(client, site, front_desk, url_name):
    client.force_login(front_desk)
    assert 'rel="icon" href="/static/favicon.svg"' in client.get(reverse(url_name)).content.decode()
    assert 'rel="icon" href="/static/favicon.svg"' in display_page(client, site)
