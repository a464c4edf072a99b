"""Export attendance dates for a recipient (e.g. a drug court roster), person by person through
the consent gate.

    python manage.py export_attendance --recipient ID --purpose TEXT [--site SLUG]
        [--person ID ...] [--from DATE] [--to DATE] [--by USERNAME] [--output FILE]

Every person considered gets one release_attempt (path "export_attendance", scope
attendance), so every inclusion and every omission is in the disclosure log. A person the gate
does not grant is absent from the CSV: no row, no name, no blank line. For a criminal-legal
recipient the gate also needs that person's release request (same recipient and purpose,
covering attendance) approved by the privacy officer and a second staff member; the most
recent such request is the one passed to the gate. Only the counts of people left out, by
reason, are printed (to stderr), never who they are.
"""

import csv
from collections import Counter
from datetime import date

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from clinic.models import Person, Site
from releases.gate import normalise_purpose, release_attempt
from releases.models import Recipient, ReleaseRequest, Scope
from releases.packets import export_items

PATH = "export_attendance"
SCOPE = [Scope.ATTENDANCE.value]


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"{value} is not a date (YYYY-MM-DD).") from exc


def _matching_request(person, recipient, purpose) -> ReleaseRequest | None:
    wanted = normalise_purpose(purpose)
    requests = ReleaseRequest.objects.filter(person=person, recipient=recipient).order_by(
        "-requested_at", "-pk"
    )
    for request in requests:
        if normalise_purpose(request.purpose) == wanted and Scope.ATTENDANCE in request.scope:
            return request
    return None


class Command(BaseCommand):
    help = "Export attendance dates for one recipient; only people the consent gate allows."

    def add_arguments(self, parser):
        parser.add_argument("--recipient", type=int, required=True, help="Recipient id.")
        parser.add_argument("--purpose", required=True, help="As worded in the consents.")
        parser.add_argument("--site", help="Site short name (default: the recipient's site).")
        parser.add_argument(
            "--person", type=int, action="append", dest="people", help="Limit to these people."
        )
        parser.add_argument("--from", dest="start", type=_date, help="First date (YYYY-MM-DD).")
        parser.add_argument("--to", dest="end", type=_date, help="Last date (YYYY-MM-DD).")
        parser.add_argument("--by", help="Username of the staff member running the export.")
        parser.add_argument("--output", help="Write the CSV here instead of standard output.")

    def handle(self, *args, **options):
        recipient = Recipient.objects.filter(pk=options["recipient"]).first()
        if recipient is None:
            raise CommandError("No recipient with that id is in the registry.")
        site = recipient.site
        if options["site"]:
            site = Site.objects.filter(slug=options["site"]).first()
            if site is None:
                raise CommandError("No site with that short name.")
        by = None
        if options["by"]:
            by = get_user_model().objects.filter(username=options["by"]).first()
            if by is None:
                raise CommandError("No staff member with that username.")
        purpose = options["purpose"]
        people = Person.objects.current().filter(site=site).order_by("pk")
        if options["people"]:
            people = people.filter(pk__in=options["people"])

        rows, left_out, granted = [], Counter(), 0
        for person in people.iterator():
            # Decide and build each person's rows together: a person whose rows cannot be
            # built leaves no "granted" log row.
            with transaction.atomic():
                decision = release_attempt(
                    site=site,
                    path=PATH,
                    asked_by=by,
                    person=person,
                    recipient=recipient,
                    purpose=purpose,
                    scope=SCOPE,
                    request=_matching_request(person, recipient, purpose),
                )
                if not decision.granted:
                    left_out[decision.reason] += 1
                    continue
                granted += 1
                items = export_items(decision.permit, start=options["start"], end=options["end"])
                for item in items:
                    rows.append([person.pk, person.name, item.date])

        out = open(options["output"], "w", newline="") if options["output"] else None  # noqa: SIM115
        try:
            writer = csv.writer(out or self.stdout)
            writer.writerow(["person_id", "name", "visit_date"])
            writer.writerows(rows)
        finally:
            if out is not None:
                out.close()
        summary = ", ".join(f"{n} {reason}" for reason, n in sorted(left_out.items())) or "none"
        self.stderr.write(
            f"Exported attendance for {granted} people; left out (each logged): "
            f"{sum(left_out.values())} ({summary}). {timezone.now():%Y-%m-%d %H:%M}"
        )
