"""PRODUCT.md invariant 3, held structurally: a tox record cannot stop a medication, move
anyone in the queue or flag a person. Its models have nothing that could, and saving a
positive result changes nothing outside the tox record."""

from pathlib import Path

import pytest
from django.db import models
from django.urls import reverse
from django.utils import timezone

from queues.models import Arrival, ArrivalEvent, QueueClock
from queues.services import arrival_start
from tests.factories import check_in
from visits.models import MedicationEvent, ToxResult, ToxScreen
from visits.services import tox as tox_services

FORBIDDEN_WORDS = (
    "flag",
    "medication",
    "prescri",
    "dose",
    "queue",
    "arrival",
    "urgent",
    "priority",
    "stop",
    "block",
    "ban",
    "discharge",
    "penal",
    "fail",
    "complian",
    "status",
    "access",
)


@pytest.mark.parametrize("model", [ToxScreen, ToxResult])
def test_tox_models_have_no_field_that_could_penalise(model):
    for field in model._meta.get_fields():
        assert not any(word in field.name.lower() for word in FORBIDDEN_WORDS), field.name
        if field.is_relation:
            # Only the visit it belongs to, its results, and who recorded it.
            assert field.related_model._meta.label in {
                "visits.Visit",
                "visits.ToxScreen",
                "visits.ToxResult",
                "auth.User",
            }, field
    # Nothing in the rest of the project points at a tox record either, except its results.
    for field in model._meta.get_fields():
        if isinstance(field, models.ForeignObjectRel):
            assert field.related_model in (ToxResult,), field


def test_the_tox_service_touches_no_queue_or_medication_code():
    source = Path(tox_services.__file__).read_text(encoding="utf-8")
    imports = [line for line in source.splitlines() if line.startswith(("from ", "import "))]
    assert not any("queues" in line or "MedicationEvent" in line for line in imports)


def _world():
    return (
        list(Arrival.objects.order_by("pk").values()),
        ArrivalEvent.objects.count(),
        list(QueueClock.objects.order_by("pk").values()),
        list(MedicationEvent.objects.order_by("pk").values()),
    )


def test_saving_a_positive_result_changes_no_arrival_medication_or_queue_version(
    client, site, clinician, front_desk
):
    # Someone being seen, with a medication recorded, and others waiting behind them.
    seen = check_in(site=site, by=front_desk, name="Jess")
    for name in ("Marcus", "River", "Tommy"):
        check_in(
            site=site,
            by=front_desk,
            name=name,
            urgent=(name == "River"),
            urgent_reason="wound" if name == "River" else "",
        )
    seen = arrival_start(arrival=seen, by=clinician, revision=seen.revision)
    visit = seen.visit
    MedicationEvent.objects.create(
        visit=visit,
        medication="bup_nx",
        dose="16 mg daily",
        days_supply=7,
        action="prescribed",
        recorded_by=clinician,
        recorded_at=visit.started_at,
    )
    before = _world()

    client.force_login(clinician)
    data = {
        "specimen": "urine",
        "collected_on": timezone.localdate(visit.started_at, site.tz).isoformat(),
        "result_fentanyl": "positive",
        "result_cocaine": "positive",
        "result_buprenorphine": "negative",
        "note": "Talked about the supply.",
    }
    response = client.post(reverse("visits:tox_new", args=[visit.pk]), data)
    assert response.status_code == 302
    assert ToxResult.objects.filter(result="positive").count() == 2
    assert _world() == before
    # The person is still with the clinician and the others keep their places.
    seen.refresh_from_db()
    assert seen.state == "with_staff"
