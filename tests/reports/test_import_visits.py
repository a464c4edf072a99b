"""`manage.py import_visits`: historical arrivals from a previous system."""

from datetime import date, datetime, time, timedelta
from io import StringIO

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import CommandError, call_command
from django.test import Client, RequestFactory
from django.utils import timezone

from clinic.models import Membership, Person, Service
from queues.models import Arrival, ArrivalEvent
from queues.services import arrival_mark_left
from reports.importing import IMPORT_TICKET_BASE
from tests.factories import PersonFactory, check_in
from visits.models import MedicationEvent, Visit, VisitParticipant

HEADER = "participant,date,outcome,staff,appointment,medication,days_supply,services\n"


@pytest.fixture
def catalogue(site):
    """The site's services with the codes a file may name."""
    return {
        code: Service.objects.create(site=site, name=name, code=code)
        for name, code in (("Naloxone", "naloxone"), ("Counselling", "counselling"))
    }


@pytest.fixture
def csv_file(tmp_path):
    def write(body: str, header: str = HEADER, name: str = "visits.csv"):
        path = tmp_path / name
        path.write_text(header + body, encoding="utf-8")
        return path

    return write


def run(path, **options) -> str:
    out = StringIO()
    call_command("import_visits", str(path), stdout=out, **options)
    return out.getvalue()


def refused(path, **options) -> str:
    with pytest.raises(CommandError) as caught:
        run(path, **options)
    return str(caught.value)


def snapshot() -> dict[str, int]:
    return {
        "arrivals": Arrival.objects.count(),
        "visits": Visit.objects.count(),
        "participants": VisitParticipant.objects.count(),
        "services": Visit.services.through.objects.count(),
        "medications": MedicationEvent.objects.count(),
        "people": Person.objects.count(),
        "users": get_user_model().objects.count(),
        "memberships": Membership.objects.count(),
        "events": ArrivalEvent.objects.count(),
    }


def local_noon(site, day: date) -> datetime:
    return datetime.combine(day, time(12), tzinfo=site.tz)


# --- what a row becomes -------------------------------------------------------------------------


def test_completed_row_becomes_a_done_arrival_with_its_visit_services_and_medication(
    site, catalogue, clinician, csv_file
):
    Membership.objects.filter(user=clinician, site=site).update(external_id="S7")
    path = csv_file("P100,2024-03-05,completed,S7,yes,buprenorphine,28,naloxone;counselling\n")

    out = run(path)

    assert "1 imported, 0 already present" in out
    arrival = Arrival.objects.get()
    person = Person.objects.get()
    noon = local_noon(site, date(2024, 3, 5))  # times are unknown: local noon of the day
    assert (arrival.site, arrival.person, arrival.day) == (site, person, date(2024, 3, 5))
    assert (arrival.state, arrival.staff) == ("done", clinician)
    assert arrival.arrived_at == arrival.state_changed_at == arrival.appointment_at == noon
    assert (arrival.ticket_number, arrival.ticket) == (IMPORT_TICKET_BASE + 1, "IMP-1")
    assert len(arrival.import_key) == 64
    visit = Visit.objects.get()
    assert (visit.arrival, visit.person, visit.site, visit.origin) == (
        arrival,
        person,
        site,
        "queue",
    )
    assert visit.day == date(2024, 3, 5)
    assert visit.started_at == visit.ended_at == noon
    assert visit.opened_by == clinician
    assert set(visit.services.all()) == {catalogue["naloxone"], catalogue["counselling"]}
    participant = VisitParticipant.objects.get()
    assert (participant.visit, participant.user, participant.discipline) == (
        visit,
        clinician,
        "np",  # the clinician's discipline at the site
    )
    med = MedicationEvent.objects.get()
    assert (med.visit, med.medication, med.days_supply, med.action, med.dose) == (
        visit,
        "bup_sl",
        28,
        "prescribed",
        "imported",
    )
    assert (med.recorded_by, med.recorded_at) == (clinician, noon)
    # Imported arrivals carry no made-up event trail.
    assert ArrivalEvent.objects.count() == 0


def test_left_before_seen_row_is_an_arrival_and_never_a_visit(site, catalogue, csv_file):
    path = csv_file("P1,2024-03-05,left_before_seen,,no,,,\n")

    run(path)

    arrival = Arrival.objects.get()
    assert (arrival.state, arrival.staff, arrival.appointment_at) == ("left", None, None)
    assert arrival.person.external_id == "P1"
    assert Visit.objects.count() == 0


def test_anonymous_contact_has_no_person(site, catalogue, csv_file):
    path = csv_file(",2024-03-05,completed,S1,,,,naloxone\n,2024-03-05,left_before_seen,,,,,\n")

    out = run(path)

    assert "anonymous contacts: 1" in out
    assert Person.objects.count() == 0
    assert list(Arrival.objects.order_by("ticket_number").values_list("person", "state")) == [
        (None, "done"),
        (None, "left"),
    ]
    visit = Visit.objects.get()
    assert visit.person is None
    assert list(visit.services.all()) == [catalogue["naloxone"]]


def test_medication_names_map_to_stored_medications(site, csv_file):
    path = csv_file(
        "P1,2024-03-05,completed,S1,,Buprenorphine,7,\n"
        "P1,2024-03-12,completed,S1,,methadone,14,\n"
        "P1,2024-03-26,completed,S1,,naltrexone,30,\n"
    )

    run(path)

    assert list(
        MedicationEvent.objects.order_by("visit__day").values_list("medication", "days_supply")
    ) == [("bup_sl", 7), ("methadone", 14), ("ntx_oral", 30)]


def test_services_list_is_trimmed_case_insensitive_and_without_repeats(site, catalogue, csv_file):
    path = csv_file('P1,2024-03-05,completed,S1,,,," Naloxone ; counselling;naloxone;"\n')

    run(path)

    assert Visit.services.through.objects.count() == 2


def test_header_may_carry_a_byte_order_mark_capitals_and_only_the_required_columns(site, tmp_path):
    path = tmp_path / "export.csv"
    path.write_text("\ufeffParticipant,DATE,Outcome,Staff\r\nP1,2024-03-05,completed,S1\r\n")

    run(path)

    assert Arrival.objects.get().state == "done"


def test_several_rows_for_one_person_on_one_date_are_separate_arrivals(site, csv_file):
    # Three identical rows: the same person came three times that day.
    path = csv_file("P1,2024-03-05,completed,S1,,,,\n" * 3)

    run(path)

    arrivals = list(Arrival.objects.order_by("ticket_number"))
    assert [a.ticket_number - IMPORT_TICKET_BASE for a in arrivals] == [1, 2, 3]
    assert len({a.import_key for a in arrivals}) == 3
    assert len({a.person_id for a in arrivals}) == 1
    assert Visit.objects.count() == 3


# --- matching and creating people and staff ------------------------------------------------------


def test_people_and_staff_are_matched_by_their_previous_system_ids(site, clinician, csv_file):
    marcus = PersonFactory(site=site, name="Marcus", external_id="P100")
    Membership.objects.filter(user=clinician, site=site).update(external_id="S7")
    before = snapshot()

    out = run(csv_file("P100,2024-03-05,completed,S7,,,,\n"))

    assert "people: 1 matched by id, 0 new" in out
    assert "staff: 1 matched by id, 0 new" in out
    visit = Visit.objects.get()
    assert (visit.person, visit.opened_by) == (marcus, clinician)
    assert snapshot()["people"] == before["people"]
    assert snapshot()["users"] == before["users"]


def test_people_of_another_site_are_not_matched(site, other_site, csv_file):
    PersonFactory(site=other_site, name="Elsewhere", external_id="P100")

    run(csv_file("P100,2024-03-05,completed,S7,,,,\n"), site="riverside")

    person = Visit.objects.get().person
    assert (person.site, person.name, person.external_id) == (site, "Participant P100", "P100")


def test_new_staff_are_inactive_accounts_that_cannot_sign_in(site, csv_file):
    run(csv_file("P1,2024-03-05,completed,S 9,,,,\nP2,2024-03-06,completed,S 9,,,,\n"))

    user = get_user_model().objects.get()  # one account for both rows
    assert user.username == "imported-riverside-s-9"
    assert user.is_active is False
    assert not user.has_usable_password()
    membership = Membership.objects.get(user=user)
    assert (membership.site, membership.external_id) == (site, "S 9")
    assert (
        authenticate(RequestFactory().post("/login/"), username=user.username, password="") is None
    )
    response = Client().post("/login/", {"username": user.username, "password": ""})
    assert "_auth_user_id" not in response.wsgi_request.session
    assert set(Visit.objects.values_list("opened_by", flat=True)) == {user.pk}


def test_new_staff_username_is_made_unique(site, csv_file):
    get_user_model().objects.create(username="imported-riverside-s9")

    run(csv_file("P1,2024-03-05,completed,S9,,,,\n"))

    assert Membership.objects.get(external_id="S9").user.username == "imported-riverside-s9-2"


# --- importing again -----------------------------------------------------------------------------


def test_second_import_of_the_same_file_writes_nothing(site, catalogue, csv_file):
    path = csv_file(
        "P1,2024-03-05,completed,S1,yes,methadone,14,naloxone\n"
        "P1,2024-03-05,completed,S1,yes,methadone,14,naloxone\n"
        ",2024-03-05,left_before_seen,,,,,\n"
    )
    run(path)
    after_first = snapshot()

    out = run(path)

    assert "0 imported, 3 already present" in out
    assert snapshot() == after_first


def test_a_file_with_rows_added_imports_only_the_new_rows(site, csv_file):
    rows = "P1,2024-03-05,completed,S1,,,,\nP2,2024-03-05,left_before_seen,,,,,\n"
    run(csv_file(rows))
    first_keys = set(Arrival.objects.values_list("import_key", flat=True))

    # The next export has the same rows plus two more: one a repeat of an earlier row
    # (a second arrival that day), one on a new day.
    more = "P1,2024-03-05,completed,S1,,,,\nP3,2024-03-06,completed,S1,,,,\n"
    out = run(csv_file(rows + more, name="later.csv"))

    assert "2 imported, 2 already present" in out
    assert set(Arrival.objects.values_list("import_key", flat=True)) >= first_keys
    assert Arrival.objects.count() == 4
    # Ticket numbers on 5 March continue after the first import's.
    assert sorted(
        Arrival.objects.filter(day=date(2024, 3, 5)).values_list("ticket_number", flat=True)
    ) == [IMPORT_TICKET_BASE + 1, IMPORT_TICKET_BASE + 2, IMPORT_TICKET_BASE + 3]


def test_an_import_for_today_leaves_the_live_ticket_counter_free(site, front_desk, csv_file):
    today = timezone.localdate(timezone.now(), site.tz)
    live = check_in(site=site, by=front_desk, name="Jess")

    run(csv_file(f"P1,{today},completed,S1,,,,\n"))
    arrival_mark_left(arrival=live, by=front_desk, revision=None)
    next_live = check_in(site=site, by=front_desk, name="River")

    assert (live.ticket_number, next_live.ticket_number) == (1, 2)
    assert Arrival.objects.filter(day=today).count() == 3


# --- refusing bad files: every bad row listed, nothing written ------------------------------------

ROW_PROBLEMS = [
    ("P1,2024-3-5,completed,S1,,,,", "date '2024-3-5' is not a date written YYYY-MM-DD"),
    ("P1,2024-02-30,completed,S1,,,,", "date '2024-02-30' is not a date"),
    ("P1,05/03/2024,completed,S1,,,,", "date '05/03/2024' is not a date written YYYY-MM-DD"),
    ("P1,,completed,S1,,,,", "date is empty"),
    ("P1,2099-01-01,completed,S1,,,,", "date 2099-01-01 is in the future"),
    ("P1,2024-03-05,seen,S1,,,,", "outcome 'seen' should be completed or left_before_seen"),
    ("P1,2024-03-05,,S1,,,,", "outcome is empty"),
    ("P1,2024-03-05,completed,,,,,", "staff is needed for a completed visit"),
    ("P1,2024-03-05,left_before_seen,S1,,,,", "staff must be empty"),
    ("P1,2024-03-05,completed,S1,maybe,,,", "appointment 'maybe' should be yes, no or empty"),
    ("P1,2024-03-05,completed,S1,,suboxone,7,", "medication 'suboxone' should be one of"),
    ("P1,2024-03-05,completed,S1,,methadone,,", "days_supply is needed when a medication"),
    ("P1,2024-03-05,completed,S1,,,7,", "days_supply is given without a medication"),
    ("P1,2024-03-05,completed,S1,,methadone,0,", "days_supply '0' should be a whole number"),
    ("P1,2024-03-05,completed,S1,,methadone,366,", "days_supply '366' should be a whole"),
    ("P1,2024-03-05,completed,S1,,methadone,7.5,", "days_supply '7.5' should be"),
    ("P1,2024-03-05,left_before_seen,,,methadone,7,", "a medication needs a completed visit"),
    (",2024-03-05,completed,S1,,methadone,7,", "a medication needs a participant"),
    (
        "P1,2024-03-05,completed,S1,,,,naloxone;showers",
        "unknown service code(s) showers; this site's codes are: counselling, naloxone",
    ),
    ("P1,2024-03-05,left_before_seen,,,,,naloxone", "services need a completed visit"),
    ("P1,2024-03-05,completed,S1,,,,,extra", "has 9 values but the header names 8"),
    ("P" + "1" * 65 + ",2024-03-05,completed,S1,,,,", "participant is longer than 64"),
    ("P1,2024-03-05,completed,S" + "1" * 65 + ",,,,", "staff is longer than 64"),
    # Hostile cells: each used to end in a traceback (or, on SQLite, in a stored NUL).
    ("P\x001,2024-03-05,completed,S1,,,,", "participant contains an invisible or control"),
    ("P1,2024-03-05,completed,S1\x00,,,,", "staff contains an invisible or control"),
    ("P\u200b1,2024-03-05,completed,S1,,,,", "participant contains an invisible or control"),
    ("P1,2024-03-05,completed,S1,,methadone,\u00b2,", "days_supply '\u00b2' should be a whole"),
    ("P1,2024-03-05,completed,S1,,methadone,\u0663,", "days_supply '\u0663' should be a whole"),
    ("P1,2024-03-05,completed,S1,,methadone," + "7" * 5000 + ",", "days_supply '777"),
    (
        "P1,\uff12\uff10\uff12\uff14-03-05,completed,S1,,,,",
        "date '\uff12\uff10\uff12\uff14-03-05' is not a date",
    ),
    ("P1,0001-01-01,completed,S1,,,,", "date 0001-01-01 is before the site's first day"),
    ("P1,1999-12-31,completed,S1,,,,", "date 1999-12-31 is before the site's first day"),
    ("P1,9999-12-31,completed,S1,,,,", "date 9999-12-31 is in the future"),
]


@pytest.mark.parametrize(("line", "reason"), ROW_PROBLEMS)
def test_a_bad_row_refuses_the_whole_file_with_its_row_number(
    site, catalogue, csv_file, line, reason
):
    # Row 2 is good, row 3 is bad: row 2 must not be written either.
    path = csv_file(f"P9,2024-03-04,completed,NEW-STAFF,,,,naloxone\n{line}\n")
    before = snapshot()

    message = refused(path)

    assert "Nothing was imported" in message
    assert f"Row 3: {reason}" in message
    assert "Row 2" not in message
    assert snapshot() == before


def test_a_day_before_the_sites_first_day_of_records_is_refused(site, csv_file):
    site.opened_on = date(2015, 6, 1)
    site.save()
    path = csv_file("P1,2015-05-31,completed,S1,,,,\nP2,2015-06-01,completed,S1,,,,\n")
    before = snapshot()

    message = refused(path)

    assert "Row 2: date 2015-05-31 is before the site's first day of records (2015-06-01" in message
    assert "Row 3" not in message
    assert snapshot() == before


def test_every_bad_row_is_listed_with_the_row_number_a_spreadsheet_shows(site, csv_file):
    path = csv_file(
        "P1,2024-03-05,completed,S1,,,,\n"  # row 2: fine
        "P2,2024-13-01,completed,S1,,,,\n"  # row 3: no month 13
        "\n"  # row 4: blank, skipped but counted
        "P3,2024-03-05,left_before_seen,S1,,,,\n"  # row 5: staff on a left row
        "P4,2024-03-05,completed,,maybe,,,\n"  # row 6: two problems
    )
    before = snapshot()

    message = refused(path)

    lines = [line for line in message.splitlines() if line.startswith("Row ")]
    assert lines == [
        "Row 3: date '2024-13-01' is not a date written YYYY-MM-DD.",
        "Row 5: staff must be empty when the person left before being seen.",
        "Row 6: staff is needed for a completed visit.",
        "Row 6: appointment 'maybe' should be yes, no or empty.",
    ]
    assert snapshot() == before


def test_a_quoted_line_break_does_not_shift_the_row_numbers(site, csv_file):
    path = csv_file('"P\n1",2024-03-05,completed,S1,,,,\nP2,2024-03-05,oops,S1,,,,\n')

    assert "Row 3: outcome 'oops'" in refused(path)


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (
            "participant,date,outcome,staff,clinic\n",
            "Row 1: unknown column(s): clinic; the columns are participant, date, outcome",
        ),
        ("participant,date,staff\n", "Row 1: missing column(s): outcome."),
        ("participant,date,outcome,staff,date\n", "Row 1: repeated column(s): date."),
    ],
)
def test_unknown_missing_or_repeated_columns_are_reported(site, csv_file, header, reason):
    before = snapshot()

    assert reason in refused(csv_file("P1,2024-03-05,completed,S1\n", header=header))
    assert snapshot() == before


def test_an_empty_file_or_a_header_alone_is_refused(site, csv_file):
    assert "The file is empty" in refused(csv_file("", header=""))
    assert "a header but no rows" in refused(csv_file(""))


def test_a_file_that_is_not_utf8_is_refused(site, tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes((HEADER + "Jos\xe9,2024-03-05,completed,S1,,,,\n").encode("latin-1"))

    assert "not UTF-8" in refused(path)
    assert Arrival.objects.count() == 0


def test_a_missing_file_is_reported(site, tmp_path):
    assert "No file at" in refused(tmp_path / "nope.csv")


# --- which site ----------------------------------------------------------------------------------


def test_with_one_site_it_is_the_default(site, csv_file):
    run(csv_file("P1,2024-03-05,completed,S1,,,,\n"))

    assert Arrival.objects.get().site == site


def test_with_several_sites_the_site_must_be_named(site, other_site, csv_file):
    path = csv_file("P1,2024-03-05,completed,S1,,,,\n")

    message = refused(path)

    assert "more than one site" in message
    assert "hillside, riverside" in message
    assert Arrival.objects.count() == 0
    run(path, site="hillside")
    assert Arrival.objects.get().site == other_site


def test_an_unknown_site_is_refused(site, csv_file):
    message = refused(csv_file("P1,2024-03-05,completed,S1,,,,\n"), site="lakeside")

    assert "No site with the short name 'lakeside' (known: riverside)" in message


def test_service_codes_are_the_named_sites_own(site, other_site, catalogue, csv_file):
    # Only riverside offers naloxone; hillside has no service codes at all.
    message = refused(csv_file("P1,2024-03-05,completed,S1,,,,naloxone\n"), site="hillside")

    assert "unknown service code(s) naloxone" in message


def test_the_same_file_into_two_sites_is_two_imports(site, other_site, csv_file):
    path = csv_file("P1,2024-03-05,completed,S1,,,,\n")

    run(path, site="riverside")
    out = run(path, site="hillside")

    assert "1 imported, 0 already present" in out
    assert Arrival.objects.filter(site=site).count() == 1
    assert Arrival.objects.filter(site=other_site).count() == 1


# --- volume --------------------------------------------------------------------------------------


def test_thousands_of_rows_import_in_batches_with_few_queries(
    site, catalogue, csv_file, django_assert_max_num_queries
):
    # 5,000 rows over 60 days, 1,500 people, 12 staff, across several write batches.
    start = date(2024, 1, 1)
    lines = []
    for n in range(5_000):
        day = start + timedelta(days=n % 60)
        if n % 10 == 0:
            lines.append(f"P{n % 1500},{day},left_before_seen,,,,,")
        else:
            med = "buprenorphine,14" if n % 4 == 0 else ","
            lines.append(f"P{n % 1500},{day},completed,S{n % 12},yes,{med},naloxone")
    path = csv_file("\n".join(lines) + "\n")

    # A few queries per new staff account, the rest in batches (smaller on SQLite, which caps
    # the parameters per statement): nowhere near one query a row.
    with django_assert_max_num_queries(300):
        out = run(path)

    assert "5000 imported" in out
    assert Arrival.objects.count() == 5_000
    assert Arrival.objects.filter(state="left").count() == 500
    assert Visit.objects.count() == 4_500
    assert Person.objects.count() == 1_500
    # Rows n % 4 == 0 are completed (n % 10 != 0 too): 1250 multiples of 4, minus the 250
    # multiples of 20 that are left-before-seen rows.
    assert MedicationEvent.objects.count() == 1_000
    assert len(set(Arrival.objects.values_list("day", "ticket_number"))) == 5_000


def test_ids_with_tabs_backslashes_quotes_and_accents_are_kept_exactly(site, tmp_path):
    odd = 'Zoë\\B "the\tsecond"'
    path = tmp_path / "odd.csv"
    path.write_text(HEADER + '"Zoë\\B ""the\tsecond""",2024-03-05,completed,"S\\1",,,,\n')

    run(path)

    person = Person.objects.get()
    assert (person.external_id, person.name) == (odd, f"Participant {odd}")
    assert Membership.objects.get().external_id == "S\\1"
