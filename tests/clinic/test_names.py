"""One rule for a person's name everywhere: at least one visible letter; invisible characters
tidied (zero-width spaces, direction marks, stray joiners) but the joiners Persian and Indic
names need are kept; NFC."""

import uuid

import pytest
from django.urls import reverse

from clinic.models import Person
from clinic.names import person_name_clean
from queues.errors import QueueError
from queues.services import arrival_check_in
from tests.factories import PersonFactory
from visits.errors import VisitError
from visits.services.people import person_update

INVISIBLE_ONLY = [
    "\u200b",
    "\u200b\u200b\u200b",
    " \u200e\u200f ",
    "\u202e\u202c",
    "\ufeff",
    "\u200c\u200d",
    "\u0301\u0301",
    "\u00ad",
    "\u2060",
]
NO_LETTER = ["123", "!!", "-", "\u0301 1"]


@pytest.mark.parametrize(
    ("typed", "kept"),
    [
        ("Sam\u200bmy", "Sammy"),
        ("\u200eAna\u202e ", "Ana"),
        ("Jo \t\n Ann", "Jo Ann"),
        ("e\u0301lise", "\u00e9lise"),  # NFC
        (
            "\u0645\u0647\u0631\u200c\u0646\u0627\u0632",
            "\u0645\u0647\u0631\u200c\u0646\u0627\u0632",
        ),
        ("\u0915\u094d\u200d\u0937", "\u0915\u094d\u200d\u0937"),
        ("\u200cAna\u200d", "Ana"),
        ("Ana \u200c Lu", "Ana Lu"),
        ("\u0301Ana", "Ana"),
    ],
)
def test_a_name_keeps_what_is_visible_and_the_joiners_scripts_need(typed, kept):
    assert person_name_clean(typed) == kept


@pytest.mark.django_db
@pytest.mark.parametrize("typed", INVISIBLE_ONLY + NO_LETTER)
def test_check_in_refuses_a_name_without_a_visible_letter(client, front_desk, site, typed):
    client.force_login(front_desk)
    response = client.post(reverse("queues:check_in"), {"nonce": uuid.uuid4(), "name": typed})
    assert response.status_code == 200
    assert response.context["form"].errors["name"]
    assert not Person.objects.exists()


@pytest.mark.django_db
def test_check_in_keeps_a_persian_name_with_its_joiner(client, front_desk, site):
    name = "\u0645\u0647\u0631\u200c\u0646\u0627\u0632"
    client.force_login(front_desk)
    response = client.post(reverse("queues:check_in"), {"nonce": uuid.uuid4(), "name": name})
    assert response.status_code == 302
    assert Person.objects.get().name == name


@pytest.mark.django_db
@pytest.mark.parametrize("typed", INVISIBLE_ONLY + NO_LETTER)
def test_a_persons_details_refuse_a_name_without_a_visible_letter(client, front_desk, site, typed):
    person = PersonFactory(site=site, name="Sam")
    client.force_login(front_desk)
    response = client.post(reverse("visits:person_edit", args=[person.pk]), {"name": typed})
    assert response.status_code == 200
    assert response.context["form"].errors["name"]
    person.refresh_from_db()
    assert person.name == "Sam"


@pytest.mark.django_db
def test_the_services_refuse_a_name_without_a_letter_too(site, front_desk):
    with pytest.raises(QueueError) as refused:
        arrival_check_in(site=site, by=front_desk, nonce=uuid.uuid4(), name="\u200b1")
    assert refused.value.code == "name_no_letter"
    person = PersonFactory(site=site, name="Sam")
    with pytest.raises(VisitError) as refused:
        person_update(person=person, by=front_desk, name="\u202e\u200b")
    assert refused.value.code in ("name_required", "name_no_letter")
    assert not Person.objects.exclude(pk=person.pk).exists()


@pytest.mark.django_db
def test_a_staff_account_and_a_consents_representative_use_the_same_rule(client, director):
    from clinic.staff_forms import StaffCreationForm
    from releases.forms_outgoing import EmergencyReleaseForm

    form = StaffCreationForm(data={"username": "kim", "first_name": "\u200b"})
    form.is_valid()
    assert form.cleaned_data.get("first_name", "") == ""
    form = StaffCreationForm(data={"username": "kim", "first_name": "42"})
    assert "first_name" in form.errors
    assert (
        "personnel_name"
        in EmergencyReleaseForm(
            data={"personnel_name": "\u200b\u200b"}, site=director.memberships.first().site
        ).errors
    )
