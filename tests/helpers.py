"""Small helpers shared by the view tests."""

from django.contrib.messages import get_messages
from django.urls import reverse

PERSONAS = [
    "anonymous",
    "front_desk",
    "clinician",
    "director",
    "privacy_officer",
    "other_site_clinician",
]


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def assert_login_redirect(response):
    assert response.status_code == 302
    assert response.url.startswith(reverse("login") + "?next=")
