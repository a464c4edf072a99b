from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, connections

from clinic.backup import BackupError, archive_stats, backup_create, human_size, plural


class Command(BaseCommand):
    help = (
        "Back up the database and the uploaded files (scanned consent forms) into one archive, "
        "threshold-backup-<UTC time>.tar, safely while the clinic is running. See the README, "
        "Backups and restore."
    )
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument(
            "--to",
            type=Path,
            default=settings.BASE_DIR / "backups",
            metavar="DIR",
            help="The directory the archive goes into (made 0700 if missing; default: "
            "backups/ next to manage.py).",
        )
        parser.add_argument(
            "--database",
            default=DEFAULT_DB_ALIAS,
            help="Which configured database to back up (default: default).",
        )

    def handle(self, *args, to, database, **options):
        try:
            result = backup_create(
                to=to,
                database=connections[database].settings_dict,
                media_root=Path(settings.MEDIA_ROOT),
            )
        except BackupError as exc:
            raise CommandError(f"No backup was made. {exc.message}") from None
        tables, rows, media = archive_stats(result.manifest)
        self.stdout.write(
            f"Backup written to {result.path} ({human_size(result.size)}: "
            f"{plural(tables, 'table')}, {plural(rows, 'row')}, {plural(media, 'uploaded file')})."
        )
        self.stdout.write(f"SHA-256 {result.sha256}")
