"""The disclosure log was append-only on PostgreSQL only: now on SQLite too. Emergency
releases, which refused UPDATE, now refuse DELETE as well, on both engines."""

from django.db import migrations

from clinic.db_roles import append_only_operation


class Migration(migrations.Migration):
    dependencies = [
        ("clinic", "0010_accesslog_append_only"),
        ("releases", "0005_consent_sealed_triggers"),
    ]

    operations = [
        append_only_operation("releases_disclosurelog", vendors=("sqlite",)),
        append_only_operation("releases_emergencyrelease"),
    ]
