"""Clinic-wide core: sites, their service catalogue and rooms, staff membership, people."""

import secrets
import zoneinfo
from datetime import date

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from clinic.roles import ROLE_NAMES


def new_display_token() -> str:
    return secrets.token_urlsafe(24)


def validate_timezone(value: str) -> None:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationError(_("%(tz)s is not a known time zone."), params={"tz": value}) from exc


class Site(models.Model):
    name = models.CharField(_("name"), max_length=120)
    slug = models.SlugField(_("short name"), max_length=50, unique=True)
    timezone = models.CharField(
        _("time zone"), max_length=64, default="UTC", validators=[validate_timezone]
    )
    ticket_prefix = models.CharField(
        _("ticket prefix"),
        max_length=2,
        default="A",
        validators=[RegexValidator(r"^[A-Z]{1,2}$", _("One or two capital letters."))],
        help_text=_("Letters in front of the ticket number, e.g. K for K-14."),
    )
    wait_warning_minutes = models.PositiveSmallIntegerField(
        _("long wait after (minutes)"),
        default=30,
        validators=[MinValueValidator(1)],
        help_text=_("The board changes colour for people waiting longer than this."),
    )
    display_token = models.CharField(
        _("display link secret"),
        max_length=64,
        unique=True,
        default=new_display_token,
        editable=False,
    )
    display_chime = models.BooleanField(
        _("chime on the waiting-room display"),
        default=False,
        help_text=_(
            "The waiting-room display plays a short chime when someone is called. Browsers "
            'only play sound once someone has tapped the display\'s "Tap to turn sound on".'
        ),
    )
    is_active = models.BooleanField(_("active"), default=True)
    # Empty: clinic.dates.EARLIEST_RECORD. Not a creation date: a site brings in its history
    # from a previous system (import_visits), so its records start before this row was made.
    opened_on = models.DateField(
        _("first day of records"),
        null=True,
        blank=True,
        validators=[MinValueValidator(date(1900, 1, 1))],
        help_text=_(
            "The first day this site saw people, under this system or an earlier one. Visits, "
            "tox screens and imported history cannot be dated before it. Empty: 1 January 2000."
        ),
    )
    require_second_factor = models.BooleanField(
        _("second factor for directors and privacy officers"),
        default=False,
        help_text=_(
            "Directors and privacy officers of this site must also enter a code from an "
            "authenticator app when they sign in."
        ),
    )

    class Meta:
        ordering = ["name"]
        verbose_name = _("site")
        verbose_name_plural = _("sites")

    def __str__(self) -> str:
        return self.name

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)


class Service(models.Model):
    """Something a person can come to the clinic for, from the site's own catalogue."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="services")
    name = models.CharField(_("name"), max_length=80)
    position = models.PositiveSmallIntegerField(_("position"), default=0)
    is_active = models.BooleanField(_("offered"), default=True)
    # A stable short code that reports and imports use (e.g. "naloxone"); the name may change.
    code = models.SlugField(
        _("code"),
        max_length=40,
        blank=True,
        help_text=_('Short code used by reports and imports, e.g. "naloxone".'),
    )

    class Meta:
        ordering = ["site", "position", "name"]
        verbose_name = _("service")
        verbose_name_plural = _("services")
        constraints = [
            models.UniqueConstraint(fields=["site", "name"], name="service_name_unique_per_site"),
            models.UniqueConstraint(
                fields=["site", "code"],
                condition=~models.Q(code=""),
                name="service_code_unique_per_site",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Room(models.Model):
    """Where a called person goes. Shown on the waiting-room display, so never a person's name."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="rooms")
    name = models.CharField(_("name"), max_length=40)
    position = models.PositiveSmallIntegerField(_("position"), default=0)
    is_active = models.BooleanField(_("in use"), default=True)

    class Meta:
        ordering = ["site", "position", "name"]
        verbose_name = _("room")
        verbose_name_plural = _("rooms")
        constraints = [
            models.UniqueConstraint(fields=["site", "name"], name="room_name_unique_per_site")
        ]

    def __str__(self) -> str:
        return self.name


class Discipline(models.TextChoices):
    FRONT_DESK = "front_desk", _("Front desk")
    NURSE = "nurse", _("Nurse")
    NURSE_PRACTITIONER = "np", _("Nurse practitioner")
    PHYSICIAN = "physician", _("Physician")
    PSYCHOLOGIST = "psychologist", _("Psychologist")
    SOCIAL_WORKER = "social_worker", _("Social worker")
    CHW = "chw", _("Community health worker")
    PEER_NAVIGATOR = "peer_navigator", _("Peer navigator")
    ADMINISTRATION = "administration", _("Administration")
    OTHER = "other", _("Other")


class Membership(models.Model):
    """A staff member works at a site, holding some roles *there*.

    A role (a Django group from clinic.roles) counts only at the site of the membership that
    holds it: a director at one site who is a clinician at another is a clinician there.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="memberships")
    discipline = models.CharField(
        _("discipline"), max_length=20, choices=Discipline.choices, default=Discipline.OTHER
    )
    roles = models.ManyToManyField(
        "auth.Group",
        verbose_name=_("roles at this site"),
        blank=True,
        related_name="memberships",
        limit_choices_to={"name__in": ROLE_NAMES},
        help_text=_("What this person may do at this site, and only here."),
    )
    # The staff identifier in a previous system (import_visits matches on it).
    external_id = models.CharField(_("previous system's staff id"), max_length=64, blank=True)

    class Meta:
        verbose_name = _("site membership")
        verbose_name_plural = _("site memberships")
        constraints = [
            models.UniqueConstraint(fields=["user", "site"], name="one_membership_per_user_site"),
            models.UniqueConstraint(
                fields=["site", "external_id"],
                condition=~models.Q(external_id=""),
                name="staff_external_id_unique_per_site",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.site}"


class Shift(models.Model):
    """Time a staff member was on shift at a site: the denominator of visits per staff-hour.

    About the clinic's workload, never a ranking of staff (METRICS.md M18).
    """

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="shifts")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    day = models.DateField(_("day"), help_text=_("Local date at the site."))
    starts_at = models.DateTimeField(_("from"))
    ends_at = models.DateTimeField(_("until"))

    class Meta:
        ordering = ["site", "starts_at"]
        verbose_name = _("shift")
        verbose_name_plural = _("shifts")
        indexes = [models.Index(fields=["site", "day"])]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(ends_at__gt=models.F("starts_at")), name="shift_ends_after_start"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.site} {self.day}"

    def save(self, *args, **kwargs):
        self.day = timezone.localdate(self.starts_at, self.site.tz)
        super().save(*args, **kwargs)


class PersonQuerySet(models.QuerySet):
    def current(self):
        """Records in use: not merged into another record of the same person."""
        return self.filter(merged_into__isnull=True)


class Person(models.Model):
    """Someone the clinic knows. Only the name they want to be called is required."""

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="people")
    name = models.CharField(_("name"), max_length=200, help_text=_("The name they go by."))
    pronouns = models.CharField(_("pronouns"), max_length=40, blank=True)
    date_of_birth = models.DateField(_("date of birth"), null=True, blank=True)
    phone = models.CharField(_("phone"), max_length=40, blank=True)
    what_helps = models.TextField(
        _("what helps"),
        blank=True,
        max_length=1000,
        help_text=_("E.g. has a dog, likes coffee, prefers the quiet room."),
    )
    created_at = models.DateTimeField(_("first recorded"), auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    # The participant identifier in a previous system (import_visits matches on it).
    external_id = models.CharField(_("previous system's id"), max_length=64, blank=True)
    # Set when this record turned out to be a second record of someone already known and was
    # merged into theirs (PersonMerge, approved by the privacy officer). The record stays, so
    # that the audit rows pointing at it (access log, disclosures, history) keep their meaning;
    # it is no longer offered anywhere. The database refuses setting it without an approved
    # merge of this record into that one, and changing or clearing it once set (migration
    # 0012; no check constraint: SQLite would rebuild the table and drop its triggers).
    merged_into = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        editable=False,
        related_name="merged_records",
        verbose_name=_("merged into"),
    )

    objects = PersonQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        verbose_name = _("person")
        verbose_name_plural = _("people")
        indexes = [models.Index(fields=["site", "name"])]
        constraints = [
            models.CheckConstraint(condition=~models.Q(name=""), name="person_name_not_empty"),
            models.UniqueConstraint(
                fields=["site", "external_id"],
                condition=~models.Q(external_id=""),
                name="person_external_id_unique_per_site",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class AccessLog(models.Model):
    """Every opening of a clinical record: who, whom, what, when. Rows are only ever added."""

    class What(models.TextChoices):
        PERSON = "person", _("Person's clinical record")
        VISIT = "visit", _("Visit")
        TOX = "tox", _("Tox-screen conversation")
        GOALS = "goals", _("Goals")
        # Consents and releases (RELEASES.md: every read of a consent or release is logged).
        CONSENT = "consent", _("Consent")
        RELEASE = "release", _("Release request")
        PACKET = "packet", _("Release packet")
        EMERGENCY = "emergency", _("Medical emergency release")
        ACCOUNTING = "accounting", _("Accounting of disclosures")
        INCOMING = "incoming", _("Request from outside")
        # The care team's outreach list (names with how long since their last contact).
        OUTREACH = "outreach", _("Outreach list")
        # The privacy officer reading the history of changes to a person's record.
        HISTORY = "history", _("History of changes")
        # Comparing two records of one person to merge them (both are logged).
        MERGE = "merge", _("Two records compared for a merge")

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+")
    person = models.ForeignKey(
        Person, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    what = models.CharField(max_length=10, choices=What.choices)
    object_id = models.CharField(max_length=40, blank=True)
    at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-at", "-pk"]
        verbose_name = _("access log entry")
        verbose_name_plural = _("access log")
        permissions = [("view_access_log", _("Can read the access log"))]

    def __str__(self) -> str:
        return f"{self.user} {self.what} {self.object_id} {self.at:%Y-%m-%d %H:%M}"


class PersonMerge(models.Model):
    """Two records of one person: a clinician proposes merging the duplicate into the kept
    record, and the site's privacy officer (someone else) approves or declines.

    On approval (visits.services.merge) everything that may change moves from the duplicate
    to the kept record in one transaction; the audit rows stay with the duplicate, which is
    marked `merged_into` the kept record. This row is the record of the merge itself, and is
    in the history of changes. Once decided it never changes again (the database refuses).
    """

    class Status(models.TextChoices):
        PROPOSED = "proposed", _("Waiting for the privacy officer")
        APPROVED = "approved", _("Merged")
        DECLINED = "declined", _("Declined")

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+")
    kept = models.ForeignKey(
        Person, on_delete=models.PROTECT, related_name="+", verbose_name=_("record kept")
    )
    duplicate = models.ForeignKey(
        Person, on_delete=models.PROTECT, related_name="+", verbose_name=_("second record")
    )
    reason = models.TextField(_("why they are one person"), max_length=1000)
    # Details the kept record takes from the second one (field names; the rest stay its own).
    take_from_duplicate = models.JSONField(_("details taken from the second record"), default=list)
    append_what_helps = models.BooleanField(
        _('add the second record\'s "what helps"'), default=False
    )
    # Both records' details as the proposer saw them: a change since makes the proposal stale.
    snapshot = models.JSONField(editable=False)
    nonce = models.UUIDField(null=True, blank=True, editable=False)
    proposed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("proposed by"),
    )
    proposed_at = models.DateTimeField(_("proposed"))
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.PROPOSED
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("decided by"),
    )
    decided_at = models.DateTimeField(_("decided"), null=True, blank=True)
    decline_reason = models.CharField(_("why not"), max_length=500, blank=True)
    # What moved on approval: {table: [row ids]}, so the merge says exactly what it changed
    # (the queue's arrivals are not in the history of changes; this names them).
    moved = models.JSONField(default=dict, editable=False)

    class Meta:
        ordering = ["-proposed_at", "-pk"]
        verbose_name = _("merge of two records")
        verbose_name_plural = _("merges of two records")
        default_permissions = ()
        permissions = [
            ("propose_merge", _("Can propose merging two records of one person")),
            ("approve_merge", _("Can approve or decline merging two records of one person")),
        ]
        indexes = [models.Index(fields=["site", "status"], name="merge_site_status_idx")]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(kept=models.F("duplicate")), name="merge_two_records"
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=["proposed", "approved", "declined"]),
                name="merge_known_status",
            ),
            models.CheckConstraint(
                condition=models.Q(
                    status="proposed", decided_by__isnull=True, decided_at__isnull=True
                )
                | (
                    ~models.Q(status="proposed")
                    & models.Q(decided_by__isnull=False, decided_at__isnull=False)
                ),
                name="merge_decided_says_who_and_when",
            ),
            # Four eyes: whoever proposed a merge cannot decide it.
            models.CheckConstraint(
                condition=~models.Q(decided_by=models.F("proposed_by")),
                name="merge_decided_by_someone_else",
            ),
            models.UniqueConstraint(
                fields=["duplicate"],
                condition=models.Q(status="approved"),
                name="record_merged_once",
            ),
            models.UniqueConstraint(fields=["site", "nonce"], name="merge_nonce_unique"),
        ]

    def __str__(self) -> str:
        return f"Merge {self.pk}: {self.duplicate_id} into {self.kept_id} ({self.status})"


class StaffSession(models.Model):
    """A signed-in session of a staff account, so that all of them can be ended at once: sign
    out everywhere, a password changed or reset, a role or membership taken away."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="staff_sessions"
    )
    session_key = models.CharField(max_length=40, unique=True)
    started_at = models.DateTimeField(auto_now_add=True)
    user_agent = models.CharField(max_length=200, blank=True)

    class Meta:
        verbose_name = _("signed-in session")
        verbose_name_plural = _("signed-in sessions")

    def __str__(self) -> str:
        return f"{self.user} {self.started_at:%Y-%m-%d %H:%M}"


class LockoutEvent(models.Model):
    """A sign-in locked after repeated failures, or unlocked by a director: the lockout log the
    privacy officer reads. Rows are only ever added.

    The name typed is kept only when it is an account's username: a name that matches no
    account may be a password typed into the wrong field."""

    class Kind(models.TextChoices):
        LOCKED = "locked", _("Locked after repeated failures")
        UNLOCKED = "unlocked", _("Unlocked by a director")

    kind = models.CharField(_("what"), max_length=10, choices=Kind.choices)
    at = models.DateTimeField(_("when"), auto_now_add=True, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="lockout_events",
        verbose_name=_("account"),
    )
    ip_address = models.GenericIPAddressField(_("address"), null=True, blank=True)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("unlocked by"),
    )

    class Meta:
        ordering = ["-at", "-pk"]
        verbose_name = _("lockout")
        verbose_name_plural = _("lockout log")

    def __str__(self) -> str:
        return f"{self.kind} {self.user or '?'} {self.at:%Y-%m-%d %H:%M}"


class ChangeHistoryQuerySet(models.QuerySet):
    """Bulk UPDATE and DELETE skip the model's save()/delete(): refuse them here too (the
    database refuses them as well, on both engines)."""

    def update(self, **kwargs):
        raise PermissionError("The history of changes is append-only.")

    def delete(self):
        raise PermissionError("The history of changes is append-only.")

    def _raw_delete(self, using):
        raise PermissionError("The history of changes is append-only.")


class ChangeHistory(models.Model):
    """One INSERT, UPDATE or DELETE of a person's details or of their clinical record.

    Written only by database triggers (clinic/history.py), never by the application, and never
    changed. `changes` maps column names to values: every column's value after an INSERT, every
    column's last value before a DELETE, and [before, after] for the columns an UPDATE changed.
    `person`, `site` and `actor` are plain ids without a foreign-key constraint: the history
    of a row outlives the row (and a deleted person's history stays readable).
    """

    class Operation(models.TextChoices):
        INSERT = "insert", _("Added")
        UPDATE = "update", _("Changed")
        DELETE = "delete", _("Removed")

    table_name = models.CharField(max_length=63)
    row_id = models.BigIntegerField()
    person = models.ForeignKey(
        Person,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,  # the indexes below lead with it
        null=True,
        blank=True,
        related_name="+",
    )
    site = models.ForeignKey(
        Site,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        null=True,
        related_name="+",
    )
    operation = models.CharField(max_length=6, choices=Operation.choices)
    at = models.DateTimeField(_("when"))
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("who"),
    )
    # How the change was made when nobody signed in made it: "web", a command's name, or "".
    via = models.CharField(max_length=40, blank=True)
    changes = models.JSONField()

    objects = ChangeHistoryQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-pk"]
        verbose_name = _("change")
        verbose_name_plural = _("history of changes")
        indexes = [
            # A person's history, newest first, is one index scan.
            models.Index(fields=["person", "-at", "-id"], name="history_person_at_idx"),
            models.Index(fields=["site", "-at", "-id"], name="history_site_at_idx"),
            models.Index(fields=["site", "actor", "-at"], name="history_site_actor_at_idx"),
            # One record's history; also whom a deleted parent row concerned (clinic/history.py).
            models.Index(fields=["table_name", "row_id"], name="history_row_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.operation} {self.table_name} {self.row_id} {self.at:%Y-%m-%d %H:%M}"

    def save(self, *args, **kwargs):
        raise PermissionError("The history of changes is written by the database only.")

    def delete(self, *args, **kwargs):
        raise PermissionError("The history of changes is append-only.")
