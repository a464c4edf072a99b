"""The database statements of the busiest requests, pinned: a check-in at the front desk and
the board. Each one the server answers at a rush costs PostgreSQL's CPU, so a change that adds
one has to change the number here, on purpose.

Counted without the savepoints the test's own transaction adds around each atomic block.
"""

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from clinic import roles
from queues.models import Arrival
from tests.factories import PersonFactory, check_in, grant, make_staff

# Session, user, the site with what the user's roles grant there, the form's services, whether
# anyone of that name is known, the nonce (a repeated tap), the new person, the ticket number,
# the arrival, its event and the queue's version. (Someone new has no appointment to link; the
# session's expiry is written again only once it runs short, clinic/idle.py.)
CHECK_IN_STATEMENTS = 11


# A clinician's, after a change: session, user, the site with what the user's roles grant
# there (for the page and its navigation too), the queue's version, the people in line (with
# their staff's disciplines) and those seen today, the services to choose from, and the rooms
# with the one they remember.
BOARD_STATEMENTS = 8
# The same at a version already built in this process (queues/board.py, built_board): the
# people are not read again.
BOARD_BUILT_STATEMENTS = BOARD_STATEMENTS - 2


def statements(context: CaptureQueriesContext) -> list[str]:
    return [
        query["sql"]
        for query in context.captured_queries
        if not query["sql"].startswith(("SAVEPOINT", "RELEASE SAVEPOINT"))
    ]


def post_check_in(client, **data):
    return client.post(reverse("queues:check_in"), {"nonce": str(uuid.uuid4()), **data})


def test_a_check_in_costs_a_fixed_number_of_statements(client, site, service, front_desk):
    client.force_login(front_desk)
    post_check_in(client, name="Marcus")  # the day's first: the ticket counter is made

    with CaptureQueriesContext(connection) as context:
        response = post_check_in(client, name="Dee", service=service.pk)

    assert response.status_code == 302
    assert Arrival.objects.filter(person__name="Dee", ticket="K-2").exists()
    assert len(statements(context)) == CHECK_IN_STATEMENTS


def test_a_check_in_with_someone_of_the_same_name_asks_about_the_nonce(client, site, front_desk):
    """The nonce is looked up before asking "is this the same person?" only when there is a
    namesake; a repeated tap then goes through to the first arrival, not to the question."""
    PersonFactory(site=site, name="Marcus")
    client.force_login(front_desk)
    data = {"nonce": str(uuid.uuid4()), "name": "Marcus", "confirm_new": "on"}
    first = client.post(reverse("queues:check_in"), data)

    with CaptureQueriesContext(connection) as context:
        again = client.post(reverse("queues:check_in"), {**data, "confirm_new": ""})

    assert again.status_code == 302
    assert again.url == first.url
    assert Arrival.objects.count() == 1
    nonce_lookups = [sql for sql in statements(context) if '"nonce" =' in sql]
    assert len(nonce_lookups) == 2  # the question's, then the service's (it keeps its own)


@pytest.mark.parametrize("waiting", [3, 30])
def test_the_board_costs_the_same_statements_however_many_wait(
    client, site, front_desk, clinician, waiting
):
    for _ in range(waiting):
        check_in(site=site, by=front_desk)
    client.force_login(clinician)
    client.get(reverse("queues:board"))
    check_in(site=site, by=front_desk)  # a change: the board is built again

    with CaptureQueriesContext(connection) as changed:
        response = client.get(reverse("queues:board"))
    with CaptureQueriesContext(connection) as same:
        again = client.get(reverse("queues:board"))

    assert response.status_code == again.status_code == 200
    assert len(statements(changed)) == BOARD_STATEMENTS
    assert len(statements(same)) == BOARD_BUILT_STATEMENTS
    assert again.content.count(b"data-arrival=") == waiting + 1


def test_the_site_menu_and_permissions_come_from_the_checked_site(client, site, other_site):
    """One query decides the site and the permission; the page's site menu and its `perms`
    use what it found, and still show only the sites and permissions the person holds."""
    both = make_staff(site=site, roles=[roles.FRONT_DESK], username="kit")
    grant(both, other_site, roles.CLINICIAN)
    client.force_login(both)

    page = client.get(reverse("queues:board")).content.decode()

    assert page.count('<option value="riverside"') == page.count('<option value="hillside"') == 1
    assert 'action="/queue/call-next/"' not in page  # front desk here: calling is not theirs
