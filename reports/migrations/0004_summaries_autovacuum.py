"""PostgreSQL: vacuum and analyse the report summaries after 1-2% of their rows changed
rather than the default 10-20%.

The summaries are rewritten a person at a time all day long; the measures read the waits
through a covering index, which only spares the table for pages marked all-visible by a
VACUUM. The end-of-day close runs one too (`summaries.tidy()`).
"""

from django.db import migrations

TABLES = (
    "reports_visitday",
    "reports_serviceday",
    "reports_visitwait",
    "reports_coveragerun",
    "reports_siteday",
)
SETTINGS = (
    "autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_insert_scale_factor = 0.01, "
    "autovacuum_analyze_scale_factor = 0.02"
)
RESET = (
    "autovacuum_vacuum_scale_factor, autovacuum_vacuum_insert_scale_factor, "
    "autovacuum_analyze_scale_factor"
)


def apply(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for table in TABLES:
            schema_editor.execute(f"ALTER TABLE {table} SET ({SETTINGS})", params=None)


def revert(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for table in TABLES:
            schema_editor.execute(f"ALTER TABLE {table} RESET ({RESET})", params=None)


class Migration(migrations.Migration):
    dependencies = [("reports", "0003_stale_triggers")]

    operations = [migrations.RunPython(apply, revert)]
