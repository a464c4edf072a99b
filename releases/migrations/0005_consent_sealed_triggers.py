"""A recorded consent is fixed, children included (RELEASES.md: "never edited after signing").

0003 refused UPDATE of consents and purposes, but a recipient could still be added to or
removed from a signed consent (releases_consent_recipients), and a purpose added. Removing the
treatment provider from a consent that bundled it with a court would have made it a valid
consent for the court.

`consent_record` writes the consent unsealed, then its recipients and purposes, then sets
`sealed` as its last step, all in one transaction. From then on the database refuses:

- any UPDATE of the consent row other than that one step (unsealed -> sealed, nothing else
  changing), so it cannot be unsealed either;
- INSERT, UPDATE and DELETE of its recipients and purposes (UPDATE of either, always);
- UPDATE of a medical-emergency release record (what was sent, with its hash);
- on PostgreSQL, DELETE of a sealed consent row (TRUNCATE, used by the test suite's flush, is
  left to the table's owner). SQLite's flush is a plain DELETE FROM in no fixed table order,
  so on SQLite the consent row itself is not guarded against DELETE (children are, while the
  consent exists): SQLite is for development; production runs on PostgreSQL.

Consents recorded before this migration are sealed here (they were written in one transaction
by the same service). The gate ignores unsealed consents.

On SQLite the UPDATE trigger lists the consent's columns as they are at this migration: a
migration adding a column to releases_consent must re-create it.
"""

from django.db import migrations

MESSAGE = "a signed consent is never edited; record a new consent instead"
EMERGENCY_MESSAGE = "a medical emergency release record is never changed"
CHILDREN = ("releases_consentpurpose", "releases_consent_recipients")

POSTGRES_CREATE = f"""
DROP TRIGGER IF EXISTS releases_consent_fixed ON releases_consent;
DROP TRIGGER IF EXISTS releases_consentpurpose_fixed ON releases_consentpurpose;
UPDATE releases_consent SET sealed = true WHERE NOT sealed;

CREATE OR REPLACE FUNCTION releases_consent_sealed_row() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.sealed THEN
            RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'check_violation';
        END IF;
        RETURN OLD;
    END IF;
    -- The one change allowed: sealing a consent being recorded, nothing else changing.
    IF OLD.sealed OR NOT NEW.sealed
        OR (to_jsonb(NEW) - 'sealed') IS DISTINCT FROM (to_jsonb(OLD) - 'sealed') THEN
        RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER releases_consent_sealed BEFORE UPDATE OR DELETE ON releases_consent
    FOR EACH ROW EXECUTE FUNCTION releases_consent_sealed_row();

CREATE OR REPLACE FUNCTION releases_consent_child_fixed() RETURNS trigger AS $$
DECLARE
    parent bigint;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'check_violation';
    END IF;
    IF TG_OP = 'INSERT' THEN
        parent := NEW.consent_id;
    ELSE
        parent := OLD.consent_id;
    END IF;
    IF EXISTS (SELECT 1 FROM releases_consent WHERE id = parent AND sealed) THEN
        RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'check_violation';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION releases_emergency_release_fixed() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '{EMERGENCY_MESSAGE}' USING ERRCODE = 'check_violation';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER releases_emergencyrelease_fixed BEFORE UPDATE ON releases_emergencyrelease
    FOR EACH ROW EXECUTE FUNCTION releases_emergency_release_fixed();
""" + "".join(
    f"""
CREATE TRIGGER {table}_sealed BEFORE INSERT OR UPDATE OR DELETE ON {table}
    FOR EACH ROW EXECUTE FUNCTION releases_consent_child_fixed();
"""
    for table in CHILDREN
)

POSTGRES_DROP = (
    "".join(f"DROP TRIGGER IF EXISTS {table}_sealed ON {table};\n" for table in CHILDREN)
    + """
DROP TRIGGER IF EXISTS releases_consent_sealed ON releases_consent;
DROP TRIGGER IF EXISTS releases_emergencyrelease_fixed ON releases_emergencyrelease;
DROP FUNCTION IF EXISTS releases_consent_sealed_row();
DROP FUNCTION IF EXISTS releases_consent_child_fixed();
DROP FUNCTION IF EXISTS releases_emergency_release_fixed();
CREATE TRIGGER releases_consent_fixed BEFORE UPDATE ON releases_consent
    FOR EACH ROW EXECUTE FUNCTION releases_consent_fixed();
CREATE TRIGGER releases_consentpurpose_fixed BEFORE UPDATE ON releases_consentpurpose
    FOR EACH ROW EXECUTE FUNCTION releases_consent_fixed();
"""
)


def _sqlite_create(columns: list[str]) -> list[str]:
    changed = " OR ".join(f'NEW."{c}" IS NOT OLD."{c}"' for c in columns if c != "sealed")
    raise_fixed = f"SELECT RAISE(ABORT, '{MESSAGE}');"
    statements = [
        # AddField rebuilt the table on SQLite, dropping 0003's trigger; drop it anyway.
        "DROP TRIGGER IF EXISTS releases_consent_fixed",
        "DROP TRIGGER IF EXISTS releases_consentpurpose_fixed",
        "UPDATE releases_consent SET sealed = 1 WHERE NOT sealed",
        f"""
        CREATE TRIGGER releases_consent_sealed BEFORE UPDATE ON releases_consent
        WHEN OLD.sealed OR NOT NEW.sealed OR {changed}
        BEGIN {raise_fixed} END
        """,
        f"""
        CREATE TRIGGER releases_emergencyrelease_fixed BEFORE UPDATE ON releases_emergencyrelease
        BEGIN SELECT RAISE(ABORT, '{EMERGENCY_MESSAGE}'); END
        """,
    ]
    for table in CHILDREN:
        statements += [
            f"""
            CREATE TRIGGER {table}_sealed_insert BEFORE INSERT ON {table}
            WHEN (SELECT sealed FROM releases_consent WHERE id = NEW.consent_id)
            BEGIN {raise_fixed} END
            """,
            f"""
            CREATE TRIGGER {table}_sealed_delete BEFORE DELETE ON {table}
            WHEN (SELECT sealed FROM releases_consent WHERE id = OLD.consent_id)
            BEGIN {raise_fixed} END
            """,
            f"CREATE TRIGGER {table}_sealed_update BEFORE UPDATE ON {table} BEGIN {raise_fixed} END",
        ]
    return statements


SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS releases_consent_sealed",
    "DROP TRIGGER IF EXISTS releases_emergencyrelease_fixed",
    *(
        f"DROP TRIGGER IF EXISTS {table}_sealed_{op}"
        for table in CHILDREN
        for op in ("insert", "delete", "update")
    ),
    f"""CREATE TRIGGER releases_consent_fixed BEFORE UPDATE ON releases_consent
    BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END""",
    f"""CREATE TRIGGER releases_consentpurpose_fixed BEFORE UPDATE ON releases_consentpurpose
    BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END""",
]


def create(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_CREATE, params=None)
    elif vendor == "sqlite":
        consent = apps.get_model("releases", "Consent")
        columns = [f.column for f in consent._meta.concrete_fields]
        for statement in _sqlite_create(columns):
            schema_editor.execute(statement, params=None)


def drop(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_DROP, params=None)
    elif vendor == "sqlite":
        for statement in SQLITE_DROP:
            schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [("releases", "0004_emergency_release_sealed_consent")]

    operations = [migrations.RunPython(create, drop)]
