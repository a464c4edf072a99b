"""The bulk attendance export (manage.py export_attendance), person by person through the gate.

ADVERSARIAL CASE 5 is test_export_leaves_out_and_logs_a_person_without_consent.
"""

import csv
import io

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from releases.models import Category, DisclosureLog, Scope
from releases.services import outgoing as services
from tests.releases.factories import approve_twice, make_consent, make_recipient, revoke
from tests.releases.outgoing_data import drug_court, make_record

pytestmark = pytest.mark.django_db


def export(recipient, purpose="attendance", **options):
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "export_attendance",
        recipient=recipient.pk,
        purpose=purpose,
        stdout=out,
        stderr=err,
        **options,
    )
    return list(csv.reader(io.StringIO(out.getvalue()))), err.getvalue()


def on_roster(record, court, clinician, *, approved=True):
    make_consent(person=record.person, recipients=[court], purposes=["attendance"])
    request = services.release_request_create(
        site=record.person.site,
        person=record.person,
        recipient=court,
        purpose="attendance",
        scope=[Scope.ATTENDANCE],
        by=clinician,
    )
    if approved:
        approve_twice(request, site=record.person.site)
    return request


def test_export_leaves_out_and_logs_a_person_without_consent(site, clinician):
    court = drug_court(site)
    with_consent = make_record(site=site, name="Avery")
    without = make_record(site=site, name="Blake")
    unapproved = make_record(site=site, name="Casey")
    on_roster(with_consent, court, clinician)
    on_roster(unapproved, court, clinician, approved=False)

    rows, summary = export(court)

    assert rows[0] == ["person_id", "name", "visit_date"]
    assert {r[1] for r in rows[1:]} == {"Avery"}
    assert len(rows) == 1 + len(with_consent.visits)
    text = "\n".join(",".join(r) for r in rows)
    assert "Blake" not in text and "Casey" not in text
    assert str(without.person.pk) not in {r[0] for r in rows[1:]}
    # Every decision is in the log; the omissions with their reason codes.
    log = {
        r.person_id: (r.decision, r.reason)
        for r in DisclosureLog.objects.filter(path="export_attendance")
    }
    assert log == {
        with_consent.person.pk: ("granted", "consent_valid"),
        # A criminal-legal recipient: no approved request for this person, so the gate stops
        # before it even looks for a consent.
        without.person.pk: ("refused", "approvals_required"),
        unapproved.person.pk: ("held", "awaiting_approvals"),
    }
    assert "left out (each logged): 2" in summary
    assert "Blake" not in summary and "Casey" not in summary


def test_export_after_revocation_leaves_the_person_out(site, clinician):
    court = drug_court(site)
    record = make_record(site=site)
    on_roster(record, court, clinician)
    revoke(record.person.consents.get())
    rows, _ = export(court)
    assert rows == [["person_id", "name", "visit_date"]]
    assert DisclosureLog.objects.get(path="export_attendance").reason == "revoked"


def test_export_for_another_purpose_is_empty(site, clinician):
    court = drug_court(site)
    record = make_record(site=site)
    on_roster(record, court, clinician)
    rows, _ = export(court, purpose="sentencing report")
    assert rows == [["person_id", "name", "visit_date"]]
    # No request was approved for that purpose, so the gate refuses before the consent.
    assert DisclosureLog.objects.get(path="export_attendance").reason == "approvals_required"


def test_export_to_a_treatment_provider_needs_consent_only(site, tmp_path):
    provider = make_recipient(site=site, category=Category.TREATMENT_PROVIDER)
    record = make_record(site=site, name="Dana")
    make_consent(person=record.person, recipients=[provider], purposes=["care coordination"])
    target = tmp_path / "out.csv"
    stranger = make_record(site=site, name="Emery")
    _, summary = export(provider, purpose="Care  coordination", output=str(target))
    with target.open(newline="") as f:
        rows = list(csv.reader(f))
    assert [r[1] for r in rows[1:]] == ["Dana"] * 3
    dates = sorted(timezone.localdate(v.started_at, site.tz).isoformat() for v in record.visits)
    assert sorted(r[2] for r in rows[1:]) == dates
    assert "Emery" not in target.read_text() and "Emery" not in summary
    assert DisclosureLog.objects.get(person=stranger.person).reason == "no_consent"


def test_export_of_another_sites_people_is_refused_per_person(site, other_site, clinician):
    court = drug_court(site)
    make_record(site=other_site, name="Elsewhere")
    rows, _ = export(court, site=other_site.slug)
    assert rows == [["person_id", "name", "visit_date"]]
    assert DisclosureLog.objects.get(path="export_attendance").reason == "other_site"


def test_export_needs_a_registry_recipient(db):
    with pytest.raises(CommandError):
        call_command("export_attendance", recipient=999999, purpose="attendance")
