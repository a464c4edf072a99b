"""Two records of one person, each with a history, for the merge tests: the second record (B)
has something in every table that points at a person, made the way the product makes it."""

import datetime as dt
import uuid
from dataclasses import dataclass, field

from django.utils import timezone

from clinic.access import access_log_record
from clinic.models import AccessLog, Person, PersonMerge
from queues import services as queue
from releases.gate import release_attempt
from releases.models import Category, IncomingRequest, Scope
from releases.services.incoming import incoming_log
from releases.services.outgoing import emergency_release, release_request_create
from tests.factories import PersonFactory, check_in
from tests.releases.factories import make_consent, make_recipient
from visits.models import MedicationEvent, ToxScreen, Visit
from visits.services import goals as goal_services
from visits.services import merge as merge_services
from visits.services import visits as visit_services
from visits.services.appointments import appointment_create

PURPOSE = "care coordination"


@dataclass
class Records:
    site: object
    kept: Person  # A
    duplicate: Person  # B
    recipient: object
    rows: dict = field(default_factory=dict)  # what B had, by table: [ids]
    stays: dict = field(default_factory=dict)  # B's rows that never move, by table: [ids]


def two_records(*, site, front_desk, clinician, privacy_officer) -> Records:
    kept = PersonFactory(
        site=site,
        name="Sam Rivera",
        pronouns="they/them",
        phone="",
        what_helps="Likes the quiet room",
        date_of_birth=dt.date(1990, 5, 2),
    )
    duplicate = PersonFactory(
        site=site,
        name="Sammy",
        pronouns="they/them",
        phone="555-0147",
        what_helps="Has a dog called Pepper",
        date_of_birth=dt.date(1990, 5, 2),
    )
    recipient = make_recipient(
        site=site, category=Category.TREATMENT_PROVIDER, organisation="Eastside Recovery"
    )
    now = timezone.now()

    # A has a visit and a goal of their own.
    visit_services.visit_open_direct(
        site=site, by=clinician, origin=Visit.Origin.QUICK, person=kept, note="Wound check"
    )
    goal_services.goal_set(person=kept, words="Keep my phone charged", by=clinician)

    # B came through the queue: seen, with medication and a tox conversation, then the day
    # was closed (the visit is sealed).
    arrival = check_in(site=site, by=front_desk, person=duplicate)
    queue.arrival_call(arrival=arrival, by=clinician, revision=None)
    queue.arrival_start(arrival=arrival, by=clinician, revision=None)
    sealed = Visit.objects.get(arrival=arrival)
    MedicationEvent.objects.create(
        visit=sealed, medication="bup_nx", dose="16 mg daily", days_supply=7,
        action="prescribed", recorded_by=clinician, recorded_at=now,
    )  # fmt: skip
    ToxScreen.objects.create(
        visit=sealed, specimen="urine", collected_on=timezone.localdate(now, site.tz),
        own_account="Some fentanyl", recorded_by=clinician, recorded_at=now,
    )  # fmt: skip
    visit_services.visit_end(visit=sealed, by=clinician)
    queue.queue_close_day(site=site, by=front_desk)
    visit_services.visit_add_addendum(visit=sealed, by=clinician, text="Dose confirmed.")
    # ... came again and left before being seen; had a quick contact at the door.
    left = check_in(site=site, by=front_desk, person=duplicate)
    queue.arrival_mark_left(arrival=left, by=front_desk, revision=None)
    quick = visit_services.visit_open_direct(
        site=site, by=clinician, origin=Visit.Origin.QUICK, person=duplicate, note="Naloxone"
    )
    goal = goal_services.goal_set(person=duplicate, words="A place of my own", by=clinician)
    goal_services.goal_add_progress(goal=goal, note="Saw two flats", by=clinician)
    appointment = appointment_create(
        site=site, by=front_desk, person=duplicate, at=now + dt.timedelta(days=3)
    )
    consent = make_consent(
        person=duplicate, recipients=[recipient], purposes=(PURPOSE,), scope=(Scope.ATTENDANCE,)
    )
    request = release_request_create(
        site=site, person=duplicate, recipient=recipient, purpose=PURPOSE,
        scope=[Scope.ATTENDANCE], by=clinician,
    )  # fmt: skip
    incoming = incoming_log(
        site=site, by=privacy_officer, kind=IncomingRequest.Kind.LETTER,
        from_text="County court", about_text="Sammy", person=duplicate,
    )  # fmt: skip
    release_attempt(
        site=site, path="packet_generate", asked_by=privacy_officer, person=duplicate,
        recipient=recipient, purpose=PURPOSE, scope=[Scope.ATTENDANCE],
    )  # fmt: skip
    emergency = emergency_release(
        site=site, person=duplicate, recipient=recipient, personnel_name="Dr Okafor",
        reason="Unresponsive, overdose suspected", scope=[Scope.MEDICATIONS], by=clinician,
    )  # fmt: skip
    access_log_record(
        user=clinician, site=site, person=duplicate, what=AccessLog.What.PERSON, obj=duplicate
    )

    records = Records(site=site, kept=kept, duplicate=duplicate, recipient=recipient)
    records.rows = {
        "queue_arrival": sorted([arrival.pk, left.pk]),
        "visits_visit": sorted([sealed.pk, quick.pk]),
        "visits_goal": [goal.pk],
        "visits_appointment": [appointment.pk],
        "releases_releaserequest": [request.pk],
        "releases_incomingrequest": [incoming.pk],
    }
    records.stays = {
        "releases_consent": [consent.pk],
        "releases_emergencyrelease": [emergency.pk],
    }
    return records


def propose(records: Records, *, by, **kwargs) -> PersonMerge:
    kept, duplicate = records.kept, records.duplicate
    kept.refresh_from_db()
    duplicate.refresh_from_db()
    options = {
        "reason": "Same birthday and the same dog; they told us they registered twice.",
        "seen": merge_services.merge_fingerprint(kept, duplicate),
        "nonce": uuid.uuid4(),
        **kwargs,
    }
    return merge_services.person_merge_propose(
        site=records.site, kept=kept, duplicate=duplicate, by=by, **options
    )
