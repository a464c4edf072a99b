"""The (site, day) index of visits also holds what the reports read of a visit
(reports/measures.py), so that the period's visits come from the index alone."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("visits", "0003_visit_day"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="visit",
            name="visits_visi_site_id_day_idx",
        ),
        migrations.AddIndex(
            model_name="visit",
            index=models.Index(
                fields=["site", "day", "person", "opened_by", "arrival", "started_at"],
                name="visit_site_day_report_idx",
            ),
        ),
    ]
