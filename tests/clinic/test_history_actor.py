"""Who made a change: the acting staff member in the history of changes (clinic/history.py).

A request's signed-in staff member is recorded for everything the request changes, and for
nothing else: not the next request on the same thread or database connection, not a request
that raised, not a command. Commands say which command they are.
"""

import http.cookiejar
import re
import urllib.parse
import urllib.request
from io import StringIO

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.management import call_command
from django.db import connection, transaction
from django.test import Client, RequestFactory
from django.urls import reverse

from clinic import history
from clinic.history import NOBODY, HistoryActorMiddleware, current_actor, history_actor
from clinic.models import ChangeHistory, Membership, Person, Service
from tests.conftest import session_cookie_for, start_asgi_server, stop_asgi_server
from tests.factories import PersonFactory
from visits.models import MedicationEvent, Visit, VisitParticipant


@pytest.fixture
def person(site):
    return PersonFactory(site=site, name="Marcus")


def edit(client, person, name):
    response = client.post(reverse("visits:person_edit", args=[person.pk]), {"name": name})
    assert response.status_code == 302, response.content.decode()[:500]


def name_changes(person) -> list[tuple]:
    """(actor id, via, new name) of each change to the person's name, oldest first."""
    return [
        (e.actor_id, e.via, e.changes["name"][1])
        for e in ChangeHistory.objects.filter(
            table_name="clinic_person", row_id=person.pk, operation="update"
        ).order_by("pk")
        if "name" in e.changes
    ]


def rename_outside_any_request(person, name):
    Person.objects.filter(pk=person.pk).update(name=name)


def test_a_request_records_its_signed_in_staff_member(client, person, front_desk):
    client.force_login(front_desk)
    edit(client, person, "Mark")
    assert name_changes(person) == [(front_desk.pk, "web", "Mark")]


def test_two_clients_alternating_each_get_only_their_own_changes(person, front_desk, clinician):
    desk, team = Client(), Client()
    desk.force_login(front_desk)
    team.force_login(clinician)
    for i in range(3):
        edit(desk, person, f"Desk {i}")
        edit(team, person, f"Team {i}")
    rename_outside_any_request(person, "Outside")
    assert name_changes(person) == [
        (front_desk.pk, "web", "Desk 0"),
        (clinician.pk, "web", "Team 0"),
        (front_desk.pk, "web", "Desk 1"),
        (clinician.pk, "web", "Team 1"),
        (front_desk.pk, "web", "Desk 2"),
        (clinician.pk, "web", "Team 2"),
        (None, "", "Outside"),
    ]


@pytest.mark.urls("tests.clinic.history_urls")
def test_a_request_that_raised_leaves_no_actor_behind(client, person, front_desk, clinician):
    client.force_login(front_desk)
    with pytest.raises(RuntimeError):
        client.post(f"/change-then-fail/{person.pk}/")
    assert current_actor() == NOBODY
    rename_outside_any_request(person, "Outside")
    # Raw SQL on the same connection, too (on PostgreSQL the session still held the setting).
    with connection.cursor() as cursor:
        cursor.execute("UPDATE clinic_person SET name = %s WHERE id = %s", ["Raw", person.pk])
    other = Client()
    other.force_login(clinician)
    other.post(f"/change/{person.pk}/")
    assert name_changes(person) == [
        (front_desk.pk, "web", "Changed by a failing request"),
        (None, "", "Outside"),
        (None, "", "Raw"),
        (clinician.pk, "web", "Changed"),
    ]


def test_a_request_nobody_signed_in_to_says_so(person):
    def get_response(request):
        rename_outside_any_request(person, "Kiosk")

    HistoryActorMiddleware(get_response)(_anonymous_request())
    assert name_changes(person) == [(None, "web", "Kiosk")]


def _anonymous_request():
    request = RequestFactory().post("/")
    request.user = AnonymousUser()
    return request


def test_history_actor_nests_and_restores_the_previous_one(person, front_desk, clinician):
    with history_actor(front_desk, via="outer"):
        with history_actor(clinician, via="inner"):
            rename_outside_any_request(person, "Inner")
        rename_outside_any_request(person, "Outer")
    rename_outside_any_request(person, "After")
    assert name_changes(person) == [
        (clinician.pk, "inner", "Inner"),
        (front_desk.pk, "outer", "Outer"),
        (None, "", "After"),
    ]


def test_an_actor_told_inside_a_rolled_back_transaction_is_told_again(
    person, front_desk, clinician
):
    """On PostgreSQL a session setting made inside a transaction is undone by its rollback."""
    rename_outside_any_request(person, "Before")
    with history_actor(front_desk, via="tests"):
        with pytest.raises(RuntimeError), transaction.atomic():
            rename_outside_any_request(person, "Rolled back")
            raise RuntimeError
        rename_outside_any_request(person, "Kept")
    with history_actor(clinician, via="tests"), transaction.atomic():
        rename_outside_any_request(person, "In a transaction")
    rename_outside_any_request(person, "Nobody")
    assert name_changes(person) == [
        (None, "", "Before"),
        (front_desk.pk, "tests", "Kept"),
        (clinician.pk, "tests", "In a transaction"),
        (None, "", "Nobody"),
    ]


@pytest.mark.postgres
def test_a_new_connection_is_told_even_when_its_session_remembers_someone(person, front_desk):
    """A pooled connection may be a server session that last served another request."""
    with connection.cursor() as cursor:  # the driver's cursor: unseen by the application
        cursor.cursor.execute(
            "SELECT set_config('threshold.actor', %s, false)", [str(front_desk.pk)]
        )
    history.connection_created(sender=None, connection=connection)  # as a pool hands it out
    rename_outside_any_request(person, "Nobody")
    assert name_changes(person) == [(None, "", "Nobody")]


# --- commands -----------------------------------------------------------------------------------


def test_an_import_is_recorded_as_the_import_command_by_nobody(site, clinician, tmp_path):
    Service.objects.create(site=site, name="Naloxone", code="naloxone")
    Membership.objects.filter(user=clinician, site=site).update(external_id="S7")
    path = tmp_path / "visits.csv"
    path.write_text(
        "participant,date,outcome,staff,appointment,medication,days_supply,services\n"
        "P100,2024-03-05,completed,S7,no,buprenorphine,28,naloxone\n",
        encoding="utf-8",
    )
    call_command("import_visits", str(path), stdout=StringIO())
    tables = {
        (e.table_name, e.operation, e.actor_id, e.via)
        for e in ChangeHistory.objects.filter(site=site)
    }
    assert tables == {
        ("clinic_person", "insert", None, "import_visits"),
        ("visits_visit", "insert", None, "import_visits"),
        ("visits_visitparticipant", "insert", None, "import_visits"),
        ("visits_visit_services", "insert", None, "import_visits"),
        ("visits_medicationevent", "insert", None, "import_visits"),
    }
    assert current_actor() == NOBODY


def test_synthetic_data_has_a_history_row_for_every_row_it_writes_and_deletes(db):
    call_command("generate_synthetic", people=20, days=10, sites=1, stdout=StringIO())
    counts = {
        "clinic_person": Person.objects.count(),
        "visits_visit": Visit.objects.count(),
        "visits_visitparticipant": VisitParticipant.objects.count(),
        "visits_visit_services": Visit.services.through.objects.count(),
        "visits_medicationevent": MedicationEvent.objects.count(),
    }
    written = {
        table: ChangeHistory.objects.filter(
            table_name=table, operation="insert", via="generate_synthetic"
        ).count()
        for table in counts
    }
    assert written == counts
    assert counts["visits_visit"] > 0

    call_command("generate_synthetic", people=5, days=5, sites=1, replace=True, stdout=StringIO())
    deleted = {
        table: ChangeHistory.objects.filter(table_name=table, operation="delete").count()
        for table in counts
    }
    assert deleted == counts


# --- a real ASGI server: threads and database connections reused between requests --------------


class Browser:
    """A signed-in HTTP client of its own (cookies and CSRF token), like a second screen."""

    def __init__(self, server, user):
        self.server = server
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        cookie = session_cookie_for(user)
        self.jar.set_cookie(
            http.cookiejar.Cookie(
                0, cookie["name"], cookie["value"], None, False, "127.0.0.1", False, False,
                "/", True, False, None, False, None, None, {},
            )
        )  # fmt: skip

    def rename(self, person, name):
        url = f"{self.server.url}/people/{person.pk}/edit/"
        with self.opener.open(url, timeout=10) as response:
            page = response.read().decode()
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        data = urllib.parse.urlencode({"csrfmiddlewaretoken": token, "name": name}).encode()
        with self.opener.open(url, data=data, timeout=10) as response:
            assert response.status == 200  # followed the redirect to the person's page


def test_under_asgi_alternating_requests_never_borrow_each_others_actor(
    transactional_db, tmp_path, monkeypatch, site, front_desk, clinician
):
    person = PersonFactory(site=site, name="Marcus")
    # Keep database connections open between requests, as a busy deployment may.
    monkeypatch.setenv("DB_CONN_MAX_AGE", "60")
    server = start_asgi_server(tmp_path)
    try:
        desk, team = Browser(server, front_desk), Browser(server, clinician)
        for i in range(4):
            desk.rename(person, f"Desk {i}")
            team.rename(person, f"Team {i}")
    finally:
        stop_asgi_server(server)
    assert name_changes(person) == [
        (user.pk, "web", f"{who} {i}")
        for i in range(4)
        for user, who in ((front_desk, "Desk"), (clinician, "Team"))
    ]
