from pathlib import Path

from django.conf import settings
from django.core.management.base import CommandError
from django.db import DEFAULT_DB_ALIAS, connections

from clinic.backup import (
    ENGINE_NAME,
    BackupError,
    archive_stats,
    backup_check,
    backup_restore,
    plural,
)
from clinic.db_roles import OwnerCommand


class Command(OwnerCommand):
    help = (
        "Restore an archive made by `backup` into a fresh database and MEDIA_ROOT, after "
        "checking every file in it against its manifest. Stop the clinic's service first. "
        "See the README, Backups and restore."
    )
    # Nothing may connect to the database before the restore has looked at it: on SQLite a
    # connection would create the very file the restore must not overwrite.
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("archive", type=Path, help="The .tar file made by `backup`.")
        parser.add_argument(
            "--check-only",
            action="store_true",
            help="Only check the archive (every SHA-256, and that its database reads); "
            "restore nothing.",
        )
        parser.add_argument(
            "--force",
            action="store_true",
            help="SQLite: move an existing database file (with its -wal and -shm) aside into "
            "<name>.before-restore-<time>/ instead of refusing.",
        )
        parser.add_argument(
            "--database",
            default=DEFAULT_DB_ALIAS,
            help="Which configured database to restore into (default: default).",
        )

    def handle(self, *args, archive, check_only, force, database, **options):
        try:
            if check_only:
                manifest, notes = backup_check(archive=archive)
            else:
                result = backup_restore(
                    archive=archive,
                    database=connections[database].settings_dict,
                    media_root=Path(settings.MEDIA_ROOT),
                    force=force,
                )
                manifest, notes = result.manifest, result.notes
        except BackupError as exc:
            raise CommandError(exc.message) from None
        tables, rows, media = archive_stats(manifest)
        made = f"a {ENGINE_NAME[manifest['engine']]} backup made {manifest['created_at']}"
        contents = f"{plural(tables, 'table')}, {plural(rows, 'row')}"
        if check_only:
            self.stdout.write(
                f"The archive is intact: {made} ({contents}, "
                f"{plural(media, 'uploaded file')}); every file in it matches its SHA-256."
            )
            for note in notes:
                self.stdout.write(note)
            self.stdout.write("Nothing was restored (--check-only).")
            return
        if result.moved_aside:
            self.stdout.write(f"The database that was there is now in {result.moved_aside}.")
        self.stdout.write(
            f"Restored {made}. Uploaded files: {result.media_written} restored, "
            f"{result.media_present} already there."
        )
        triggers = len(manifest["triggers"])
        grants = (
            f", the {plural(len(manifest['grants']), 'grant')}, every owner"
            if "grants" in manifest
            else ""
        )
        self.stdout.write(
            f"Row counts match the manifest ({contents}), and so do the "
            f"{plural(triggers, 'trigger')}{grants} and the applied migrations."
        )
        for note in notes:
            self.stdout.write(self.style.WARNING(note))
        self.stdout.write(
            "Next: python manage.py migrate (it does nothing if the code is the same)."
        )
