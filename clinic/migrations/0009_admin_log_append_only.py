"""The admin's action log (django_admin_log) is append-only: the database refuses UPDATE and
DELETE of its rows, on PostgreSQL and on SQLite, so nobody can rewrite or erase what was done
in the admin (not the application, not a superuser's ORM call, not raw SQL from it).

Consequences, on purpose:
- an account with log entries cannot be deleted (the entries would cascade); accounts are
  deactivated instead, and the admin never deletes them;
- removing a content type that log entries point at fails (Django would set it to NULL).

TRUNCATE is left to the table's owner on PostgreSQL (database administration, and the test
suite's flush). SQLite's flush deletes row by row, so on SQLite a test database holding admin
log rows cannot be flushed (transactional tests that write to the admin): SQLite is for
development; production runs on PostgreSQL. SQLite also drops a table's triggers when a
migration rebuilds the table: a later migration altering django_admin_log must create them
again there.
"""

from django.db import migrations

MESSAGE = "the admin log is append-only"

POSTGRES_CREATE = f"""
CREATE OR REPLACE FUNCTION clinic_admin_log_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '{MESSAGE} (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER clinic_admin_log_append_only
    BEFORE UPDATE OR DELETE ON django_admin_log
    FOR EACH ROW EXECUTE FUNCTION clinic_admin_log_append_only();
"""

POSTGRES_DROP = """
DROP TRIGGER IF EXISTS clinic_admin_log_append_only ON django_admin_log;
DROP FUNCTION IF EXISTS clinic_admin_log_append_only();
"""

SQLITE_CREATE = [
    f"""
    CREATE TRIGGER clinic_admin_log_no_update BEFORE UPDATE ON django_admin_log
    BEGIN SELECT RAISE(ABORT, '{MESSAGE} (UPDATE refused)'); END
    """,
    f"""
    CREATE TRIGGER clinic_admin_log_no_delete BEFORE DELETE ON django_admin_log
    BEGIN SELECT RAISE(ABORT, '{MESSAGE} (DELETE refused)'); END
    """,
]

SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS clinic_admin_log_no_update",
    "DROP TRIGGER IF EXISTS clinic_admin_log_no_delete",
]


def create(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_CREATE, params=None)  # no placeholders: % is PL/pgSQL
    elif vendor == "sqlite":
        for statement in SQLITE_CREATE:
            schema_editor.execute(statement, params=None)


def drop(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_DROP, params=None)
    elif vendor == "sqlite":
        for statement in SQLITE_DROP:
            schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("admin", "0003_logentry_add_action_flag_choices"),
        ("clinic", "0008_lockoutevent"),
    ]

    operations = [migrations.RunPython(create, drop)]
