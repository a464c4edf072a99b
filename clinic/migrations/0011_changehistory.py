"""The history of changes (clinic/history.py): the table, and the triggers that write it on
INSERT, UPDATE and DELETE of a person's details and of the clinical record.

The table is append-only: the database refuses UPDATE and DELETE of its rows on both engines
(TRUNCATE is left to the table's owner on PostgreSQL, like the other audit tables).

Which tables are audited, and how a row of each finds its person and site, is frozen here
(TABLES, OPAQUE). Column lists come from the historical models of this migration's state:
the SQLite triggers list them; PostgreSQL's take whatever columns the table has. A later
migration that adds a column to an audited table, or makes SQLite rebuild one (which drops
that table's triggers), runs `history.recreate_sqlite_triggers` again.

Left out, and why (README: History of changes): the queue's arrivals and their events (every
state change is already an event row), release requests, packets, approvals, emergency
releases, requests from outside and the disclosure log (the privacy officer's own records,
with their own append-only log), recipients (their changes are recorded rows), staff,
memberships, shifts, sites and their catalogues (no person's record; the admin log keeps
their edits), and the access log and other audit tables themselves.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

from clinic import history

VISIT_CHILD = {
    "person": ("visit_id", "visits_visit", "person_id"),
    "site": ("visit_id", "visits_visit", "site_id"),
}
CONSENT_CHILD = {
    "person": ("consent_id", "releases_consent", "person_id"),
    "site": ("consent_id", "releases_consent", "site_id"),
}
TABLES = {
    "clinic_person": {"person": ("id",), "site": ("site_id",)},
    "visits_visit": {"person": ("person_id",), "site": ("site_id",)},
    "visits_visitparticipant": VISIT_CHILD,
    "visits_visit_services": VISIT_CHILD,
    "visits_addendum": VISIT_CHILD,
    "visits_medicationevent": VISIT_CHILD,
    "visits_toxscreen": VISIT_CHILD,
    "visits_toxresult": {
        "person": ("screen_id", "visits_toxscreen", "visit_id", "visits_visit", "person_id"),
        "site": ("screen_id", "visits_toxscreen", "visit_id", "visits_visit", "site_id"),
    },
    "visits_goal": {"person": ("person_id",), "site": ("person_id", "clinic_person", "site_id")},
    "visits_goalprogress": {
        "person": ("goal_id", "visits_goal", "person_id"),
        "site": ("goal_id", "visits_goal", "person_id", "clinic_person", "site_id"),
    },
    "visits_appointment": {"person": ("person_id",), "site": ("site_id",)},
    "releases_consent": {"person": ("person_id",), "site": ("site_id",)},
    "releases_consentpurpose": CONSENT_CHILD,
    "releases_consent_recipients": CONSENT_CHILD,
    "releases_revocation": CONSENT_CHILD,
    "releases_expiryeventrecord": CONSENT_CHILD,
}
OPAQUE = {"releases_consent": ("signature_image",)}


def create(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(history.POSTGRES_APPEND_ONLY, params=None)  # % is PL/pgSQL's
    elif vendor == "sqlite":
        for statement in history.SQLITE_APPEND_ONLY:
            schema_editor.execute(statement, params=None)
    history.create_triggers(apps, schema_editor, TABLES, OPAQUE)


def drop(apps, schema_editor):
    history.drop_triggers(apps, schema_editor, TABLES)
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(history.POSTGRES_APPEND_ONLY_DROP, params=None)
    elif vendor == "sqlite":
        for statement in history.SQLITE_APPEND_ONLY_DROP:
            schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):

    dependencies = [
        ('clinic', '0010_accesslog_append_only'),
        ('queue', '0004_event_revision_change_needs_event'),
        ('visits', '0005_visit_sealed'),
        ('releases', '0006_append_only_both_engines'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterField(
            model_name='accesslog',
            name='what',
            field=models.CharField(choices=[('person', "Person's clinical record"), ('visit', 'Visit'), ('tox', 'Tox-screen conversation'), ('goals', 'Goals'), ('consent', 'Consent'), ('release', 'Release request'), ('packet', 'Release packet'), ('emergency', 'Medical emergency release'), ('accounting', 'Accounting of disclosures'), ('incoming', 'Request from outside'), ('outreach', 'Outreach list'), ('history', 'History of changes')], max_length=10),
        ),
        migrations.CreateModel(
            name='ChangeHistory',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('table_name', models.CharField(max_length=63)),
                ('row_id', models.BigIntegerField()),
                ('operation', models.CharField(choices=[('insert', 'Added'), ('update', 'Changed'), ('delete', 'Removed')], max_length=6)),
                ('at', models.DateTimeField(verbose_name='when')),
                ('via', models.CharField(blank=True, max_length=40)),
                ('changes', models.JSONField()),
                ('actor', models.ForeignKey(blank=True, db_constraint=False, db_index=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to=settings.AUTH_USER_MODEL, verbose_name='who')),
                ('person', models.ForeignKey(blank=True, db_constraint=False, db_index=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='clinic.person')),
                ('site', models.ForeignKey(db_constraint=False, db_index=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='clinic.site')),
            ],
            options={
                'verbose_name': 'change',
                'verbose_name_plural': 'history of changes',
                'ordering': ['-at', '-pk'],
                'indexes': [models.Index(fields=['person', '-at', '-id'], name='history_person_at_idx'), models.Index(fields=['site', '-at', '-id'], name='history_site_at_idx'), models.Index(fields=['site', 'actor', '-at'], name='history_site_actor_at_idx'), models.Index(fields=['table_name', 'row_id'], name='history_row_idx')],
            },
        ),
        migrations.RunPython(create, drop),
    ]
