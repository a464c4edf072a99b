"""The access log accepts inserts only (both engines; see clinic/db_roles.py for the grants)."""

from django.db import migrations

from clinic.db_roles import append_only_operation


class Migration(migrations.Migration):
    dependencies = [("clinic", "0009_admin_log_append_only")]

    operations = [append_only_operation("clinic_accesslog")]
