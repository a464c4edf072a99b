"""No name in a URL: every search for people is a POST, and no page has a GET form that
would send typed text (README: "What the logs keep").

GET forms remain where they carry only record ids, dates and choices (the access log's and
history's filters, the dashboard's period, the appointments' day).
"""

import re
import uuid
from html.parser import HTMLParser

import pytest
from django.test import Client
from django.urls import reverse

from clinic.models import Person
from queues.models import Arrival
from tests.factories import PersonFactory, SiteFactory, check_in
from visits.models import Appointment, Visit

NAME = "Zoë O'Brien"

# Each page with a search or a filter, and who opens it.
PAGES = [
    ("queues:check_in", "front_desk"),
    ("queues:board", "clinician"),
    ("visits:visit_new", "clinician"),
    ("visits:appointment_new", "front_desk"),
    ("visits:appointments", "front_desk"),
    ("releases:home", "privacy_officer"),
    ("visits:access_log", "privacy_officer"),
    ("visits:changes", "privacy_officer"),
    ("reports:dashboard", "director"),
]
FREE_TEXT = {"text", "search", "email", "tel", "url", "password", ""}


class Forms(HTMLParser):
    """Each form's method and the free-text fields a GET would put in the address."""

    def __init__(self):
        super().__init__()
        self.found = []  # (method, free-text field names, buttons that switch to GET)
        self.current = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.current = ((attrs.get("method") or "get").lower(), [], [])
            self.found.append(self.current)
        elif self.current is None:
            return
        elif tag == "textarea" or (
            tag == "input" and (attrs.get("type") or "").lower() in FREE_TEXT
        ):
            self.current[1].append(attrs.get("name"))
        elif (attrs.get("formmethod") or "").lower() == "get":
            self.current[2].append(attrs.get("name") or tag)

    def handle_endtag(self, tag):
        if tag == "form":
            self.current = None


@pytest.mark.parametrize(("url_name", "persona"), PAGES)
def test_no_page_has_a_form_that_sends_typed_text_in_the_address(
    client, login, site, front_desk, url_name, persona
):
    PersonFactory(site=site, name=NAME)
    login(persona)
    response = client.get(reverse(url_name))
    assert response.status_code == 200

    parser = Forms()
    parser.feed(response.content.decode())

    for method, text_fields, get_buttons in parser.found:
        assert not (method == "get" and text_fields), (method, text_fields)
        assert not (text_fields and get_buttons), (text_fields, get_buttons)


def search_results(client, url_name: str, data: dict) -> str:
    response = client.post(reverse(url_name), data)
    assert response.status_code == 200
    return response.content.decode()


# url name, persona, what a search sends, what shows the person was found
SEARCHES = [
    ("queues:person_matches", "front_desk", {"name": "Zoë"}, 'data-person="{pk}"'),
    ("queues:check_in", "front_desk", {"find": "1", "name": "Zoë"}, 'data-person="{pk}"'),
    ("visits:visit_new", "clinician", {"find": "1", "q": "Zoë"}, 'name="person" value="{pk}"'),
    ("visits:appointment_new", "front_desk", {"find": "1", "q": "Zoë"}, "?person={pk}"),
    ("releases:home", "privacy_officer", {"q": "Zoë"}, "/people/{pk}/"),
]


@pytest.mark.parametrize(("url_name", "persona", "data", "found"), SEARCHES)
def test_searches_are_posts_and_a_name_in_the_address_finds_no_one(
    client, login, site, url_name, persona, data, found
):
    zoe = PersonFactory(site=site, name=NAME)
    PersonFactory(site=SiteFactory(), name="Zoë Elsewhere")
    login(persona)
    people, arrivals = Person.objects.count(), Arrival.objects.count()

    page = search_results(client, url_name, data)

    assert found.format(pk=zoe.pk) in page
    assert "Elsewhere" not in page
    # A search saves nothing.
    assert (Person.objects.count(), Arrival.objects.count()) == (people, arrivals)
    assert not Visit.objects.exists()
    assert not Appointment.objects.exists()
    # The old address with the name in it (a bookmark, a pasted link) searches for nothing.
    if url_name != "queues:person_matches":
        old = client.get(reverse(url_name), {k: v for k, v in data.items() if k != "find"})
        assert found.format(pk=zoe.pk) not in old.content.decode()


def test_the_check_in_search_refuses_get_and_needs_the_csrf_token(site, front_desk):
    PersonFactory(site=site, name=NAME)
    client = Client(enforce_csrf_checks=True)
    client.force_login(front_desk)
    url = reverse("queues:person_matches")

    assert client.get(url, {"name": "Zoë"}).status_code == 405
    assert client.post(url, {"name": "Zoë"}).status_code == 403


def test_the_check_in_page_finds_by_post_and_enter_finds_too(client, site, front_desk):
    """The first button of the check-in form is Find (Enter in a field presses it), and it
    posts: the browser sends the name in the body, with the CSRF token, not in the address."""
    client.force_login(front_desk)
    page = client.get(reverse("queues:check_in")).content.decode()
    form = page[page.index('<form method="post" action="/queue/"') :]
    first_button = form[form.index("<button") : form.index(">", form.index("<button"))]
    assert 'name="find"' in first_button
    assert "formmethod" not in first_button
    assert 'formmethod="get"' not in page
    assert 'data-search-url="/queue/people/"' in page


def test_find_without_the_script_keeps_what_was_typed_and_saves_nothing(
    client, site, front_desk, service
):
    PersonFactory(site=site, name=NAME)
    client.force_login(front_desk)
    nonce = str(uuid.uuid4())

    page = search_results(client, "queues:check_in", {
        "find": "1", "nonce": nonce, "name": "Zoë", "service": service.pk, "urgent": "on",
        "urgent_reason": "Dizzy", "phone": "555 0104", "date_of_birth": "1987-03-14",
        "what_helps": "Quiet corner", "person": "999", "confirm_new": "1",
    })  # fmt: skip

    assert f'value="{nonce}"' in page  # the same check-in, still to be sent
    assert 'value="Zoë"' in page
    for kept in ('value="555 0104"', 'value="1987-03-14"', "Quiet corner", 'value="Dizzy"'):
        assert kept in page, kept
    assert re.search(rf'name="service" value="{service.pk}"[^>]* checked>', page)
    assert re.search(r'name="urgent"[^>]* checked>', page)
    # A choice of person is not kept: the name typed may be someone else's now.
    assert '<input type="hidden" name="person" id="id_person">' in page
    assert Person.objects.count() == 1
    assert not Arrival.objects.exists()


def test_check_in_from_the_appointments_list_is_by_record_id(client, site, front_desk):
    zoe = PersonFactory(site=site, name=NAME)
    stranger = PersonFactory(site=SiteFactory(), name="Not Here")
    check_in(site=site, by=front_desk, name="Someone Else")
    client.force_login(front_desk)

    page = client.get(reverse("queues:check_in"), {"person": zoe.pk}).content.decode()
    assert f'data-person="{zoe.pk}"' in page
    assert "Someone Else" not in page

    for bad in (stranger.pk, "abc", "²", "9" * 30):
        page = client.get(reverse("queues:check_in"), {"person": bad}).content.decode()
        assert "data-person=" not in page
        assert "Not Here" not in page
