"""Visit.day: the local date at the site when the visit started, for reports to count by."""

import zoneinfo

from django.db import migrations, models


def fill_day(apps, schema_editor):
    Visit = apps.get_model("visits", "Visit")
    for visit in Visit.objects.select_related("site").only("started_at", "site__timezone"):
        tz = zoneinfo.ZoneInfo(visit.site.timezone)
        Visit.objects.filter(pk=visit.pk).update(day=visit.started_at.astimezone(tz).date())


class Migration(migrations.Migration):
    dependencies = [
        ("clinic", "0003_accesslog_consent_release"),
        ("visits", "0002_addendum_appointment_goal_goalprogress_and_more"),
    ]

    operations = [
        migrations.AddField(
            model_name="visit",
            name="day",
            field=models.DateField(editable=False, null=True, verbose_name="day"),
        ),
        migrations.RunPython(fill_day, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="visit",
            name="day",
            field=models.DateField(editable=False, verbose_name="day"),
        ),
        migrations.AddIndex(
            model_name="visit",
            index=models.Index(fields=["site", "day"], name="visits_visi_site_id_day_idx"),
        ),
        migrations.AddIndex(
            model_name="visit",
            index=models.Index(fields=["person", "day"], name="visits_visi_person_day_idx"),
        ),
    ]
