"""Visit records, appointments, goals and tox-screen conversations.

Nothing here can penalise anyone (PRODUCT.md invariants 1-3): there is no no-show status, no
counter of missed appointments, no "failed" goal, and no field on a tox record that can stop a
medication, move someone in the queue or flag them.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from clinic.models import Discipline, Person, Service, Site


class Visit(models.Model):
    class Origin(models.TextChoices):
        QUEUE = "queue", _("From the queue")
        OUTREACH = "outreach", _("Outreach")
        QUICK = "quick", _("Quick contact")

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="visits")
    # Null for an anonymous contact (e.g. naloxone handed out at the door).
    person = models.ForeignKey(
        Person, on_delete=models.PROTECT, null=True, blank=True, related_name="visits"
    )
    arrival = models.OneToOneField(
        "queue.Arrival", on_delete=models.PROTECT, null=True, blank=True, related_name="visit"
    )
    origin = models.CharField(
        _("how it started"), max_length=10, choices=Origin.choices, default=Origin.QUEUE
    )
    started_at = models.DateTimeField(_("started"))
    # The local date at the site when the visit started; reports count by it. Set on save.
    day = models.DateField(_("day"), editable=False)
    ended_at = models.DateTimeField(_("ended"), null=True, blank=True)
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    services = models.ManyToManyField(
        Service, blank=True, related_name="+", verbose_name=_("services delivered")
    )
    priorities = models.TextField(
        _("their priorities today, in their words"), blank=True, max_length=4000
    )
    note = models.TextField(_("note"), blank=True, max_length=20000)
    # Set when the visit can no longer be undone (the day's close). From then on the database
    # refuses any change to it and to what it recorded; corrections are addenda. Only an ended
    # visit can be sealed (a trigger, migration 0005: a check constraint would make SQLite
    # rebuild the table and drop its triggers).
    sealed_at = models.DateTimeField(_("sealed"), null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("visit")
        verbose_name_plural = _("visits")
        permissions = [
            ("view_clinical", _("Can read visits, goals and tox-screen conversations")),
            ("record_visit", _("Can record visits, goals and tox-screen conversations")),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(ended_at__isnull=True)
                | models.Q(ended_at__gte=models.F("started_at")),
                name="visit_ends_after_it_starts",
            ),
        ]
        indexes = [
            models.Index(fields=["site", "started_at"]),
            # The key columns after (site, day) are what the reports read of a visit
            # (reports/measures.py): the period's visits come from the index alone.
            models.Index(
                fields=["site", "day", "person", "opened_by", "arrival", "started_at"],
                name="visit_site_day_report_idx",
            ),
            models.Index(fields=["person", "day"], name="visits_visi_person_day_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.person or _('anonymous contact')} {self.started_at:%Y-%m-%d}"

    def save(self, *args, **kwargs):
        # bulk_create skips this: callers that bulk-create (import, synthetic data) set day.
        self.day = timezone.localdate(self.started_at, self.site.tz)
        super().save(*args, **kwargs)

    @property
    def is_open(self) -> bool:
        return self.ended_at is None


class VisitParticipant(models.Model):
    """Care is a team's work: everyone who took part in a visit, with their discipline."""

    visit = models.ForeignKey(Visit, on_delete=models.CASCADE, related_name="participants")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    discipline = models.CharField(max_length=20, choices=Discipline.choices)
    joined_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["visit", "user"], name="participant_once_per_visit")
        ]

    def __str__(self) -> str:
        return f"{self.user} ({self.get_discipline_display()})"


class Addendum(models.Model):
    """A correction or later note on a closed visit; the visit itself is never edited again."""

    visit = models.ForeignKey(Visit, on_delete=models.PROTECT, related_name="addenda")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    written_at = models.DateTimeField()
    text = models.TextField(_("addendum"), max_length=20000)

    class Meta:
        ordering = ["written_at", "pk"]
        constraints = [
            models.CheckConstraint(condition=~models.Q(text=""), name="addendum_not_empty")
        ]

    def __str__(self) -> str:
        return f"Addendum to {self.visit_id} by {self.author_id}"


class Medication(models.TextChoices):
    BUPRENORPHINE_SL = "bup_sl", _("Buprenorphine (sublingual)")
    BUPRENORPHINE_NALOXONE = "bup_nx", _("Buprenorphine/naloxone (sublingual)")
    BUPRENORPHINE_XR = "bup_xr", _("Buprenorphine extended-release injection")
    METHADONE = "methadone", _("Methadone")
    NALTREXONE_ORAL = "ntx_oral", _("Naltrexone (oral)")
    NALTREXONE_XR = "ntx_xr", _("Naltrexone extended-release injection")


class MedicationEvent(models.Model):
    """Medication for opioid use disorder prescribed, dispensed or given at a visit."""

    class Action(models.TextChoices):
        PRESCRIBED = "prescribed", _("Prescribed")
        DISPENSED = "dispensed", _("Dispensed")
        ADMINISTERED = "administered", _("Administered")

    visit = models.ForeignKey(Visit, on_delete=models.PROTECT, related_name="medications")
    medication = models.CharField(_("medication"), max_length=12, choices=Medication.choices)
    dose = models.CharField(_("dose"), max_length=120, help_text=_("E.g. 16 mg daily."))
    days_supply = models.PositiveSmallIntegerField(_("days' supply"))
    action = models.CharField(_("how"), max_length=12, choices=Action.choices)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    recorded_at = models.DateTimeField()

    class Meta:
        ordering = ["recorded_at", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(days_supply__gte=1, days_supply__lte=365),
                name="days_supply_1_to_365",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_medication_display()} {self.days_supply}d"


class Appointment(models.Model):
    """Optional. When the person comes, early or late, they join the line like everyone else.

    There is deliberately no status: an appointment nobody came to is simply "not seen yet".
    """

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="appointments")
    person = models.ForeignKey(Person, on_delete=models.PROTECT, related_name="appointments")
    at = models.DateTimeField(_("time"))
    with_staff = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("with"),
    )
    service = models.ForeignKey(
        Service,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("for"),
    )
    note = models.CharField(_("note"), max_length=200, blank=True)
    arrival = models.OneToOneField(
        "queue.Arrival",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="appointment",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # Staff dismissed it from the neutral "reach out?" list; says nothing about the person.
    outreach_dismissed_at = models.DateTimeField(null=True, blank=True)
    outreach_dismissed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta:
        ordering = ["at", "pk"]
        verbose_name = _("appointment")
        verbose_name_plural = _("appointments")
        indexes = [models.Index(fields=["site", "at"])]

    def __str__(self) -> str:
        return f"{self.person} {self.at:%Y-%m-%d %H:%M}"


class Goal(models.Model):
    """A goal that belongs to the person, in their own words. Never "failed"."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        REACHED = "reached", _("Reached")
        CHANGED = "changed", _("Changed")
        SET_ASIDE = "set_aside", _("Set aside")

    person = models.ForeignKey(Person, on_delete=models.PROTECT, related_name="goals")
    words = models.TextField(_("in their words"), max_length=2000)
    set_on = models.DateField(_("set on"))
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.ACTIVE
    )
    status_changed_at = models.DateTimeField()
    visit = models.ForeignKey(
        Visit, on_delete=models.PROTECT, null=True, blank=True, related_name="goals_set"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["set_on", "pk"]
        constraints = [models.CheckConstraint(condition=~models.Q(words=""), name="goal_has_words")]

    def __str__(self) -> str:
        return self.words[:60]


class GoalProgress(models.Model):
    """A dated step. Any step counts."""

    goal = models.ForeignKey(Goal, on_delete=models.PROTECT, related_name="progress")
    on = models.DateField(_("date"))
    note = models.TextField(_("progress"), max_length=4000)
    visit = models.ForeignKey(
        Visit, on_delete=models.PROTECT, null=True, blank=True, related_name="goal_progress"
    )
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    written_at = models.DateTimeField()

    class Meta:
        ordering = ["on", "pk"]
        constraints = [
            models.CheckConstraint(condition=~models.Q(note=""), name="progress_has_words")
        ]

    def __str__(self) -> str:
        return f"{self.on}: {self.note[:40]}"


class Substance(models.TextChoices):
    FENTANYL = "fentanyl", _("Fentanyl")
    OPIATES = "opiates", _("Opiates (heroin, morphine)")
    OXYCODONE = "oxycodone", _("Oxycodone")
    BUPRENORPHINE = "buprenorphine", _("Buprenorphine")
    METHADONE = "methadone", _("Methadone")
    COCAINE = "cocaine", _("Cocaine")
    AMPHETAMINES = "amphetamines", _("Amphetamines / methamphetamine")
    BENZODIAZEPINES = "benzodiazepines", _("Benzodiazepines")
    XYLAZINE = "xylazine", _("Xylazine")
    CANNABIS = "cannabis", _("Cannabis")
    ALCOHOL = "alcohol", _("Alcohol (EtG)")


class ToxScreen(models.Model):
    """A tox screen and the conversation it started, recorded inside a visit.

    Care team only. By design it has no field or action that could change a prescription, a
    place in line or access to care, or flag the person.
    """

    class Specimen(models.TextChoices):
        URINE = "urine", _("Urine")
        ORAL_FLUID = "oral_fluid", _("Oral fluid")

    visit = models.ForeignKey(Visit, on_delete=models.PROTECT, related_name="tox_screens")
    specimen = models.CharField(_("specimen"), max_length=12, choices=Specimen.choices)
    collected_on = models.DateField(_("date"))
    own_account = models.TextField(
        _("what they say they have used (their account, optional)"), blank=True, max_length=4000
    )
    talked_fentanyl_supply = models.BooleanField(_("fentanyl in the supply"), default=False)
    talked_mixing = models.BooleanField(_("mixing substances"), default=False)
    talked_naloxone_offered = models.BooleanField(_("naloxone offered"), default=False)
    talked_naloxone_given = models.BooleanField(_("naloxone given"), default=False)
    talked_test_strips = models.BooleanField(_("test strips"), default=False)
    talked_safer_supplies = models.BooleanField(_("safer-use supplies"), default=False)
    talked_goals = models.BooleanField(_("their goals"), default=False)
    decision = models.TextField(_("what they decided"), blank=True, max_length=4000)
    note = models.TextField(_("note"), blank=True, max_length=8000)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    recorded_at = models.DateTimeField()

    class Meta:
        ordering = ["collected_on", "pk"]
        verbose_name = _("tox-screen conversation")
        verbose_name_plural = _("tox-screen conversations")

    def __str__(self) -> str:
        return f"{self.get_specimen_display()} {self.collected_on}"


class ToxResult(models.Model):
    class Result(models.TextChoices):
        NEGATIVE = "negative", _("Negative")
        POSITIVE = "positive", _("Positive")
        EXPECTED = "expected", _("Expected (medication present)")
        NOT_TESTED = "not_tested", _("Not tested")

    screen = models.ForeignKey(ToxScreen, on_delete=models.CASCADE, related_name="results")
    substance = models.CharField(max_length=20, choices=Substance.choices)
    result = models.CharField(max_length=12, choices=Result.choices)

    class Meta:
        ordering = ["pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["screen", "substance"], name="one_result_per_substance"
            ),
            models.CheckConstraint(
                condition=models.Q(substance__in=Substance.values), name="known_substance"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_substance_display()}: {self.get_result_display()}"


class Draft(models.Model):
    """What one team member has typed into one form of a visit page and not saved yet, kept so
    that another button, a reload or the screen lock never loses it (static/js/drafts.js).

    Only its author ever reads it back, on that visit's page at the visit's site. Saving the
    form deletes it; a draft of a visit that has since ended is offered as an addendum and
    deleted when that is saved (visits/services/drafts.py).
    """

    visit = models.ForeignKey(Visit, on_delete=models.CASCADE, related_name="+")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    # Which form on the page: "record", "medication", "addendum", "goal", "step-<goal id>".
    form = models.CharField(max_length=40)
    # The form's fields as typed: {name: [value, ...]} (a list: checkboxes repeat a name).
    data = models.JSONField()
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["visit", "author", "form"], name="one_draft_per_visit_author_form"
            )
        ]

    def __str__(self) -> str:
        return f"Draft {self.form} of visit {self.visit_id} by {self.author_id}"


class HandOffNote(models.Model):
    """What the team member handing someone over wrote for the next one, kept with the
    hand-off's queue event. Clinical text: shown on the visit page (an access-logged read),
    never in a log line or on the board."""

    event = models.OneToOneField(
        "queue.ArrivalEvent", on_delete=models.PROTECT, related_name="hand_off_note"
    )
    visit = models.ForeignKey(Visit, on_delete=models.PROTECT, related_name="hand_off_notes")
    text = models.TextField(_("note for the next team member"), max_length=2000)

    class Meta:
        ordering = ["event__at", "pk"]
        constraints = [
            models.CheckConstraint(condition=~models.Q(text=""), name="hand_off_note_not_empty")
        ]

    def __str__(self) -> str:
        return f"Hand-off note on visit {self.visit_id}"
