"""Sealed visits: once a visit can no longer be undone (the day's close sets `sealed_at`), the
database refuses any change to it and to what it recorded — its participants, services,
medication events, tox screens and their results, goal progress written in it. Corrections
are addenda, which are append-only. Only an ended visit can be sealed, and a seal cannot be
lifted. Both engines.
"""

from django.db import migrations, models

from clinic.db_roles import append_only_operation

# (table, how to find the visit of a row from its own columns)
CHILDREN = [
    ("visits_visitparticipant", "visit_id"),
    ("visits_visit_services", "visit_id"),
    ("visits_medicationevent", "visit_id"),
    ("visits_toxscreen", "visit_id"),
    ("visits_goalprogress", "visit_id"),
]
SCREEN_CHILD = ("visits_toxresult", "screen_id")

SEALED = "SELECT 1 FROM visits_visit v WHERE v.id = {ref} AND v.sealed_at IS NOT NULL"
SEALED_SCREEN = (
    "SELECT 1 FROM visits_toxscreen s JOIN visits_visit v ON v.id = s.visit_id "
    "WHERE s.id = {ref} AND v.sealed_at IS NOT NULL"
)
MESSAGE = "this visit is sealed: corrections are addenda"

PG_VISIT = f"""
CREATE OR REPLACE FUNCTION visits_visit_sealed() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.sealed_at IS NOT NULL THEN
            RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'check_violation';
        END IF;
        RETURN OLD;
    END IF;
    IF TG_OP = 'UPDATE' THEN
        IF OLD.sealed_at IS NOT NULL THEN
            RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'check_violation';
        END IF;
    END IF;
    IF NEW.sealed_at IS NOT NULL AND NEW.ended_at IS NULL THEN
        RAISE EXCEPTION 'only an ended visit can be sealed' USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER visits_visit_sealed BEFORE INSERT OR UPDATE OR DELETE ON visits_visit
    FOR EACH ROW EXECUTE FUNCTION visits_visit_sealed();
"""


def pg_child(table: str, column: str, sealed: str) -> str:
    old, new = sealed.format(ref=f"OLD.{column}"), sealed.format(ref=f"NEW.{column}")
    return f"""
CREATE OR REPLACE FUNCTION {table}_sealed() RETURNS trigger AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        IF EXISTS ({old}) THEN
            RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'check_violation';
        END IF;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        IF EXISTS ({new}) THEN
            RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'check_violation';
        END IF;
    END IF;
    IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER {table}_sealed BEFORE INSERT OR UPDATE OR DELETE ON {table}
    FOR EACH ROW EXECUTE FUNCTION {table}_sealed();
"""


def pg_drop(table: str) -> str:
    return f"DROP TRIGGER IF EXISTS {table}_sealed ON {table}; DROP FUNCTION IF EXISTS {table}_sealed();"


SQLITE_VISIT = [
    f"""CREATE TRIGGER visits_visit_sealed_update BEFORE UPDATE ON visits_visit
    WHEN OLD.sealed_at IS NOT NULL BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END""",
    f"""CREATE TRIGGER visits_visit_sealed_delete BEFORE DELETE ON visits_visit
    WHEN OLD.sealed_at IS NOT NULL BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END""",
    """CREATE TRIGGER visits_visit_sealed_ended BEFORE UPDATE OF sealed_at ON visits_visit
    WHEN NEW.sealed_at IS NOT NULL AND NEW.ended_at IS NULL
    BEGIN SELECT RAISE(ABORT, 'only an ended visit can be sealed'); END""",
    """CREATE TRIGGER visits_visit_sealed_insert BEFORE INSERT ON visits_visit
    WHEN NEW.sealed_at IS NOT NULL AND NEW.ended_at IS NULL
    BEGIN SELECT RAISE(ABORT, 'only an ended visit can be sealed'); END""",
]
SQLITE_VISIT_DROP = [
    f"DROP TRIGGER IF EXISTS visits_visit_sealed_{op}" for op in ("update", "delete", "ended", "insert")
]


def sqlite_child(table: str, column: str, sealed: str) -> list[str]:
    old, new = sealed.format(ref=f"OLD.{column}"), sealed.format(ref=f"NEW.{column}")
    return [
        f"""CREATE TRIGGER {table}_sealed_insert BEFORE INSERT ON {table}
        WHEN EXISTS ({new}) BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END""",
        f"""CREATE TRIGGER {table}_sealed_update BEFORE UPDATE ON {table}
        WHEN EXISTS ({old}) OR EXISTS ({new}) BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END""",
        f"""CREATE TRIGGER {table}_sealed_delete BEFORE DELETE ON {table}
        WHEN EXISTS ({old}) BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END""",
    ]


def sqlite_child_drop(table: str) -> list[str]:
    return [f"DROP TRIGGER IF EXISTS {table}_sealed_{op}" for op in ("insert", "update", "delete")]


def _children():
    yield from ((table, column, SEALED) for table, column in CHILDREN)
    yield (*SCREEN_CHILD, SEALED_SCREEN)


def create(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_VISIT, params=None)
        for table, column, sealed in _children():
            schema_editor.execute(pg_child(table, column, sealed), params=None)
    elif vendor == "sqlite":
        for statement in SQLITE_VISIT:
            schema_editor.execute(statement)
        for table, column, sealed in _children():
            for statement in sqlite_child(table, column, sealed):
                schema_editor.execute(statement)


def drop(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(
            "DROP TRIGGER IF EXISTS visits_visit_sealed ON visits_visit; "
            "DROP FUNCTION IF EXISTS visits_visit_sealed();",
            params=None,
        )
        for table, _column, _sealed in _children():
            schema_editor.execute(pg_drop(table), params=None)
    elif vendor == "sqlite":
        for statement in SQLITE_VISIT_DROP:
            schema_editor.execute(statement)
        for table, _column, _sealed in _children():
            for statement in sqlite_child_drop(table):
                schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [
        ("queue", "0004_event_revision_change_needs_event"),
        ("visits", "0004_report_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="visit",
            name="sealed_at",
            field=models.DateTimeField(
                blank=True, editable=False, null=True, verbose_name="sealed"
            ),
        ),
        migrations.RunPython(create, drop, elidable=False),
        append_only_operation("visits_addendum"),
    ]
