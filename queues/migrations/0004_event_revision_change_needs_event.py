"""Queue events carry the revision they brought their arrival to, and the database refuses a
change to a place in line (state, staff member, room, revision) unless the event for exactly
that change was written first. Queue events become append-only.

Existing events get their revision by their order per arrival: the check-in is revision 1 and
every change since added one, each with its event.
"""

from django.db import migrations, models

from clinic.db_roles import append_only_operation

PG_CREATE = """
CREATE OR REPLACE FUNCTION queue_arrival_change_has_event() RETURNS trigger AS $$
BEGIN
    IF (NEW.state, NEW.staff_id, NEW.room_id, NEW.revision, NEW.state_changed_at)
        IS DISTINCT FROM (OLD.state, OLD.staff_id, OLD.room_id, OLD.revision, OLD.state_changed_at)
    THEN
        IF NEW.revision IS DISTINCT FROM OLD.revision + 1 OR NOT EXISTS (
            SELECT 1 FROM queue_arrivalevent e
            WHERE e.arrival_id = NEW.id AND e.revision = NEW.revision
              AND e.to_state = NEW.state
              AND e.to_staff_id IS NOT DISTINCT FROM NEW.staff_id
              AND e.to_room_id IS NOT DISTINCT FROM NEW.room_id
              AND e.at = NEW.state_changed_at
        ) THEN
            RAISE EXCEPTION 'a change to a place in line needs its queue event (arrival %)', NEW.id
                USING ERRCODE = 'check_violation';
        END IF;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER queue_arrival_change_has_event BEFORE UPDATE ON queue_arrival
    FOR EACH ROW EXECUTE FUNCTION queue_arrival_change_has_event();
"""
PG_DROP = """
DROP TRIGGER IF EXISTS queue_arrival_change_has_event ON queue_arrival;
DROP FUNCTION IF EXISTS queue_arrival_change_has_event();
"""
SQLITE_CREATE = """
CREATE TRIGGER queue_arrival_change_has_event
BEFORE UPDATE OF state, staff_id, room_id, revision, state_changed_at ON queue_arrival
WHEN NEW.state IS NOT OLD.state OR NEW.staff_id IS NOT OLD.staff_id
  OR NEW.room_id IS NOT OLD.room_id OR NEW.revision IS NOT OLD.revision
  OR NEW.state_changed_at IS NOT OLD.state_changed_at
BEGIN
    SELECT RAISE(ABORT, 'a change to a place in line needs its queue event')
    WHERE NEW.revision IS NOT OLD.revision + 1 OR NOT EXISTS (
        SELECT 1 FROM queue_arrivalevent e
        WHERE e.arrival_id = NEW.id AND e.revision = NEW.revision
          AND e.to_state = NEW.state
          AND e.to_staff_id IS NEW.staff_id
          AND e.to_room_id IS NEW.room_id
          AND e.at = NEW.state_changed_at
    );
END
"""
SQLITE_DROP = "DROP TRIGGER IF EXISTS queue_arrival_change_has_event"

BACKFILL = """
UPDATE queue_arrivalevent SET revision = (
    SELECT n FROM (
        SELECT id, row_number() OVER (PARTITION BY arrival_id ORDER BY at, id) AS n
        FROM queue_arrivalevent
    ) numbered WHERE numbered.id = queue_arrivalevent.id
)
"""


def create(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    schema_editor.execute(BACKFILL)
    if vendor == "postgresql":
        schema_editor.execute(PG_CREATE, params=None)
    elif vendor == "sqlite":
        schema_editor.execute(SQLITE_CREATE)


def drop(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_DROP, params=None)
    elif vendor == "sqlite":
        schema_editor.execute(SQLITE_DROP)


class Migration(migrations.Migration):
    dependencies = [
        ("clinic", "0009_admin_log_append_only"),
        ("queue", "0003_report_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="arrivalevent",
            name="revision",
            field=models.PositiveIntegerField(editable=False, null=True),
        ),
        migrations.RunPython(create, drop, elidable=False),
        migrations.AddConstraint(
            model_name="arrivalevent",
            constraint=models.UniqueConstraint(
                condition=models.Q(revision__isnull=False),
                fields=("arrival", "revision"),
                name="one_event_per_arrival_revision",
            ),
        ),
        append_only_operation("queue_arrivalevent"),
    ]
