"""A NUL character anywhere in a request (search, filter, hidden field, path, cookie) is
refused with a clear page and changes nothing; on PostgreSQL it used to be a server error."""

import pytest
from django.conf import settings
from django.urls import reverse

from clinic.models import Person
from tests.factories import PersonFactory


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("persona", "url", "query"),
    [
        ("front_desk", "queues:person_matches", {"name": "Sam\x00"}),
        ("front_desk", "queues:check_in", {"name": "\x00"}),
        ("clinician", "visits:visit_new", {"q": "a\x00b"}),
        ("clinician", "visits:appointment_new", {"q": "\x00"}),
        ("clinician", "visits:appointments", {"day": "\x00"}),
        ("privacy_officer", "visits:access_log", {"page": "\x00"}),
    ],
)
def test_a_nul_in_a_search_or_filter_is_refused_with_a_clear_page(
    client, login, persona, url, query
):
    login(persona)
    response = client.get(reverse(url), query)
    assert response.status_code == 400
    assert "hidden character" in response.content.decode()


@pytest.mark.django_db
def test_a_nul_in_a_form_or_hidden_field_is_refused_and_nothing_is_written(
    client, front_desk, site
):
    client.force_login(front_desk)
    before = Person.objects.count()
    response = client.post(
        reverse("queues:check_in"),
        {"nonce": "\x00", "name": "Sam", "person": "", "next": "\x00"},
    )
    assert response.status_code == 400
    assert Person.objects.count() == before


@pytest.mark.django_db
def test_a_nul_in_the_path_or_a_cookie_is_refused(client, front_desk, site):
    assert client.get("/queue/display/abc%00def/").status_code == 400
    client.force_login(front_desk)
    client.cookies[settings.SESSION_COOKIE_NAME] = "abcdefgh\x00ijkl"
    assert client.get(reverse("queues:check_in")).status_code == 400


@pytest.mark.django_db
def test_a_nul_in_an_admin_search_is_refused(admin_client):
    assert admin_client.get("/admin/clinic/person/", {"q": "\x00"}).status_code == 400


@pytest.mark.django_db
def test_text_without_nul_still_searches(client, front_desk, site):
    PersonFactory(site=site, name="Samira")
    client.force_login(front_desk)
    response = client.post(reverse("queues:person_matches"), {"name": "Sam"})
    assert response.status_code == 200
    assert "Samira" in response.content.decode()
