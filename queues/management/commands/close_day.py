from django.core.management.base import BaseCommand, CommandError

from clinic.models import Site
from queues.services import queue_close_day
from reports import summaries


class Command(BaseCommand):
    help = (
        "End of day: everyone not seen yet is recorded as left before being seen. "
        "Nothing else changes (the report summaries are brought up to date)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--site", help="The site's short name (slug); default: every site.")

    def handle(self, *args, site=None, **options):
        sites = Site.objects.filter(is_active=True)
        if site:
            sites = sites.filter(slug=site)
            if not sites.exists():
                raise CommandError(f"No active site with the short name {site!r}.")
        for s in sites:
            closed = queue_close_day(site=s, by=None)
            self.stdout.write(
                f"{s.name}: {closed} not seen yet, recorded as left before being seen."
            )
        # The day's changes into the report summaries now, so the first dashboard of the
        # morning has nothing to catch up on.
        summaries.refresh()
        summaries.tidy()
