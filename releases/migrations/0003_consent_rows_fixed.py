"""A signed consent is never edited: corrections are a new consent (RELEASES.md). Both
databases refuse UPDATE on consents and on their purposes, so neither the admin, the ORM nor
raw SQL from the application can quietly widen what someone agreed to. Revocations and expiry
events are rows of their own."""

from django.db import migrations

TABLES = ("releases_consent", "releases_consentpurpose")
MESSAGE = "a signed consent is never edited; record a new consent instead"

POSTGRES_CREATE = f"""
CREATE OR REPLACE FUNCTION releases_consent_fixed() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'check_violation';
END;
$$ LANGUAGE plpgsql;
""" + "".join(
    f"""
CREATE TRIGGER {table}_fixed BEFORE UPDATE ON {table}
    FOR EACH ROW EXECUTE FUNCTION releases_consent_fixed();
"""
    for table in TABLES
)
POSTGRES_DROP = (
    "".join(f"DROP TRIGGER IF EXISTS {table}_fixed ON {table};\n" for table in TABLES)
    + "DROP FUNCTION IF EXISTS releases_consent_fixed();\n"
)

SQLITE_CREATE = [
    f"""
    CREATE TRIGGER {table}_fixed BEFORE UPDATE ON {table}
    BEGIN
        SELECT RAISE(ABORT, '{MESSAGE}');
    END
    """
    for table in TABLES
]
SQLITE_DROP = [f"DROP TRIGGER IF EXISTS {table}_fixed" for table in TABLES]


def create(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_CREATE, params=None)
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
    dependencies = [("releases", "0002_disclosure_log_append_only")]

    operations = [migrations.RunPython(create, drop)]
