"""A person with a little of everything on record, for the outgoing-release tests."""

import datetime as dt
import re
import zlib
from dataclasses import dataclass

from django.utils import timezone

from releases.models import Category
from tests.factories import UserFactory
from tests.releases.factories import make_person, make_recipient
from visits.models import (
    Goal,
    GoalProgress,
    Medication,
    MedicationEvent,
    Substance,
    ToxResult,
    ToxScreen,
    Visit,
)

TOX_WORDS = ["Fentanyl", "Xylazine", "Cocaine", "Positive", "Negative", "Oral fluid", "Urine"]


@dataclass
class Record:
    person: object
    visits: list
    medication: object
    screen: object
    goal: object
    progress: object


def make_record(*, site, name="Jordan", days_ago=(30, 10, 2)) -> Record:
    staff = UserFactory()
    person = make_person(site=site, name=name)
    now = timezone.now()
    visits = []
    for n in days_ago:
        visits.append(
            Visit.objects.create(
                site=site,
                person=person,
                origin=Visit.Origin.QUICK,
                started_at=now - dt.timedelta(days=n),
                ended_at=now - dt.timedelta(days=n) + dt.timedelta(minutes=20),
                opened_by=staff,
                note=f"Talked about housing on day {n}; wound healing.",
                priorities="Keep my dog with me",
            )
        )
    last = visits[-1]
    medication = MedicationEvent.objects.create(
        visit=last,
        medication=Medication.BUPRENORPHINE_NALOXONE,
        dose="16 mg daily",
        days_supply=7,
        action=MedicationEvent.Action.PRESCRIBED,
        recorded_by=staff,
        recorded_at=last.started_at,
    )
    screen = ToxScreen.objects.create(
        visit=last,
        specimen=ToxScreen.Specimen.ORAL_FLUID,
        collected_on=timezone.localdate(last.started_at, site.tz),
        own_account="Smoked some last week",
        recorded_by=staff,
        recorded_at=last.started_at,
    )
    ToxResult.objects.create(screen=screen, substance=Substance.FENTANYL, result="positive")
    ToxResult.objects.create(screen=screen, substance=Substance.XYLAZINE, result="negative")
    goal = Goal.objects.create(
        person=person,
        words="Get my ID back",
        set_on=timezone.localdate(visits[0].started_at, site.tz),
        status_changed_at=now,
        created_by=staff,
    )
    progress = GoalProgress.objects.create(
        goal=goal,
        on=timezone.localdate(last.started_at, site.tz),
        note="Birth certificate ordered",
        author=staff,
        written_at=now,
    )
    return Record(person, visits, medication, screen, goal, progress)


def drug_court(site, **kw):
    return make_recipient(
        site=site,
        category=Category.DRUG_COURT,
        organisation="County Drug Court",
        person_name="Coordinator B. Ruiz",
        **kw,
    )


def pdf_text(data: bytes) -> str:
    """All text drawn in an fpdf2 PDF (core fonts: literal strings in deflated streams)."""
    chunks = []
    for stream in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", data, re.S):
        try:
            chunks.append(zlib.decompress(stream))
        except zlib.error:
            chunks.append(stream)
    body = b"\n".join(chunks).decode("latin-1")
    drawn = re.findall(r"\((.*?)(?<!\\)\)\s*Tj", body)
    return " ".join(re.sub(r"\\([()\\])", r"\1", text) for text in drawn)
