"""Dates have sane bounds: a birth from 1900 to the site's today; a record (a contact, a tox
screen, an imported day) from the site's first day of records to today. 0001-01-01 used to be
accepted and then counted."""

import uuid
from datetime import date

import pytest
from django.urls import reverse
from django.utils import timezone

from clinic.dates import EARLIEST_RECORD, record_day_problem, site_first_day
from clinic.models import Person
from queues.errors import QueueError
from queues.models import Arrival
from queues.services import arrival_check_in
from visits.models import Visit


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("born", "message"),
    [
        ("0001-01-01", "before 1900"),
        ("1899-12-31", "before 1900"),
        ("9999-12-31", "cannot be in the future"),
    ],
)
def test_check_in_refuses_a_birth_date_out_of_bounds_and_writes_nothing(
    client, front_desk, site, born, message
):
    client.force_login(front_desk)
    response = client.post(
        reverse("queues:check_in"), {"nonce": uuid.uuid4(), "name": "Sam", "date_of_birth": born}
    )
    assert response.status_code == 200
    assert message in " ".join(response.context["form"].errors["date_of_birth"])
    assert not Person.objects.exists() and not Arrival.objects.exists()


@pytest.mark.django_db
def test_the_check_in_service_refuses_it_too(site, front_desk):
    with pytest.raises(QueueError) as refused:
        arrival_check_in(
            site=site, by=front_desk, nonce=uuid.uuid4(), name="Sam", date_of_birth=date(1, 1, 1)
        )
    assert refused.value.code == "birth_too_early"
    assert not Person.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("started", ["0001-01-01T10:00", "1999-12-31T23:59"])
def test_a_contact_cannot_be_dated_before_the_sites_first_day(client, clinician, site, started):
    client.force_login(clinician)
    response = client.post(reverse("visits:visit_new"), {"origin": "quick", "started_at": started})
    assert response.status_code == 200
    assert "first day of records" in " ".join(response.context["form"].errors["started_at"])
    assert not Visit.objects.exists()


@pytest.mark.django_db
def test_the_sites_first_day_is_its_opening_day_when_set(site):
    assert site_first_day(site) == EARLIEST_RECORD
    site.opened_on = date(2019, 4, 1)
    assert site_first_day(site) == date(2019, 4, 1)
    assert record_day_problem(date(2019, 3, 31), site=site)
    assert record_day_problem(date(2019, 4, 1), site=site) is None
    today = timezone.localdate(timezone.now(), site.tz)
    assert record_day_problem(today, site=site) is None
