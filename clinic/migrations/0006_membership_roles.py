"""Roles per site: a membership holds the roles its person has at that site.

Until now roles were global groups, so a director at one site who was a clinician at another
acted as a director there too. Every membership now gets the role groups its user held, so
nobody gains or loses anything at a site they work at; the global groups are then emptied,
because nothing reads them any more and a role must never count outside its site.
"""

from django.db import migrations, models

ROLE_NAMES = ("front_desk", "clinician", "director", "privacy_officer")


def roles_to_memberships(apps, schema_editor):
    Membership = apps.get_model("clinic", "Membership")
    Group = apps.get_model("auth", "Group")
    User = apps.get_model("auth", "User")
    role_groups = list(Group.objects.filter(name__in=ROLE_NAMES))
    Through = Membership.roles.through
    UserGroups = User.groups.through
    rows = []
    for membership in Membership.objects.only("pk", "user_id"):
        held = UserGroups.objects.filter(
            user_id=membership.user_id, group__in=role_groups
        ).values_list("group_id", flat=True)
        rows += [Through(membership_id=membership.pk, group_id=group_id) for group_id in held]
    Through.objects.bulk_create(rows, batch_size=500)
    UserGroups.objects.filter(group__in=role_groups).delete()


def roles_to_users(apps, schema_editor):
    # Back to global groups: each user gets every role they held at any site.
    Membership = apps.get_model("clinic", "Membership")
    User = apps.get_model("auth", "User")
    UserGroups = User.groups.through
    pairs = set(
        Membership.roles.through.objects.values_list("membership__user_id", "group_id")
    )
    UserGroups.objects.bulk_create(
        [UserGroups(user_id=user_id, group_id=group_id) for user_id, group_id in pairs],
        ignore_conflicts=True,
    )


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("clinic", "0005_accesslog_release_kinds"),
    ]

    operations = [
        migrations.AddField(
            model_name="membership",
            name="roles",
            field=models.ManyToManyField(
                blank=True,
                help_text="What this person may do at this site, and only here.",
                limit_choices_to={"name__in": ROLE_NAMES},
                related_name="memberships",
                to="auth.group",
                verbose_name="roles at this site",
            ),
        ),
        migrations.AddField(
            model_name="site",
            name="require_second_factor",
            field=models.BooleanField(
                default=False,
                help_text=(
                    "Directors and privacy officers of this site must also enter a code from "
                    "an authenticator app when they sign in."
                ),
                verbose_name="second factor for directors and privacy officers",
            ),
        ),
        migrations.RunPython(roles_to_memberships, roles_to_users, elidable=False),
    ]
