"""Accounting of disclosures (RELEASES.md; 42 CFR §2.24 and HIPAA §164.528 in spirit): for one
person, every release that actually left in the past three years, and, for the privacy officer
only, every attempt that did not.

A disclosure is a granted log row on a path where information leaves: a packet handed over, a
medical-emergency release, a bulk export. Preparing, viewing or printing a packet inside the
clinic is not a disclosure (each is still logged and shown among the attempts).
"""

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from clinic.people import with_merged
from releases.models import Category, DisclosureLog, EmergencyRelease, EmergencyReview
from releases.packets import scope_labels
from releases.services.outgoing import reason_text

DISCLOSURE_PATHS = {
    "packet_hand_over": _("Release packet handed over"),
    "emergency_release": _("Medical emergency release (42 CFR 2.51)"),
    "export_attendance": _("Attendance export"),
}
# Plain words for every path the disclosure log records from this area.
PATH_LABELS = {
    **DISCLOSURE_PATHS,
    "packet_generate": _("Packet prepared (inside the clinic)"),
    "packet_view": _("Packet viewed or printed (inside the clinic)"),
    "packet_pdf": _("Packet PDF downloaded (inside the clinic)"),
}
YEARS = 3


def path_label(path: str) -> str:
    return str(PATH_LABELS.get(path, path.replace("_", " ")))


def accounting_since(now: datetime, tz) -> datetime:
    """The start of the local day exactly three years ago."""
    today = timezone.localdate(now, tz)
    try:
        start = today.replace(year=today.year - YEARS)
    except ValueError:  # 29 February
        start = date(today.year - YEARS, 2, 28)
    return datetime.combine(start, datetime.min.time(), tzinfo=tz)


@dataclass(frozen=True)
class Line:
    at: datetime
    recipient: str
    category: str
    description: str
    purpose: str
    decision: str
    reason: str
    path: str
    row: DisclosureLog
    emergency: EmergencyRelease | None = None


def _emergency(row: DisclosureLog) -> EmergencyRelease | None:
    try:
        return row.emergency_release
    except EmergencyRelease.DoesNotExist:
        return None


def _line(row: DisclosureLog) -> Line:
    categories = dict(Category.choices)
    what = ", ".join(scope_labels(row.scope or []))
    kind = path_label(row.path)
    emergency = _emergency(row) if row.path == "emergency_release" else None
    recipient = str(row.recipient) if row.recipient else str(_("No recipient named"))
    if emergency is not None:
        recipient = f"{emergency.personnel_name}, {recipient}"
    return Line(
        at=row.at,
        recipient=recipient,
        category=str(categories.get(row.recipient_category, row.recipient_category)),
        description=f"{kind}: {what}" if what else str(kind),
        purpose=row.purpose,
        decision=row.get_decision_display(),
        reason=reason_text(row.reason),
        path=row.path,
        row=row,
        emergency=emergency,
    )


def person_accounting(*, person, now: datetime | None = None) -> dict:
    now = now or timezone.now()
    since = accounting_since(now, person.site.tz)
    rows = (
        # The disclosure log is append-only: rows about a record merged into this one stay
        # with it, and are this person's disclosures too.
        DisclosureLog.objects.filter(person__in=with_merged(person), at__gte=since, at__lte=now)
        .select_related("recipient", "packet", "emergency_release")
        .order_by("-at", "-pk")
    )
    disclosures, attempts = [], []
    for row in rows:
        left = (
            row.decision == DisclosureLog.Decision.GRANTED
            and row.path in DISCLOSURE_PATHS
            # A hand-over the app refused after the gate said yes (consent changed) voided
            # the packet: nothing left.
            and not (row.packet_id and row.packet.voided_at is not None)
        )
        (disclosures if left else attempts).append(_line(row))
    return {"since": since, "disclosures": disclosures, "attempts": attempts}


def emergencies_to_review(*, site):
    """Every medical-emergency release at the site (the stored record of what was sent),
    newest first, with its review if it has one."""
    return (
        EmergencyRelease.objects.filter(site=site)
        .select_related("person", "recipient", "released_by", "review__by")
        .order_by("-released_at", "-pk")
    )


DEFAULT_REVIEW_HOURS = 72


def review_hours() -> int:
    """How long the privacy officer has to review an emergency release:
    settings.EMERGENCY_REVIEW_HOURS (environment EMERGENCY_REVIEW_HOURS), 72 by default:
    three days, so a release on a Friday night is due by Monday night. 42 CFR 2.51 and
    RELEASES.md ask for a review, not a time; the clinic sets one so none is forgotten."""
    try:
        hours = int(getattr(settings, "EMERGENCY_REVIEW_HOURS", DEFAULT_REVIEW_HOURS))
    except (TypeError, ValueError):
        return DEFAULT_REVIEW_HOURS
    return hours if hours > 0 else DEFAULT_REVIEW_HOURS


def review_due(emergency: EmergencyRelease) -> datetime:
    return emergency.released_at + timedelta(hours=review_hours())


def _reviewed(emergency: EmergencyRelease):
    try:
        return emergency.review
    except EmergencyReview.DoesNotExist:
        return None


@dataclass(frozen=True)
class ReviewStatus:
    emergency: EmergencyRelease
    due: datetime
    review: EmergencyReview | None
    overdue: bool

    @property
    def label(self) -> str:
        if self.review is not None:
            return str(_("Reviewed"))
        return str(_("Overdue for review")) if self.overdue else str(_("Awaiting review"))


def review_status(emergency: EmergencyRelease, *, now: datetime | None = None) -> ReviewStatus:
    now = now or timezone.now()
    review = _reviewed(emergency)
    due = review_due(emergency)
    return ReviewStatus(emergency, due, review, review is None and now > due)


def emergencies_awaiting_review(*, site, now: datetime | None = None) -> list[ReviewStatus]:
    """The site's emergency releases not reviewed yet, oldest (most overdue) first. Overdue
    ones are shown to the privacy officer and the director; they never block anything."""
    now = now or timezone.now()
    waiting = (
        EmergencyRelease.objects.filter(site=site, review__isnull=True)
        .select_related("person", "recipient", "released_by")
        .order_by("released_at", "pk")
    )
    return [review_status(e, now=now) for e in waiting]
