"""Access-log kinds that tell a release request, a packet, an emergency release and the
accounting apart (they all shared "release"), and the care team's outreach list."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("clinic", "0004_shift_external_ids_service_code"),
    ]

    operations = [
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
                ],
                max_length=10,
            ),
        ),
    ]
