"""A consent holds only for the category its recipient had when it was signed.

Each consent's recipients get a row saying which category they had at signing. The form never
recorded it, so consents signed before this migration are given each recipient's category as
it is now (its latest recorded change, or the category it was added with): the best fact
available. A recipient recategorised before this migration therefore keeps releasing under
consents signed before the change; the privacy officer can find those recipients in the
registry (their category history) and ask for new consents.

The rows are fixed like a consent's recipients (migration 0005): once the consent is sealed
the database refuses INSERT, UPDATE and DELETE of them (UPDATE always). The triggers are
created after the rows are written.
"""

import django.db.models.deletion
from django.db import migrations, models

MESSAGE = "a signed consent is never edited; record a new consent instead"
TABLE = "releases_consentrecipientcategory"

POSTGRES_CREATE = f"""
CREATE TRIGGER {TABLE}_sealed BEFORE INSERT OR UPDATE OR DELETE ON {TABLE}
    FOR EACH ROW EXECUTE FUNCTION releases_consent_child_fixed();
"""
POSTGRES_DROP = f"DROP TRIGGER IF EXISTS {TABLE}_sealed ON {TABLE};"

_RAISE = f"SELECT RAISE(ABORT, '{MESSAGE}');"
SQLITE_CREATE = [
    f"""
    CREATE TRIGGER {TABLE}_sealed_insert BEFORE INSERT ON {TABLE}
    WHEN (SELECT sealed FROM releases_consent WHERE id = NEW.consent_id)
    BEGIN {_RAISE} END
    """,
    f"""
    CREATE TRIGGER {TABLE}_sealed_delete BEFORE DELETE ON {TABLE}
    WHEN (SELECT sealed FROM releases_consent WHERE id = OLD.consent_id)
    BEGIN {_RAISE} END
    """,
    f"CREATE TRIGGER {TABLE}_sealed_update BEFORE UPDATE ON {TABLE} BEGIN {_RAISE} END",
]
SQLITE_DROP = [f"DROP TRIGGER IF EXISTS {TABLE}_sealed_{op}" for op in ("insert", "delete", "update")]


def backfill(apps, schema_editor):
    """Each existing consent's recipients, with their category as it is now."""
    Consent = apps.get_model("releases", "Consent")
    Recipient = apps.get_model("releases", "Recipient")
    Change = apps.get_model("releases", "RecipientCategoryChange")
    Row = apps.get_model("releases", "ConsentRecipientCategory")
    current = {r.pk: r.category for r in Recipient.objects.all()}
    for change in Change.objects.order_by("at", "pk"):
        current[change.recipient_id] = change.to_category
    Through = Consent.recipients.through
    rows = [
        Row(consent_id=t.consent_id, recipient_id=t.recipient_id, category=current[t.recipient_id])
        for t in Through.objects.order_by("pk")
    ]
    Row.objects.bulk_create(rows, batch_size=1000)


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

    dependencies = [
        ('releases', '0006_append_only_both_engines'),
    ]

    operations = [
        migrations.CreateModel(
            name='ConsentRecipientCategory',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('category', models.CharField(choices=[('treatment_provider', 'Treatment provider'), ('health_plan', 'Health plan'), ('family_friend', 'Family or friend'), ('defense_attorney', 'Attorney (defense)'), ('court', 'Court'), ('drug_court', 'Drug / treatment court'), ('probation', 'Probation'), ('parole', 'Parole'), ('pretrial', 'Pretrial services'), ('police', 'Police / sheriff'), ('prosecutor', 'Prosecutor'), ('corrections', 'Corrections'), ('other_government', 'Other government'), ('other', 'Other')], max_length=20)),
                ('consent', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='recipient_categories', to='releases.consent')),
                ('recipient', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='releases.recipient')),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('consent', 'recipient'), name='consent_recipient_category_once'), models.CheckConstraint(condition=models.Q(('category__in', ['treatment_provider', 'health_plan', 'family_friend', 'defense_attorney', 'court', 'drug_court', 'probation', 'parole', 'pretrial', 'police', 'prosecutor', 'corrections', 'other_government', 'other'])), name='consent_recipient_known_category')],
            },
        ),
        # Going back, the table is dropped: no need to delete its rows first.
        migrations.RunPython(backfill, migrations.RunPython.noop),
        migrations.RunPython(create, drop),
    ]
