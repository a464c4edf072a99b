"""The privacy officer's review of each medical emergency release: append-only (triggers
refuse UPDATE and DELETE on both engines; the application role is granted SELECT and INSERT
only, clinic.db_roles.APPEND_ONLY_TABLES)."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

from clinic.db_roles import append_only_operation


class Migration(migrations.Migration):

    dependencies = [
        ('clinic', '0012_person_merge'),
        ('releases', '0007_consent_recipient_category'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='EmergencyReview',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('at', models.DateTimeField()),
                ('finding', models.CharField(choices=[('appropriate', 'Appropriate: a medical emergency, to medical personnel, only what they needed'), ('concerns', 'Appropriate, with concerns (say which in the note)'), ('not_appropriate', 'Not appropriate: handled as a privacy incident (say how in the note)')], max_length=20, verbose_name='finding')),
                ('note', models.TextField(blank=True, max_length=2000, verbose_name='note')),
                ('by', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('emergency', models.OneToOneField(on_delete=django.db.models.deletion.PROTECT, related_name='review', to='releases.emergencyrelease')),
                ('site', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='clinic.site')),
            ],
            options={
                'constraints': [models.CheckConstraint(condition=models.Q(('finding__in', ['appropriate', 'concerns', 'not_appropriate'])), name='emergency_review_known_finding'), models.CheckConstraint(condition=models.Q(('finding', 'appropriate'), models.Q(('note', ''), _negated=True), _connector='OR'), name='emergency_review_concerns_explained')],
            },
        ),
        append_only_operation("releases_emergencyreview"),
    ]
