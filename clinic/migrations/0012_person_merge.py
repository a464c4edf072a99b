"""Two records of one person (README: "Two records for one person").

- `Person.merged_into`: set on the second record when its merge into the kept one is approved.
  The database refuses setting it without an approved merge of that record into that one,
  changing or clearing it once set, and a record added already merged (both engines).
- `PersonMerge`: the proposal and its decision. The database refuses adding one that is not a
  proposal, changing a proposal other than by deciding it (status, who, when, why not, what
  moved), and any change to or removal of a decided one (both engines).
- Both are in the history of changes: people already were (their new column is recorded from
  here on: SQLite's triggers list the columns, so they are made again), merges now are, each
  concerning the second record (so a merge shows in the history of both records once the
  second is merged into the first).

On SQLite the merge's UPDATE trigger lists the table's columns as they are here: a migration
adding a column to clinic_personmerge must make it again.
"""

import importlib

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

from clinic import history

PERSON = {"clinic_person": {"person": ("id",), "site": ("site_id",)}}
MERGE = {"clinic_personmerge": {"person": ("duplicate_id",), "site": ("site_id",)}}

PERSON_MESSAGE = "a record is merged into another only by an approved merge, and stays merged"
MERGE_MESSAGE = "a decided merge is never changed; a proposal changes only by being decided"
# What deciding a proposal sets; nothing else of it ever changes.
DECISION = ("status", "decided_by_id", "decided_at", "decline_reason", "moved")

APPROVED = (
    "SELECT 1 FROM clinic_personmerge m WHERE m.duplicate_id = NEW.id "
    "AND m.kept_id = NEW.merged_into_id AND m.status = 'approved'"
)

POSTGRES_CREATE = f"""
CREATE OR REPLACE FUNCTION clinic_person_merged_sealed() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.merged_into_id IS NOT NULL THEN
            RAISE EXCEPTION '{PERSON_MESSAGE}' USING ERRCODE = 'check_violation';
        END IF;
        RETURN NEW;
    END IF;
    IF OLD.merged_into_id IS NOT NULL THEN
        IF NEW.merged_into_id IS DISTINCT FROM OLD.merged_into_id THEN
            RAISE EXCEPTION '{PERSON_MESSAGE}' USING ERRCODE = 'check_violation';
        END IF;
    ELSIF NEW.merged_into_id IS NOT NULL AND NOT EXISTS ({APPROVED}) THEN
        RAISE EXCEPTION '{PERSON_MESSAGE}' USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER clinic_person_merged_sealed BEFORE INSERT OR UPDATE OF merged_into_id
    ON clinic_person FOR EACH ROW EXECUTE FUNCTION clinic_person_merged_sealed();

CREATE OR REPLACE FUNCTION clinic_personmerge_sealed() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.status <> 'proposed' THEN
            RAISE EXCEPTION '{MERGE_MESSAGE}' USING ERRCODE = 'check_violation';
        END IF;
        RETURN NEW;
    END IF;
    IF OLD.status <> 'proposed' THEN
        RAISE EXCEPTION '{MERGE_MESSAGE}' USING ERRCODE = 'check_violation';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    IF (to_jsonb(NEW) - ARRAY[{", ".join(f"'{c}'" for c in DECISION)}])
        IS DISTINCT FROM (to_jsonb(OLD) - ARRAY[{", ".join(f"'{c}'" for c in DECISION)}]) THEN
        RAISE EXCEPTION '{MERGE_MESSAGE}' USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER clinic_personmerge_sealed BEFORE INSERT OR UPDATE OR DELETE
    ON clinic_personmerge FOR EACH ROW EXECUTE FUNCTION clinic_personmerge_sealed();
"""
POSTGRES_DROP = """
DROP TRIGGER IF EXISTS clinic_person_merged_sealed ON clinic_person;
DROP FUNCTION IF EXISTS clinic_person_merged_sealed();
DROP TRIGGER IF EXISTS clinic_personmerge_sealed ON clinic_personmerge;
DROP FUNCTION IF EXISTS clinic_personmerge_sealed();
"""


def _sqlite_create(merge_columns: list[str]) -> list[str]:
    raise_person = f"SELECT RAISE(ABORT, '{PERSON_MESSAGE}');"
    raise_merge = f"SELECT RAISE(ABORT, '{MERGE_MESSAGE}');"
    changed = " OR ".join(
        f'NEW."{c}" IS NOT OLD."{c}"' for c in merge_columns if c not in DECISION
    )
    return [
        f"""CREATE TRIGGER clinic_person_merged_sealed_insert BEFORE INSERT ON clinic_person
        WHEN NEW.merged_into_id IS NOT NULL BEGIN {raise_person} END""",
        f"""CREATE TRIGGER clinic_person_merged_sealed_update
        BEFORE UPDATE OF merged_into_id ON clinic_person
        WHEN (OLD.merged_into_id IS NOT NULL AND NEW.merged_into_id IS NOT OLD.merged_into_id)
          OR (OLD.merged_into_id IS NULL AND NEW.merged_into_id IS NOT NULL
              AND NOT EXISTS ({APPROVED}))
        BEGIN {raise_person} END""",
        f"""CREATE TRIGGER clinic_personmerge_sealed_insert BEFORE INSERT ON clinic_personmerge
        WHEN NEW.status IS NOT 'proposed' BEGIN {raise_merge} END""",
        f"""CREATE TRIGGER clinic_personmerge_sealed_update BEFORE UPDATE ON clinic_personmerge
        WHEN OLD.status IS NOT 'proposed' OR {changed} BEGIN {raise_merge} END""",
        f"""CREATE TRIGGER clinic_personmerge_sealed_delete BEFORE DELETE ON clinic_personmerge
        WHEN OLD.status IS NOT 'proposed' BEGIN {raise_merge} END""",
    ]


SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS clinic_person_merged_sealed_insert",
    "DROP TRIGGER IF EXISTS clinic_person_merged_sealed_update",
    *(f"DROP TRIGGER IF EXISTS clinic_personmerge_sealed_{op}" for op in ("insert", "update", "delete")),
]


# The tables whose history triggers 0011 made (frozen there).
_0011 = importlib.import_module("clinic.migrations.0011_changehistory")
AUDITED_BEFORE, OPAQUE_BEFORE = _0011.TABLES, _0011.OPAQUE


def history_again(apps, schema_editor):
    """Backwards, SQLite: the history triggers 0011 made, with the columns of this point of the
    plan (removing the new column rebuilt clinic_person, and they had to go first)."""
    if schema_editor.connection.vendor == "sqlite":
        history.create_triggers(apps, schema_editor, AUDITED_BEFORE, OPAQUE_BEFORE)


def history_lifted(apps, schema_editor):
    """Backwards, SQLite: removing the new column rebuilds clinic_person, which SQLite refuses
    while other tables' triggers name it (a goal's history reads its person's site)."""
    if schema_editor.connection.vendor == "sqlite":
        history.drop_triggers(apps, schema_editor, AUDITED_BEFORE)


def create(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    history.recreate_sqlite_triggers(apps, schema_editor, PERSON, {})
    history.create_triggers(apps, schema_editor, MERGE, {})
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_CREATE, params=None)
    elif vendor == "sqlite":
        merge = apps.get_model("clinic", "PersonMerge")
        for statement in _sqlite_create([f.column for f in merge._meta.concrete_fields]):
            schema_editor.execute(statement, params=None)


def drop(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_DROP, params=None)
    elif vendor == "sqlite":
        for statement in SQLITE_DROP:
            schema_editor.execute(statement, params=None)
    history.drop_triggers(apps, schema_editor, MERGE)


class Migration(migrations.Migration):
    dependencies = [
        ("clinic", "0011_changehistory"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        # Backwards only: forwards, `create` below makes clinic_person's triggers again.
        migrations.RunPython(migrations.RunPython.noop, history_again, elidable=False),
        migrations.AddField(
            model_name="person",
            name="merged_into",
            field=models.ForeignKey(
                blank=True,
                editable=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="merged_records",
                to="clinic.person",
                verbose_name="merged into",
            ),
        ),
        migrations.RunPython(migrations.RunPython.noop, history_lifted, elidable=False),
        migrations.AlterField(
            model_name="accesslog",
            name="what",
            field=models.CharField(
                choices=[
                    ("person", "Person's clinical record"),
                    ("visit", "Visit"),
                    ("tox", "Tox-screen conversation"),
                    ("goals", "Goals"),
                    ("consent", "Consent"),
                    ("release", "Release request"),
                    ("packet", "Release packet"),
                    ("emergency", "Medical emergency release"),
                    ("accounting", "Accounting of disclosures"),
                    ("incoming", "Request from outside"),
                    ("outreach", "Outreach list"),
                    ("history", "History of changes"),
                    ("merge", "Two records compared for a merge"),
                ],
                max_length=10,
            ),
        ),
        migrations.CreateModel(
            name="PersonMerge",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("reason", models.TextField(max_length=1000, verbose_name="why they are one person")),
                ("take_from_duplicate", models.JSONField(default=list, verbose_name="details taken from the second record")),
                ("append_what_helps", models.BooleanField(default=False, verbose_name='add the second record\'s "what helps"')),
                ("snapshot", models.JSONField(editable=False)),
                ("nonce", models.UUIDField(blank=True, editable=False, null=True)),
                ("proposed_at", models.DateTimeField(verbose_name="proposed")),
                ("status", models.CharField(choices=[("proposed", "Waiting for the privacy officer"), ("approved", "Merged"), ("declined", "Declined")], default="proposed", max_length=10, verbose_name="status")),
                ("decided_at", models.DateTimeField(blank=True, null=True, verbose_name="decided")),
                ("decline_reason", models.CharField(blank=True, max_length=500, verbose_name="why not")),
                ("moved", models.JSONField(default=dict, editable=False)),
                ("decided_by", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name="+", to=settings.AUTH_USER_MODEL, verbose_name="decided by")),
                ("duplicate", models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name="+", to="clinic.person", verbose_name="second record")),
                ("kept", models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name="+", to="clinic.person", verbose_name="record kept")),
                ("proposed_by", models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name="+", to=settings.AUTH_USER_MODEL, verbose_name="proposed by")),
                ("site", models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name="+", to="clinic.site")),
            ],
            options={
                "verbose_name": "merge of two records",
                "verbose_name_plural": "merges of two records",
                "ordering": ["-proposed_at", "-pk"],
                "permissions": [
                    ("propose_merge", "Can propose merging two records of one person"),
                    ("approve_merge", "Can approve or decline merging two records of one person"),
                ],
                "default_permissions": (),
                "indexes": [models.Index(fields=["site", "status"], name="merge_site_status_idx")],
                "constraints": [
                    models.CheckConstraint(condition=models.Q(("kept", models.F("duplicate")), _negated=True), name="merge_two_records"),
                    models.CheckConstraint(condition=models.Q(("status__in", ["proposed", "approved", "declined"])), name="merge_known_status"),
                    models.CheckConstraint(condition=models.Q(models.Q(("decided_at__isnull", True), ("decided_by__isnull", True), ("status", "proposed")), models.Q(models.Q(("status", "proposed"), _negated=True), ("decided_at__isnull", False), ("decided_by__isnull", False)), _connector="OR"), name="merge_decided_says_who_and_when"),
                    models.CheckConstraint(condition=models.Q(("decided_by", models.F("proposed_by")), _negated=True), name="merge_decided_by_someone_else"),
                    models.UniqueConstraint(condition=models.Q(("status", "approved")), fields=("duplicate",), name="record_merged_once"),
                    models.UniqueConstraint(fields=("site", "nonce"), name="merge_nonce_unique"),
                ],
            },
        ),
        migrations.RunPython(create, drop, elidable=False),
    ]
