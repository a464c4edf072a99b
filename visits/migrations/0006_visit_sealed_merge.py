"""Sealed visits move with a merge of two records of one person, and only so.

0005 refuses every change to a sealed visit. This allows exactly one: the visit's person
changing from a record to the record it was merged into, when an approved merge of that record
into that one exists (clinic.PersonMerge), with nothing else of the visit changing in the same
statement. Everything else stays refused: any other column, a person change without an
approved merge (or towards a third record), deletion. What the visit recorded (participants,
services, medication, tox screens, goal progress) points at the visit and does not move.
Both engines.

On SQLite the trigger lists the visit's columns as they are at this migration: a migration
adding a column to visits_visit must make it again (tests/visits/test_merge_database.py fails
until it does).
"""

from django.db import migrations

MESSAGE = "this visit is sealed: corrections are addenda"
APPROVED = (
    "SELECT 1 FROM clinic_personmerge m WHERE m.duplicate_id = OLD.person_id "
    "AND m.kept_id = NEW.person_id AND m.status = 'approved'"
)

PG_VISIT = """
CREATE OR REPLACE FUNCTION visits_visit_sealed() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.sealed_at IS NOT NULL THEN
            RAISE EXCEPTION '{message}' USING ERRCODE = 'check_violation';
        END IF;
        RETURN OLD;
    END IF;
    IF TG_OP = 'UPDATE' THEN
        IF OLD.sealed_at IS NOT NULL THEN
            {allowed}
            RAISE EXCEPTION '{message}' USING ERRCODE = 'check_violation';
        END IF;
    END IF;
    IF NEW.sealed_at IS NOT NULL AND NEW.ended_at IS NULL THEN
        RAISE EXCEPTION 'only an ended visit can be sealed' USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
"""
# The one change a sealed visit allows: its person, from a merged record to the kept one.
PG_ALLOWED = f"""-- Moved by an approved merge of two records of one person, nothing else changing.
            IF NEW.person_id IS DISTINCT FROM OLD.person_id
                AND (to_jsonb(NEW) - 'person_id') = (to_jsonb(OLD) - 'person_id')
                AND EXISTS ({APPROVED}) THEN
                RETURN NEW;
            END IF;"""


def _sqlite_update(columns: list[str] | None) -> str:
    if columns is None:  # 0005's trigger, for migrating back
        when = "OLD.sealed_at IS NOT NULL"
    else:
        same = " AND ".join(f'NEW."{c}" IS OLD."{c}"' for c in columns if c != "person_id")
        when = (
            "OLD.sealed_at IS NOT NULL AND NOT (NEW.person_id IS NOT OLD.person_id "
            f"AND {same} AND EXISTS ({APPROVED}))"
        )
    return f"""CREATE TRIGGER visits_visit_sealed_update BEFORE UPDATE ON visits_visit
    WHEN {when} BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END"""


def create(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(
            PG_VISIT.replace("{message}", MESSAGE).replace("{allowed}", PG_ALLOWED), params=None
        )
    elif vendor == "sqlite":
        visit = apps.get_model("visits", "Visit")
        columns = [f.column for f in visit._meta.concrete_fields]
        schema_editor.execute("DROP TRIGGER IF EXISTS visits_visit_sealed_update")
        schema_editor.execute(_sqlite_update(columns))


def drop(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(
            PG_VISIT.replace("{message}", MESSAGE).replace("{allowed}", ""), params=None
        )
    elif vendor == "sqlite":
        schema_editor.execute("DROP TRIGGER IF EXISTS visits_visit_sealed_update")
        schema_editor.execute(_sqlite_update(None))


class Migration(migrations.Migration):
    dependencies = [
        ("visits", "0005_visit_sealed"),
        ("clinic", "0012_person_merge"),
    ]

    operations = [migrations.RunPython(create, drop, elidable=False)]
