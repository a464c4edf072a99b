import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from clinic.history import history_command
from reports import summaries
from reports.importing import ImportRefused, import_site, visits_import


class Command(BaseCommand):
    help = (
        "Import historical arrivals and visits from a previous system (CSV with columns "
        "participant, date, outcome, staff, appointment, medication, days_supply, services). "
        "The whole file is checked first; one bad row and nothing is written. "
        "Importing the same file again adds nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="The CSV file (UTF-8, header row first).")
        parser.add_argument(
            "--site", help="The site's short name (slug); needed when there are several sites."
        )

    @history_command
    def handle(self, *args, file, site=None, **options):
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"No file at {file}.")
        started = time.monotonic()
        try:
            target = import_site(site)
            # newline="" lets the csv module read line breaks inside quoted cells; utf-8-sig
            # drops the byte-order mark spreadsheet programs put at the start.
            with path.open(newline="", encoding="utf-8-sig") as stream:
                result = visits_import(site=target, stream=stream)
        except ImportRefused as refused:
            raise CommandError(
                f"Nothing was imported. Please fix the file and try again:\n{refused.describe()}"
            ) from refused
        except UnicodeDecodeError as exc:
            raise CommandError(
                f"Nothing was imported: the file is not UTF-8 text ({exc})."
            ) from exc
        seconds = time.monotonic() - started
        self.stdout.write(
            self.style.SUCCESS(
                f"{target.name}: {result.imported} imported, "
                f"{result.already_present} already present ({result.rows} rows, {seconds:.1f} s)."
            )
        )
        if result.imported:
            self.stdout.write(
                f"  completed visits: {result.completed} (anonymous contacts: {result.anonymous}), "
                f"left before being seen: {result.left_before_seen}"
            )
            self.stdout.write(
                f"  medication events: {result.medication_events}, "
                f"services delivered: {result.services_delivered}"
            )
            self.stdout.write(
                f"  people: {result.people_matched} matched by id, {result.people_created} new"
            )
            self.stdout.write(
                f"  staff: {result.staff_matched} matched by id, {result.staff_created} new "
                "(inactive accounts that cannot sign in)"
            )
            for username in result.created_staff_usernames:
                self.stdout.write(f"    {username}")
            started = time.monotonic()
            summaries.refresh()
            self.stdout.write(
                f"  report summaries brought up to date ({time.monotonic() - started:.1f} s)"
            )
