import os

from django.core.management.base import BaseCommand, CommandError
from django.urls import reverse

from clinic.models import Site


class Command(BaseCommand):
    help = "Print the waiting-room display link of a site (or of every active site)."

    def add_arguments(self, parser):
        parser.add_argument("--site", help="The site's short name (slug).")
        parser.add_argument(
            "--base-url",
            default=os.environ.get("SITE_URL", "http://127.0.0.1:8000"),
            help="Where the clinic's server is reached (default: $SITE_URL or "
            "http://127.0.0.1:8000).",
        )

    def handle(self, *args, site=None, base_url, **options):
        sites = Site.objects.filter(is_active=True)
        if site:
            sites = sites.filter(slug=site)
            if not sites.exists():
                raise CommandError(f"No active site with the short name {site!r}.")
        if not sites.exists():
            raise CommandError("No active site yet. Create one in the admin first.")
        for s in sites:
            path = reverse("queues:display", kwargs={"token": s.display_token})
            self.stdout.write(f"{s.name}: {base_url.rstrip('/')}{path}")
