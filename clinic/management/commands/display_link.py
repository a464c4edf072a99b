"""Print the waiting-room display link of a site, or of every active site.

The clinic's own sites come first; sites of synthetic data for the reports (`make run` makes
three, README: "Synthetic data") come after them and are labelled as such, so that nobody
puts one of those on the waiting-room TV.
"""

import os

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Case, Value, When
from django.urls import reverse

from clinic.models import Site
from reports.synthetic import PREFIX as SYNTHETIC_PREFIX


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
        synthetic = Case(
            When(slug__startswith=SYNTHETIC_PREFIX, then=Value(True)), default=Value(False)
        )
        for s in sites.annotate(synthetic=synthetic).order_by("synthetic", "name"):
            path = reverse("queues:display", kwargs={"token": s.display_token})
            label = f"{s.name} (synthetic data for the reports)" if s.synthetic else s.name
            self.stdout.write(f"{label}: {base_url.rstrip('/')}{path}")
