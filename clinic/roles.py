"""Staff roles are Django groups holding permissions, held per site through a Membership.

PRODUCT.md defines four roles. A person may hold several, and different ones at different
sites. Views, templates, the admin and consumers ask `clinic.sites.can(user, perm, site)`,
which looks only at the roles held at that site; a role held elsewhere, a global group or
`is_superuser` grant nothing there.
"""

from django.apps import apps as global_apps
from django.db import DEFAULT_DB_ALIAS
from django.utils.translation import gettext_lazy as _

FRONT_DESK = "front_desk"
CLINICIAN = "clinician"
DIRECTOR = "director"
PRIVACY_OFFICER = "privacy_officer"

ROLE_NAMES = (FRONT_DESK, CLINICIAN, DIRECTOR, PRIVACY_OFFICER)
ROLE_LABELS = {
    FRONT_DESK: _("Front desk"),
    CLINICIAN: _("Care team (clinician)"),
    DIRECTOR: _("Director"),
    PRIVACY_OFFICER: _("Privacy officer"),
}
# The roles that see the most: a site may require a second factor for them.
SECOND_FACTOR_ROLES = (DIRECTOR, PRIVACY_OFFICER)

_FRONT_DESK_PERMS = [
    "queue.view_queue",
    "queue.check_in",
    "queue.mark_presence",
    "queue.close_day",
    # The non-clinical part of a person's page, and booking appointments.
    "clinic.view_person",
    "clinic.change_person",
    "visits.view_appointment",
    "visits.add_appointment",
    "visits.change_appointment",
]

ROLE_PERMISSIONS: dict[str, list[str]] = {
    FRONT_DESK: _FRONT_DESK_PERMS,
    CLINICIAN: [
        *_FRONT_DESK_PERMS,
        "queue.call_arrival",
        "visits.view_clinical",
        "visits.record_visit",
        "releases.request_release",
        "reports.view_outreach",
        # Two records of one person: a clinician proposes merging them (clinic.PersonMerge).
        "clinic.propose_merge",
    ],
    DIRECTOR: [
        # Staff accounts of the sites they direct (clinic/admin.py and clinic/staff.py decide
        # which accounts those are).
        "auth.view_user",
        "auth.add_user",
        "auth.change_user",
        "clinic.view_site",
        "clinic.change_site",
        "clinic.view_service",
        "clinic.add_service",
        "clinic.change_service",
        "clinic.view_room",
        "clinic.add_room",
        "clinic.change_room",
        "clinic.view_membership",
        "clinic.add_membership",
        "clinic.change_membership",
        "clinic.delete_membership",
        "clinic.view_shift",
        "clinic.add_shift",
        "clinic.change_shift",
        "clinic.delete_shift",
        "reports.view_reports",
    ],
    PRIVACY_OFFICER: [
        "clinic.view_access_log",
        "releases.manage_releases",
        # ... and the privacy officer (never the proposer) approves or declines the merge.
        "clinic.approve_merge",
    ],
}


def sync_roles(*, using: str = DEFAULT_DB_ALIAS, apps=global_apps) -> None:
    """Create the role groups and give each exactly the permissions listed above."""
    from django.contrib.auth.management import create_permissions

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for app_config in apps.get_app_configs():
        create_permissions(app_config, verbosity=0, using=using, apps=apps)
    for role, perms in ROLE_PERMISSIONS.items():
        group, _created = Group.objects.using(using).get_or_create(name=role)
        wanted = []
        for dotted in perms:
            app_label, codename = dotted.split(".")
            wanted.append(
                Permission.objects.using(using).get(
                    content_type__app_label=app_label, codename=codename
                )
            )
        group.permissions.set(wanted)


def sync_roles_after_migrate(
    sender, app_config=None, using=DEFAULT_DB_ALIAS, apps=global_apps, plan=None, **kwargs
):
    # Run once, after the last app (INSTALLED_APPS order), when every permission exists.
    if sender.name != "reports":
        return
    sync_roles(using=using, apps=global_apps)
