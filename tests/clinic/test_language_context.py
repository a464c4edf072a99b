"""The language check in context (LANGUAGE.md): the clinic's own vocabulary and the person's
own words are never flagged; the same words said of a person or a test still are; and every
staff-written field is checked after saving, in both directions."""

import uuid

import pytest
from django.apps import apps
from django.urls import reverse
from django.utils import timezone

from clinic.language import OWN_WORDS, STAFF_WRITTEN, language_check
from queues.models import Arrival
from tests.factories import PersonFactory
from tests.helpers import messages_of
from visits.models import Appointment, Goal


def terms(text: str) -> list[str]:
    return [f.term for f in language_check(text)]


# --- the words themselves ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Gave clean syringes and cookers.",
        "Wound bed clean, granulating well.",
        "Cleaned the site; dressing clean and dry.",
        "Clean supplies given x20",
        "Asked for clean works",
        "Room 2 is clean now",
        "Keep the area clean between visits",
        "Dirty dressing removed, clean dressing applied",
        "Hepatitis C relapse after treatment",
        "HCV relapsed at week 12",
        "Se entregaron jeringas limpias",
        "Herida limpia, sin signos de infección",
        "Recaída de hepatitis C",
    ],
)
def test_the_clinics_own_vocabulary_is_not_flagged(text):
    assert terms(text) == []


@pytest.mark.parametrize(
    ("text", "flagged"),
    [
        ("He has been clean for three months", ["clean"]),
        ("UDS clean today", ["clean"]),
        ("Tox was dirty again", ["dirty"]),
        ("Clean urine today.", ["Clean urine"]),
        # A supply word in another clause does not make a person's "clean" the clinic's.
        ("Says he is clean, asked for syringes", ["clean"]),
        ("Relapsed last week after the funeral", ["Relapsed"]),
        ("Ms Okafor relapsed", ["relapsed"]),  # a title, not multiple sclerosis
        ("Gave clean syringes; still an addict per the referral", ["addict"]),
        ("Dice que está limpio desde enero", ["limpio"]),
        ("Es un adicto según la carta", ["adicto"]),
    ],
)
def test_the_same_words_said_of_a_person_or_a_test_are_still_flagged(text, flagged):
    assert terms(text) == flagged


@pytest.mark.parametrize(
    "text",
    [
        'She said "I have been clean since June" and wants to keep going.',
        "He calls himself “an addict in recovery”.",
        "Dijo «soy adicto» y quiere ayuda",
    ],
)
def test_quoted_speech_is_the_persons_own_words_and_never_flagged(text):
    assert terms(text) == []


def test_staff_words_outside_the_quote_are_still_flagged():
    assert terms('Non-compliant. Said "I was clean all week".') == ["Non-compliant"]


# --- the fields it reads ----------------------------------------------------------------------


def test_a_goal_in_their_own_words_is_never_flagged(client, site, clinician):
    person = PersonFactory(site=site)
    client.force_login(clinician)
    response = client.post(
        reverse("visits:goal_add", args=[person.pk]),
        {"words": "Stay clean for my kids"},
        follow=True,
    )
    assert Goal.objects.get().words == "Stay clean for my kids"
    assert messages_of(response) == ["Goal saved."]
    assert '<mark class="language"' not in response.content.decode()


def test_what_helps_is_checked_after_saving_and_kept_as_written(client, site, front_desk):
    person = PersonFactory(site=site, name="Marcus")
    client.force_login(front_desk)
    response = client.post(
        reverse("visits:person_edit", args=[person.pk]),
        {"name": "Marcus", "what_helps": "Frequent flyer, likes coffee"},
        follow=True,
    )
    person.refresh_from_db()
    assert person.what_helps == "Frequent flyer, likes coffee"
    body = response.content.decode()
    assert "Language check (what helps)" in body
    assert "person who visits often" in body


def test_what_helps_in_the_clinics_vocabulary_gets_no_warning(client, site, front_desk):
    person = PersonFactory(site=site, name="Marcus")
    client.force_login(front_desk)
    response = client.post(
        reverse("visits:person_edit", args=[person.pk]),
        {"name": "Marcus", "what_helps": "Clean socks from the laundry cupboard"},
        follow=True,
    )
    assert "Language check" not in response.content.decode()


@pytest.mark.parametrize(
    ("reason", "flagged"),
    [("Non-compliant with meds, chest pain", True), ("Wound bed not clean, bleeding", False)],
)
def test_the_urgent_reason_is_checked_after_check_in(client, site, front_desk, reason, flagged):
    client.force_login(front_desk)
    response = client.post(
        reverse("queues:check_in"),
        {"nonce": str(uuid.uuid4()), "name": "Dee", "urgent": "on", "urgent_reason": reason},
        follow=True,
    )
    assert Arrival.objects.get().urgent_reason == reason  # kept as written
    assert ("Language check (urgent reason)" in response.content.decode()) is flagged


def test_an_appointment_note_is_checked_after_booking(client, site, front_desk):
    person = PersonFactory(site=site, name="Marisol")
    client.force_login(front_desk)
    day = timezone.localdate(timezone.now(), site.tz) + timezone.timedelta(days=2)
    response = client.post(
        reverse("visits:appointment_new"),
        {
            "person": person.pk,
            "day": day.isoformat(),
            "time": "10:30",
            "note": "Was a no-show twice, call first",
        },
        follow=True,
    )
    assert Appointment.objects.get().note == "Was a no-show twice, call first"
    body = response.content.decode()
    assert "Language check (appointment note)" in body
    assert "not seen yet; did not come" in body


@pytest.mark.parametrize("name", STAFF_WRITTEN + OWN_WORDS)
def test_the_field_lists_name_real_fields(name):
    app_label, model, field = name.split(".")
    assert apps.get_model(app_label, model)._meta.get_field(field)


def test_no_field_is_both_staff_written_and_the_persons_own_words():
    assert not set(STAFF_WRITTEN) & set(OWN_WORDS)
