"""Indexes holding what the reports read of arrivals (reports/measures.py): counts per site
and day (the (site, day) index gains state, person and appointment time) and the waits of
visits (arrival time and import key by id)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("queue", "0002_arrival_import_key"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="arrival",
            name="queue_arriv_site_id_da2682_idx",
        ),
        migrations.AddIndex(
            model_name="arrival",
            index=models.Index(
                fields=["site", "day", "state", "person", "appointment_at"],
                name="arrival_site_day_report_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="arrival",
            index=models.Index(
                fields=["id", "arrived_at", "import_key"], name="arrival_id_wait_report_idx"
            ),
        ),
    ]
