"""Fast appends of plain rows, for the importer and the synthetic-data generator.

No model instances and no per-row ORM work: rows are tuples of ints, strs, bools and None,
written with COPY on PostgreSQL and executemany on SQLite, with ids chosen here. Datetimes are
naive UTC text ("YYYY-MM-DD HH:MM:SS", see `utc_text`), which is how Django keeps them in
SQLite and what PostgreSQL reads into a timestamptz in a UTC session.

On PostgreSQL each table written is locked (SHARE ROW EXCLUSIVE: reads go on, other writers
wait) until the transaction ends, so the reserved ids stay ours; the database's id sequences
are moved past them at `finish()`.
"""

import time as clock
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime

from django.db import connection

from clinic.db_roles import owns_tables
from queues.models import Arrival
from visits.models import MedicationEvent, Visit, VisitParticipant

# Columns of the tables both loaders fill, in the order their rows list them.
PERSON_COLUMNS = (
    "id",
    "site_id",
    "name",
    "pronouns",
    "date_of_birth",
    "phone",
    "what_helps",
    "created_at",
    "created_by_id",
    "external_id",
)
ARRIVAL_COLUMNS = (
    "id",
    "site_id",
    "person_id",
    "service_id",
    "urgent",
    "urgent_reason",
    "day",
    "ticket_number",
    "ticket",
    "arrived_at",
    "appointment_at",
    "state",
    "state_changed_at",
    "staff_id",
    "room_id",
    "revision",
    "nonce",
    "import_key",
)
VISIT_COLUMNS = (
    "id",
    "site_id",
    "person_id",
    "arrival_id",
    "origin",
    "started_at",
    "day",
    "ended_at",
    "opened_by_id",
    "priorities",
    "note",
)
PARTICIPANT_COLUMNS = ("id", "visit_id", "user_id", "discipline", "joined_at")
SERVICE_COLUMNS = ("id", "visit_id", "service_id")
MEDICATION_COLUMNS = (
    "id",
    "visit_id",
    "medication",
    "dose",
    "days_supply",
    "action",
    "recorded_by_id",
    "recorded_at",
)


def utc_text(moment: datetime) -> str:
    """An aware datetime as the naive UTC text BulkWriter rows carry."""
    return str(moment.astimezone(UTC).replace(tzinfo=None))


class BulkWriter:
    """Appends plain rows to tables, with ids chosen here (see the module docstring).

    `drop_foreign_keys` (for loads of generated data only) removes the foreign keys from and to
    some tables until `finish()` adds them back, where PostgreSQL checks every row in one
    set-based pass (its documented way to populate a database). Django's foreign keys are
    deferred: kept, they queue one check per row, run row by row at commit, several times
    slower than the load itself.
    """

    def __init__(self, *, trusted: bool = False):
        # trusted: every string in the rows was made by our own code and holds no tab, newline
        # or backslash, so PostgreSQL gets COPY text without escaping (fast); otherwise psycopg
        # escapes each value.
        self.trusted = trusted
        self.immediate = False
        self.postgres = connection.vendor == "postgresql"
        self.next_id: dict[str, int] = {}
        self.counts: Counter[str] = Counter()
        self.foreign_keys: list[tuple[str, str, str]] = []
        self.indexes: list[tuple[str, str]] = []
        self.seconds: Counter[str] = Counter()  # time spent writing, per table

    def reserve(self, model) -> None:
        table = model._meta.db_table
        with connection.cursor() as cursor:
            if self.postgres:
                cursor.execute("SET LOCAL TIME ZONE 'UTC'")
                # Writers wait until the ids are taken. (A table the role may only insert into,
                # an append-only one, cannot be locked this way: nothing here writes to one.)
                cursor.execute("SELECT has_table_privilege(%s, 'UPDATE')", [table])
                if cursor.fetchone()[0]:
                    cursor.execute(f'LOCK TABLE "{table}" IN SHARE ROW EXCLUSIVE MODE')
                cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
                sequence = cursor.fetchone()[0]
                cursor.execute(
                    f'SELECT GREATEST((SELECT COALESCE(MAX(id), 0) FROM "{table}"), '  # noqa: S608
                    f"(SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM {sequence}))"
                )
            else:
                cursor.execute(f'SELECT COALESCE(MAX(id), 0) FROM "{table}"')  # noqa: S608
            self.next_id[table] = cursor.fetchone()[0] + 1

    def drop_foreign_keys(self, models) -> None:
        """PostgreSQL: drop every foreign key from or to these tables, and their non-unique
        indexes, until finish() puts them back (indexes built in one sort each, foreign keys
        checked in one pass each). Unique indexes stay, and keep checking every row.

        Also makes deleting the earlier synthetic rows fast: each deleted row would otherwise
        be checked against every table that may point at it, one row at a time.
        """
        if not self.postgres:
            return
        tables = [f'"{model._meta.db_table}"' for model in models]
        if not owns_tables(tables):
            return  # the application's role keeps them (slower; generate_synthetic is the owner)
        with connection.cursor() as cursor:
            # Checks still queued from earlier in the transaction would block ALTER TABLE.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            self.immediate = True
            cursor.execute(
                "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
                "FROM pg_constraint WHERE contype = 'f' AND (conrelid = ANY(%s::regclass[]) "
                "OR confrelid = ANY(%s::regclass[])) ORDER BY 1, 2",
                [tables, tables],
            )
            self.foreign_keys = cursor.fetchall()
            for table, name, _definition in self.foreign_keys:
                cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
            cursor.execute(
                "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index "
                "WHERE indrelid = ANY(%s::regclass[]) AND NOT indisunique ORDER BY 1",
                [tables],
            )
            self.indexes = cursor.fetchall()
            for name, _definition in self.indexes:
                cursor.execute(f"DROP INDEX {name}")

    def ids(self, model, n: int) -> range:
        table = model._meta.db_table
        first = self.next_id[table]
        self.next_id[table] = first + n
        return range(first, first + n)

    def write(self, model, columns: Sequence[str], rows: Sequence[tuple]) -> None:
        if not rows:
            return
        table = model._meta.db_table
        names = ", ".join(f'"{c}"' for c in columns)
        self.counts[table] += len(rows)
        began = clock.monotonic()
        if self.postgres:
            copy_sql = f'COPY "{table}" ({names}) FROM STDIN'
            with connection.cursor() as cursor, cursor.cursor.copy(copy_sql) as copy:
                if self.trusted:  # COPY's text format: tab-separated, \\N for NULL
                    copy.write(
                        "".join(
                            "\t".join("\\N" if v is None else str(v) for v in row) + "\n"
                            for row in rows
                        )
                    )
                else:
                    for row in rows:
                        copy.write_row(row)
        else:
            marks = ", ".join("?" * len(columns))
            connection.ensure_connection()
            connection.connection.executemany(
                f'INSERT INTO "{table}" ({names}) VALUES ({marks})',  # noqa: S608
                rows,
            )
        self.seconds[table] += clock.monotonic() - began

    def finish(self) -> None:
        if not self.postgres:
            return  # SQLite's AUTOINCREMENT follows the largest id written
        began = clock.monotonic()
        with connection.cursor() as cursor:
            if self.indexes:
                cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
            for _name, definition in self.indexes:
                cursor.execute(definition)
            self.seconds["(indexes built)"] = clock.monotonic() - began
            began = clock.monotonic()
            for table, name, definition in self.foreign_keys:
                cursor.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
            self.seconds["(foreign keys checked)"] = clock.monotonic() - began
            if self.immediate:
                cursor.execute("SET CONSTRAINTS ALL DEFERRED")  # Django's default again
            for table, next_id in self.next_id.items():
                if next_id > 1:
                    cursor.execute(
                        "SELECT setval(pg_get_serial_sequence(%s, 'id'), %s)", [table, next_id - 1]
                    )

    def write_with_ids(self, model, columns: Sequence[str], rows: Sequence[tuple]) -> None:
        """Rows without their id (the first column): ids are taken here."""
        ids = self.ids(model, len(rows))
        self.write(model, columns, [(pk, *row) for pk, row in zip(ids, rows, strict=True)])

    def write_visits(self, *, arrivals, visits, participants, delivered, medications) -> None:
        """One batch of arrivals and their visits (both with ids), and the visits' participants,
        services delivered and medication events (without ids), in the order keys need."""
        self.write(Arrival, ARRIVAL_COLUMNS, arrivals)
        self.write(Visit, VISIT_COLUMNS, visits)
        self.write_with_ids(VisitParticipant, PARTICIPANT_COLUMNS, participants)
        self.write_with_ids(Visit.services.through, SERVICE_COLUMNS, delivered)
        self.write_with_ids(MedicationEvent, MEDICATION_COLUMNS, medications)
