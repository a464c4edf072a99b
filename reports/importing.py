"""Bring historical arrivals in from a previous system (`manage.py import_visits`).

The whole file is read and checked before anything is written; one bad row refuses the whole
file (with every bad row's number and reason) and the database is left as it was. Everything is
then written in one transaction.

A repeated import is harmless: every imported arrival carries `import_key`, a digest of the site,
the row's normalised values and how many identical rows came before it in the file. Rows whose
key is already present are skipped, so importing the same file twice writes nothing the second
time, and a file with rows added at the end imports only the new rows.

Imported arrivals have no clock times (only the day): they are placed at local noon, with the
visit starting and ending at the same moment, and wait-time measures leave them out by their
`import_key`. They get no ArrivalEvent trail either: events record state changes as they
happened in this system, and inventing times for them would only put made-up waits into
anything that reads the trail.
"""

from __future__ import annotations

import csv
import hashlib
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import TextIO

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.text import slugify

from clinic.dates import site_first_day
from clinic.models import Discipline, Membership, Person, Service, Site
from queues.models import Arrival, State
from reports._bulk import (
    PERSON_COLUMNS,
    BulkWriter,
    utc_text,
)
from visits.models import Medication, MedicationEvent, Visit, VisitParticipant

COLUMNS = (
    "participant",
    "date",
    "outcome",
    "staff",
    "appointment",
    "medication",
    "days_supply",
    "services",
)
REQUIRED_COLUMNS = ("participant", "date", "outcome", "staff")

COMPLETED = "completed"
LEFT_BEFORE_SEEN = "left_before_seen"
OUTCOMES = (COMPLETED, LEFT_BEFORE_SEEN)

# The words a previous system's export uses -> what Threshold stores. The form is not known, so
# buprenorphine is recorded as the sublingual tablet, naltrexone as oral.
MEDICATIONS = {
    "buprenorphine": Medication.BUPRENORPHINE_SL,
    "methadone": Medication.METHADONE,
    "naltrexone": Medication.NALTREXONE_ORAL,
}
IMPORTED_DOSE = "imported"

# Live tickets count up from 1 each day (queues.models.TicketCounter); imported arrivals take
# numbers from here up, so the two can never meet on the same day.
IMPORT_TICKET_BASE = 100_000
IMPORT_TICKET_PREFIX = "IMP"

ID_MAX = 64  # Person.external_id, Membership.external_id
BATCH = 2_000
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$", re.ASCII)


class ImportRefused(Exception):
    """The file cannot be imported. `problems` lists (row number, reason); row 1 is the header,
    0 means the file as a whole."""

    def __init__(self, code: str, problems: Sequence[tuple[int, str]]):
        self.code = code
        self.problems = list(problems)
        super().__init__(self.describe())

    def describe(self) -> str:
        lines = []
        for row, reason in self.problems:
            lines.append(f"Row {row}: {reason}" if row else reason)
        return "\n".join(lines)


@dataclass(frozen=True)
class Row:
    """One checked, normalised row of the file."""

    number: int  # as a spreadsheet counts: the header is row 1
    participant: str  # "" = anonymous contact
    day: date
    outcome: str
    staff: str
    appointment: bool
    medication: str  # a visits.Medication value, or ""
    days_supply: int | None
    services: tuple[str, ...]  # service codes, sorted, no repeats

    def identity(self) -> tuple:
        return (
            self.participant,
            self.day.isoformat(),
            self.outcome,
            self.staff,
            "yes" if self.appointment else "no",
            self.medication,
            "" if self.days_supply is None else str(self.days_supply),
            ";".join(self.services),
        )


@dataclass
class ImportResult:
    rows: int = 0
    imported: int = 0
    already_present: int = 0
    completed: int = 0
    left_before_seen: int = 0
    anonymous: int = 0
    people_matched: int = 0
    people_created: int = 0
    staff_matched: int = 0
    staff_created: int = 0
    medication_events: int = 0
    services_delivered: int = 0
    created_staff_usernames: list[str] = field(default_factory=list)


# --- reading and checking -----------------------------------------------------------------------


def import_site(slug: str | None) -> Site:
    """The site to import into: the one named, or the only one there is."""
    if slug:
        site = Site.objects.filter(slug=slug).first()
        if site is None:
            known = ", ".join(Site.objects.order_by("slug").values_list("slug", flat=True))
            raise ImportRefused(
                "unknown_site", [(0, f"No site with the short name {slug!r} (known: {known}).")]
            )
        return site
    sites = list(Site.objects.order_by("slug")[:2])
    if not sites:
        raise ImportRefused("no_site", [(0, "There is no site yet; create one first.")])
    if len(sites) > 1:
        known = ", ".join(Site.objects.order_by("slug").values_list("slug", flat=True))
        raise ImportRefused(
            "site_required",
            [(0, f"There is more than one site; say which with --site (one of: {known}).")],
        )
    return sites[0]


def _records(stream: TextIO) -> Iterator[tuple[int, list[str]]]:
    # csv.reader, not DictReader: a row number must be the record's place in the file as a
    # spreadsheet shows it, and DictReader hides blank records.
    yield from enumerate(csv.reader(stream), start=1)


def read_rows(stream: TextIO, *, site: Site, today: date | None = None) -> list[Row]:
    """Check every row of the file; raise ImportRefused listing every problem, or return rows."""
    today = today or timezone.localdate(timezone.now(), site.tz)
    first_day = site_first_day(site)
    known_codes = set(
        Service.objects.filter(site=site).exclude(code="").values_list("code", flat=True)
    )
    records = _records(stream)
    try:
        _number, header = next(records)
    except StopIteration:
        raise ImportRefused(
            "empty_file", [(0, "The file is empty (a header row is needed).")]
        ) from None
    except csv.Error as exc:
        raise ImportRefused("not_csv", [(1, f"cannot be read as CSV ({exc}).")]) from exc
    header = [name.strip().lstrip("\ufeff").lower() for name in header]
    _check_header(header)

    rows: list[Row] = []
    problems: list[tuple[int, str]] = []
    number = 1
    try:
        for number, record in records:
            values = [value.strip() for value in record]
            if not any(values):
                continue  # a blank line (or a row of empty cells) is not a row
            if len(values) > len(header):
                problems.append(
                    (number, f"has {len(values)} values but the header names {len(header)}.")
                )
                continue
            cells = dict(zip(header, values, strict=False))
            row, row_problems = _check_row(
                number, cells, known_codes=known_codes, today=today, first_day=first_day
            )
            problems.extend((number, reason) for reason in row_problems)
            if row is not None:
                rows.append(row)
    except csv.Error as exc:
        problems.append((number + 1, f"cannot be read as CSV ({exc})."))
    if problems:
        raise ImportRefused("bad_rows", problems)
    if not rows:
        raise ImportRefused("no_rows", [(0, "The file has a header but no rows.")])
    return rows


def _check_header(header: list[str]) -> None:
    problems = []
    repeated = sorted(name for name, n in Counter(header).items() if n > 1)
    if repeated:
        problems.append(f"repeated column(s): {', '.join(repeated)}.")
    unknown = [name or "(no name)" for name in header if name not in COLUMNS]
    if unknown:
        problems.append(
            f"unknown column(s): {', '.join(unknown)}; the columns are {', '.join(COLUMNS)}."
        )
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    if missing:
        problems.append(f"missing column(s): {', '.join(missing)}.")
    if problems:
        raise ImportRefused("bad_header", [(1, p) for p in problems])


def _hidden(char: str) -> bool:
    """A control or invisible format character; tabs and line breaks are ordinary text."""
    return char not in "\t\r\n" and unicodedata.category(char) in ("Cc", "Cf", "Cs")


def _check_row(
    number: int, cells: dict[str, str], *, known_codes: set[str], today: date, first_day: date
) -> tuple[Row | None, list[str]]:
    problems: list[str] = []
    for column, value in cells.items():
        hidden = next((c for c in value if _hidden(c)), None)
        if hidden is not None:
            # PostgreSQL cannot store a NUL; an invisible character would make an id that
            # looks like another and matches nothing. Neither is ever meant.
            problems.append(
                f"{column} contains an invisible or control character (U+{ord(hidden):04X})."
            )
    if problems:
        return None, problems
    participant = cells.get("participant", "")
    staff = cells.get("staff", "")
    outcome = cells.get("outcome", "").lower()
    if len(participant) > ID_MAX:
        problems.append(f"participant is longer than {ID_MAX} characters.")
    if len(staff) > ID_MAX:
        problems.append(f"staff is longer than {ID_MAX} characters.")

    raw_date = cells.get("date", "")
    day = None
    if not raw_date:
        problems.append("date is empty (YYYY-MM-DD).")
    else:
        try:
            if not _DATE.match(raw_date):
                raise ValueError
            day = date.fromisoformat(raw_date)
        except ValueError:
            problems.append(f"date {raw_date!r} is not a date written YYYY-MM-DD.")
        else:
            if day > today:
                problems.append(f"date {raw_date} is in the future.")
            elif day < first_day:
                problems.append(
                    f"date {raw_date} is before the site's first day of records "
                    f"({first_day.isoformat()}; a director can set it on the site)."
                )

    if outcome not in OUTCOMES:
        problems.append(
            f"outcome {cells.get('outcome', '')!r} should be completed or left_before_seen."
            if outcome
            else "outcome is empty (completed or left_before_seen)."
        )
    elif outcome == COMPLETED and not staff:
        problems.append("staff is needed for a completed visit.")
    elif outcome == LEFT_BEFORE_SEEN and staff:
        problems.append("staff must be empty when the person left before being seen.")

    appointment = cells.get("appointment", "").lower()
    if appointment not in ("", "yes", "no"):
        problems.append(f"appointment {cells['appointment']!r} should be yes, no or empty.")

    raw_medication = cells.get("medication", "")
    medication = MEDICATIONS.get(raw_medication.lower(), "")
    if raw_medication and not medication:
        problems.append(
            f"medication {raw_medication!r} should be one of {', '.join(MEDICATIONS)} or empty."
        )
    raw_supply = cells.get("days_supply", "")
    days_supply = None
    if raw_supply:
        # ASCII digits only: str.isdigit() also takes "²" and other digits int() refuses.
        if not (
            raw_supply.isascii()
            and raw_supply.isdigit()
            and len(raw_supply) <= 6
            and 1 <= int(raw_supply) <= 365
        ):
            problems.append(f"days_supply {raw_supply!r} should be a whole number from 1 to 365.")
        else:
            days_supply = int(raw_supply)
        if not raw_medication:
            problems.append("days_supply is given without a medication.")
    elif raw_medication:
        problems.append("days_supply is needed when a medication is given.")
    if raw_medication and outcome == LEFT_BEFORE_SEEN:
        problems.append("a medication needs a completed visit, not left_before_seen.")
    if raw_medication and not participant:
        problems.append("a medication needs a participant; it cannot be an anonymous contact.")

    codes = tuple(
        sorted({code.strip().lower() for code in cells.get("services", "").split(";")} - {""})
    )
    unknown = [code for code in codes if code not in known_codes]
    if unknown:
        offered = ", ".join(sorted(known_codes)) or "none: give the site's services codes first"
        problems.append(
            f"unknown service code(s) {', '.join(unknown)}; this site's codes are: {offered}."
        )
    if codes and outcome == LEFT_BEFORE_SEEN:
        problems.append("services need a completed visit, not left_before_seen.")

    if problems:
        return None, problems
    return (
        Row(
            number=number,
            participant=participant,
            day=day,
            outcome=outcome,
            staff=staff,
            appointment=appointment == "yes",
            medication=medication,
            days_supply=days_supply,
            services=codes,
        ),
        [],
    )


def import_keys(site: Site, rows: Iterable[Row]) -> list[str]:
    """One digest per row: site, normalised values, and the row's place among identical rows."""
    seen: Counter[tuple] = Counter()
    keys = []
    for row in rows:
        identity = row.identity()
        occurrence = seen[identity]
        seen[identity] += 1
        text = "\x1f".join((site.slug, *identity, str(occurrence)))
        keys.append(hashlib.sha256(text.encode()).hexdigest())
    return keys


# --- writing ------------------------------------------------------------------------------------


def _chunks(items: Sequence, size: int) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _lookup_size() -> int:
    # SQLite caps the number of query parameters (often 999 or 32766); stay well below.
    return 900 if connection.vendor == "sqlite" else 10_000


def visits_import(*, site: Site, stream: TextIO, today: date | None = None) -> ImportResult:
    """Check the whole file, then write the rows not already imported, in one transaction.

    Raises ImportRefused (nothing written) when any row is bad. Locks the site row, so two
    imports into one site run one after the other and cannot both write the same rows; on
    PostgreSQL the tables written are also locked against other writers until the import
    commits (a check-in at that moment waits those few seconds).
    """
    rows = read_rows(stream, site=site, today=today)
    keys = import_keys(site, rows)
    result = ImportResult(rows=len(rows))
    with transaction.atomic():
        Site.objects.select_for_update().filter(pk=site.pk).first()
        present: set[str] = set()
        for chunk in _chunks(keys, _lookup_size()):
            present.update(
                Arrival.objects.filter(site=site, import_key__in=chunk).values_list(
                    "import_key", flat=True
                )
            )
        new = [(row, key) for row, key in zip(rows, keys, strict=True) if key not in present]
        result.already_present = len(rows) - len(new)
        result.imported = len(new)
        if new:
            _write(site, new, result)
    return result


def _write(site: Site, new: list[tuple[Row, str]], result: ImportResult) -> None:
    # Plain rows through BulkWriter: the ORM's per-object work would be most of the time.
    writer = BulkWriter()
    for model in (Person, Arrival, Visit, VisitParticipant, Visit.services.through):
        writer.reserve(model)
    writer.reserve(MedicationEvent)
    participants_in_file = {row.participant for row, _key in new if row.participant}
    people = _people(writer, site, participants_in_file, result)
    staff = _staff(site, {row.staff for row, _key in new if row.staff}, result)
    services = dict(Service.objects.filter(site=site).exclude(code="").values_list("code", "pk"))
    next_ticket = _next_tickets(site, {row.day for row, _key in new})
    noon = {
        day: utc_text(datetime.combine(day, time(12), tzinfo=site.tz))
        for day in {row.day for row, _key in new}
    }
    state_done, state_left = State.DONE.value, State.LEFT.value
    prescribed = MedicationEvent.Action.PRESCRIBED.value
    origin = Visit.Origin.QUEUE.value

    for batch in _chunks(new, BATCH):
        arrivals, visits, participants, delivered, medications = [], [], [], [], []
        completed = sum(1 for row, _key in batch if row.outcome == COMPLETED)
        arrival_ids = iter(writer.ids(Arrival, len(batch)))
        visit_ids = iter(writer.ids(Visit, completed))
        for row, key in batch:
            at = noon[row.day]
            number = next_ticket[row.day]
            next_ticket[row.day] += 1
            arrival_id = next(arrival_ids)
            person_id = people.get(row.participant)
            user_id, discipline = staff.get(row.staff, (None, ""))
            arrivals.append(
                (
                    arrival_id, site.pk, person_id, None, False, "", row.day.isoformat(), number,
                    f"{IMPORT_TICKET_PREFIX}-{number - IMPORT_TICKET_BASE}", at,
                    at if row.appointment else None,
                    state_done if row.outcome == COMPLETED else state_left, at, user_id, None,
                    1, None, key,
                )
            )  # fmt: skip
            if row.outcome != COMPLETED:
                result.left_before_seen += 1
                continue
            result.completed += 1
            result.anonymous += not row.participant
            visit_id = next(visit_ids)
            # The day is set here: Visit.save() would set it, a plain insert does not.
            visits.append(
                (
                    visit_id, site.pk, person_id, arrival_id, origin, at, row.day.isoformat(),
                    at, user_id, "", "",
                )
            )  # fmt: skip
            participants.append((visit_id, user_id, discipline, at))
            delivered.extend((visit_id, services[code]) for code in row.services)
            if row.medication:
                medications.append(
                    (
                        visit_id, row.medication, IMPORTED_DOSE, row.days_supply, prescribed,
                        user_id, at,
                    )
                )  # fmt: skip
        writer.write_visits(
            arrivals=arrivals,
            visits=visits,
            participants=participants,
            delivered=delivered,
            medications=medications,
        )
        result.services_delivered += len(delivered)
        result.medication_events += len(medications)
    writer.finish()


def _people(
    writer: BulkWriter, site: Site, external_ids: set[str], result: ImportResult
) -> dict[str, int]:
    """Person pk for each external id at the site; people not known yet are created."""
    ids = sorted(external_ids)
    found: dict[str, int] = {}
    for chunk in _chunks(ids, _lookup_size()):
        found.update(
            Person.objects.filter(site=site, external_id__in=chunk).values_list("external_id", "pk")
        )
    result.people_matched = len(found)
    missing = [external_id for external_id in ids if external_id not in found]
    now = utc_text(timezone.now())
    rows = []
    for pk, external_id in zip(writer.ids(Person, len(missing)), missing, strict=True):
        # The previous system's export carries no names; staff can change this one on the
        # person's page to the name the person goes by.
        name = f"Participant {external_id}"
        rows.append((pk, site.pk, name, "", None, "", "", now, None, external_id))
        found[external_id] = pk
    writer.write(Person, PERSON_COLUMNS, rows)
    result.people_created = len(missing)
    return found


def _staff(site: Site, external_ids: set[str], result: ImportResult) -> dict[str, tuple[int, str]]:
    """(user pk, discipline) for each staff external id at the site.

    Staff not known yet become inactive accounts with no usable password, so they can never
    sign in; an administrator can later merge or activate them.
    """
    User = get_user_model()
    found: dict[str, tuple[int, str]] = {}
    for chunk in _chunks(sorted(external_ids), _lookup_size()):
        found.update(
            (external_id, (user_id, discipline))
            for external_id, user_id, discipline in Membership.objects.filter(
                site=site, external_id__in=chunk
            ).values_list("external_id", "user_id", "discipline")
        )
    result.staff_matched = len(found)
    taken = set()
    for external_id in sorted(external_ids - found.keys()):
        base = f"imported-{site.slug}-{slugify(external_id) or 'staff'}"[:140]
        username, n = base, 1
        while username in taken or User.objects.filter(username=username).exists():
            n += 1
            username = f"{base}-{n}"
        taken.add(username)
        user = User(username=username, is_active=False)
        user.set_unusable_password()
        user.save()
        Membership.objects.create(
            user=user, site=site, discipline=Discipline.OTHER, external_id=external_id
        )
        found[external_id] = (user.pk, Discipline.OTHER.value)
        result.staff_created += 1
        result.created_staff_usernames.append(username)
    return found


def _next_tickets(site: Site, days: set[date]) -> defaultdict[date, int]:
    """The next free imported ticket number per day (above any an earlier import used)."""
    next_ticket: defaultdict[date, int] = defaultdict(lambda: IMPORT_TICKET_BASE + 1)
    used = (
        Arrival.objects.filter(site=site, ticket_number__gt=IMPORT_TICKET_BASE)
        .values("day")
        .annotate(last=Max("ticket_number"))
    )
    for entry in used:
        if entry["day"] in days:
            next_ticket[entry["day"]] = entry["last"] + 1
    return next_ticket
