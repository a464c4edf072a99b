"""Django's `migrate`, run as the database's owner role (clinic/db_roles.py): the schema is the
owner's, and the application's role gets its privileges afterwards."""

from django.core.management.commands.migrate import Command as DjangoMigrate

from clinic.db_roles import as_owner


class Command(DjangoMigrate):
    def handle(self, *args, **options):
        with as_owner(options["database"]):
            return super().handle(*args, **options)
