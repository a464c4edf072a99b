"""How each packet was handed over (method, to whom, who, when): append-only (triggers
refuse UPDATE and DELETE on both engines; the application role is granted SELECT and INSERT
only, clinic.db_roles.APPEND_ONLY_TABLES)."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

from clinic.db_roles import append_only_operation


class Migration(migrations.Migration):

    dependencies = [
        ('releases', '0008_emergency_review'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='HandOver',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('at', models.DateTimeField()),
                ('how', models.CharField(choices=[('in_person', 'In person, on paper'), ('post', 'By post'), ('fax', 'By fax'), ('secure_email', 'By secure email'), ('portal', "Through the recipient's secure portal")], max_length=20, verbose_name='how it was delivered')),
                ('handed_to', models.CharField(max_length=200, verbose_name='to whom, or where it was sent')),
                ('note', models.TextField(blank=True, max_length=1000, verbose_name='note')),
                ('by', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('packet', models.OneToOneField(on_delete=django.db.models.deletion.PROTECT, related_name='hand_over', to='releases.releasepacket')),
            ],
            options={
                'constraints': [models.CheckConstraint(condition=models.Q(('how__in', ['in_person', 'post', 'fax', 'secure_email', 'portal'])), name='hand_over_known_method'), models.CheckConstraint(condition=models.Q(('handed_to', ''), _negated=True), name='hand_over_says_to_whom')],
            },
        ),
        append_only_operation("releases_handover"),
    ]
