"""On PostgreSQL the database itself refuses UPDATE and DELETE on the disclosure log, so not
even raw SQL from the application (or a superuser's ORM call) can rewrite history.

TRUNCATE is left to the table's owner (database administration, and the test suite's flush).

On both databases a recipient's category column cannot be changed: recategorising is a
recorded RecipientCategoryChange, so no ORM update or admin edit can quietly turn a court into
a treatment provider.
"""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION releases_disclosure_log_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the disclosure log is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER releases_disclosure_log_append_only
    BEFORE UPDATE OR DELETE ON releases_disclosurelog
    FOR EACH ROW EXECUTE FUNCTION releases_disclosure_log_append_only();

CREATE OR REPLACE FUNCTION releases_recipient_category_fixed() RETURNS trigger AS $$
BEGIN
    IF NEW.category IS DISTINCT FROM OLD.category THEN
        RAISE EXCEPTION 'a recipient''s category changes only through a recorded change'
            USING ERRCODE = 'check_violation';  -- IntegrityError, as on SQLite
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER releases_recipient_category_fixed
    BEFORE UPDATE ON releases_recipient
    FOR EACH ROW EXECUTE FUNCTION releases_recipient_category_fixed();
"""

SQLITE_CREATE = [
    """
    CREATE TRIGGER releases_recipient_category_fixed
    BEFORE UPDATE OF category ON releases_recipient
    WHEN NEW.category IS NOT OLD.category
    BEGIN
        SELECT RAISE(ABORT, 'a recipient''s category changes only through a recorded change');
    END
    """
]
SQLITE_DROP = ["DROP TRIGGER IF EXISTS releases_recipient_category_fixed"]

DROP = """
DROP TRIGGER IF EXISTS releases_recipient_category_fixed ON releases_recipient;
DROP FUNCTION IF EXISTS releases_recipient_category_fixed();
DROP TRIGGER IF EXISTS releases_disclosure_log_append_only ON releases_disclosurelog;
DROP FUNCTION IF EXISTS releases_disclosure_log_append_only();
"""


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)  # no placeholders: % is PL/pgSQL
    elif schema_editor.connection.vendor == "sqlite":
        for statement in SQLITE_CREATE:
            schema_editor.execute(statement)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)
    elif schema_editor.connection.vendor == "sqlite":
        for statement in SQLITE_DROP:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("releases", "0001_initial")]

    operations = [migrations.RunPython(create, drop)]
