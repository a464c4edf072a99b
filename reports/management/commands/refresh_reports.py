import time

from django.core.management.base import BaseCommand

from reports import summaries


class Command(BaseCommand):
    help = (
        "Bring the report summaries up to date with every change since the last time (the "
        "dashboard does this itself), or, with --rebuild, build them all again from the "
        "visit, medication, service and queue records."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--rebuild", action="store_true", help="Rebuild every summary, not only what changed."
        )

    def handle(self, *args, rebuild=False, **options):
        started = time.monotonic()
        if rebuild:
            summaries.rebuild()
            self.stdout.write(f"Report summaries rebuilt in {time.monotonic() - started:.1f} s.")
        else:
            taken = summaries.refresh()
            self.stdout.write(
                f"Report summaries brought up to date: {taken} change marks "
                f"in {time.monotonic() - started:.1f} s."
            )
