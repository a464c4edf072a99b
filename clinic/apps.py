from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps
from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.db.backends.signals import connection_created
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class ClinicConfig(AppConfig):
    name = "clinic"
    verbose_name = _("Clinic")

    def ready(self):
        from clinic import (
            history,
            pg_timestamps,
            serve,  # noqa: F401  (registers the deploy check of the proxy trust)
            throttling,  # noqa: F401  (connects the lockout log to django-axes)
        )
        from clinic.db_roles import grant_after_migrate
        from clinic.roles import sync_roles_after_migrate

        # Every database connection learns who is acting, for the history of changes.
        connection_created.connect(history.connection_created, dispatch_uid="clinic.history")
        # PostgreSQL timestamps read in C, not by a regular expression (clinic/pg_timestamps.py).
        connection_created.connect(
            pg_timestamps.connection_created, dispatch_uid="clinic.pg_timestamps"
        )

        # Roles must exist in every database, not only where the demo was seeded; Django
        # creates permissions the same way, after migrate.
        post_migrate.connect(sync_roles_after_migrate, dispatch_uid="clinic.sync_roles")
        # The application's database role gets its privileges after every migrate (PostgreSQL
        # with two roles; clinic/db_roles.py).
        post_migrate.connect(grant_after_migrate, dispatch_uid="clinic.grant_application_role")

        # Every way of signing in and out goes through these signals (the login page, the
        # screen lock's unlock, the admin, tests' force_login): sessions are tracked so that
        # they can all be ended at once (clinic/accounts.py).
        user_logged_in.connect(_track, dispatch_uid="clinic.session_track")
        # ... and a new sign-in restarts the clock of the screen lock (clinic/idle.py).
        user_logged_in.connect(_idle_start, dispatch_uid="clinic.idle_start")
        user_logged_out.connect(_forget, dispatch_uid="clinic.session_forget")


class ThresholdAdminConfig(admin_apps.AdminConfig):
    """Django's admin, with `admin.site` scoped to the sites a user directs
    (clinic/admin_site.py)."""

    default = False  # ClinicConfig stays this module's config for "clinic"
    default_site = "clinic.admin_site.ThresholdAdminSite"


def _track(sender, request, user, **kwargs):
    from clinic.accounts import session_track

    if request is not None and hasattr(request, "session"):
        session_track(request=request, user=user)


def _idle_start(sender, request, user, **kwargs):
    from clinic.idle import session_signed_in

    if request is not None and hasattr(request, "session"):
        session_signed_in(request)


def _forget(sender, request, user, **kwargs):
    from clinic.accounts import session_forget

    if request is not None and hasattr(request, "session"):
        session_forget(request=request)
