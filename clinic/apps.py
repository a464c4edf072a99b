from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class ClinicConfig(AppConfig):
    name = "clinic"
    verbose_name = _("Clinic")

    def ready(self):
        from clinic.roles import sync_roles_after_migrate

        # Roles must exist in every database, not only where the demo was seeded; Django
        # creates permissions the same way, after migrate.
        post_migrate.connect(sync_roles_after_migrate, dispatch_uid="clinic.sync_roles")
