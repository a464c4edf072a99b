import time
from datetime import date

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError
from django.db import IntegrityError
from django.db.models import ProtectedError

from clinic.db_roles import OwnerCommand
from clinic.history import history_command
from clinic.models import Site
from reports import summaries
from reports.synthetic import PREFIX, SyntheticRefused, generate


class Command(OwnerCommand):
    help = (
        "Create realistic synthetic clinic history (people, arrivals, visits, medication, "
        f"shifts) at new sites named {PREFIX}*, for benchmarks and demos. Seeded and "
        "reproducible. Never touches any other site."
    )

    def add_arguments(self, parser):
        parser.add_argument("--people", type=int, required=True, help="How many people.")
        parser.add_argument("--days", type=int, required=True, help="How many days of history.")
        parser.add_argument("--seed", type=int, default=1, help="Random seed (default 1).")
        parser.add_argument(
            "--end", type=date.fromisoformat, help="Last day (YYYY-MM-DD); default yesterday."
        )
        parser.add_argument(
            "--sites", type=int, default=3, help="How many synthetic sites (default 3)."
        )
        parser.add_argument(
            "--site",
            dest="site_slugs",
            action="append",
            default=[],
            metavar="SLUG",
            help=f"Name the synthetic sites instead (repeat; {PREFIX!r} is added if missing).",
        )
        parser.add_argument(
            "--replace",
            action="store_true",
            help="Delete the existing synthetic sites (and only them) first.",
        )
        parser.add_argument(
            "--unless-present",
            action="store_true",
            help="Do nothing if synthetic sites already exist (make run uses this).",
        )
        parser.add_argument(
            "--member",
            dest="members",
            action="append",
            default=[],
            metavar="USERNAME",
            help="Give this existing account a membership at the synthetic sites (e.g. the demo "
            "director, so the dashboard shows them). Repeat for several.",
        )
        parser.add_argument(
            "--force",
            action="store_true",
            help="Run even with DEBUG off in a database that holds real people.",
        )

    @history_command
    def handle(self, *args, **options):
        if options["unless_present"] and Site.objects.filter(slug__startswith=PREFIX).exists():
            self.stdout.write("Synthetic history is already there; nothing changed.")
            return
        User = get_user_model()
        members = []
        for username in options["members"]:
            user = User.objects.filter(username=username).first()
            if user is None:
                raise CommandError(f"No account with the username {username!r}.")
            members.append(user)
        try:
            result = generate(
                people=options["people"],
                days=options["days"],
                seed=options["seed"],
                end=options["end"],
                sites=options["sites"],
                site_slugs=options["site_slugs"],
                replace=options["replace"],
                members=members,
                force=options["force"],
                progress=lambda message: (
                    self.stdout.write(f"  {message}") if options["verbosity"] > 1 else None
                ),
            )
        except SyntheticRefused as refused:
            raise CommandError(str(refused)) from refused
        except (IntegrityError, ProtectedError) as exc:
            raise CommandError(
                "The synthetic sites hold records added by hand (notes, goals, consents…) that "
                f"--replace does not delete; nothing was changed. ({exc})"
            ) from exc
        if result.deleted:
            gone = ", ".join(f"{table} {n}" for table, n in result.deleted.items() if n)
            self.stdout.write(f"Deleted the earlier synthetic data: {gone}")
        self.stdout.write(
            self.style.SUCCESS(
                f"Synthetic history {result.start} to {result.end} at {', '.join(result.sites)} "
                f"in {result.seconds:.1f} s:"
            )
        )
        for label, n in result.counts.items():
            self.stdout.write(f"  {label}: {n}")
        # A bulk load: every summary again is quicker than following each change.
        started = time.monotonic()
        summaries.rebuild()
        self.stdout.write(f"Report summaries rebuilt in {time.monotonic() - started:.1f} s.")
