"""Consent and release of information (RELEASES.md): the data behind the consent gate.

Consents are signed records: never edited after signing (corrections are a new consent);
revocations and expiry events are rows of their own. The disclosure log is append-only.
"""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from clinic.models import Person, Site


class Category(models.TextChoices):
    TREATMENT_PROVIDER = "treatment_provider", _("Treatment provider")
    HEALTH_PLAN = "health_plan", _("Health plan")
    FAMILY_FRIEND = "family_friend", _("Family or friend")
    DEFENSE_ATTORNEY = "defense_attorney", _("Attorney (defense)")
    COURT = "court", _("Court")
    DRUG_COURT = "drug_court", _("Drug / treatment court")
    PROBATION = "probation", _("Probation")
    PAROLE = "parole", _("Parole")
    PRETRIAL = "pretrial", _("Pretrial services")
    POLICE = "police", _("Police / sheriff")
    PROSECUTOR = "prosecutor", _("Prosecutor")
    CORRECTIONS = "corrections", _("Corrections")
    OTHER_GOVERNMENT = "other_government", _("Other government")
    OTHER = "other", _("Other")


CRIMINAL_LEGAL = frozenset(
    {
        Category.COURT,
        Category.DRUG_COURT,
        Category.PROBATION,
        Category.PAROLE,
        Category.PRETRIAL,
        Category.POLICE,
        Category.PROSECUTOR,
        Category.CORRECTIONS,
    }
)


class Scope(models.TextChoices):
    ATTENDANCE = "attendance", _("Attendance and visit dates")
    MEDICATIONS = "medications", _("Medications")
    TOX = "tox", _("Tox-screen results")
    GOALS = "goals", _("Goals and progress")
    VISIT_NOTES = "visit_notes", _("Visit notes")
    DIAGNOSES = "diagnoses", _("Diagnoses")
    OTHER = "other", _("Other (described)")


class Recipient(models.Model):
    """Someone information may go to. Nothing is ever released to a free-text recipient.

    `category` is the category it was created with; the database refuses to change it. A
    privacy officer's recategorisation is a RecipientCategoryChange row.
    """

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="recipients")
    organisation = models.CharField(_("organisation"), max_length=200)
    office = models.CharField(_("office"), max_length=200, blank=True)
    person_name = models.CharField(_("named person"), max_length=200, blank=True)
    contact = models.TextField(_("contact"), blank=True, max_length=1000)
    category = models.CharField(_("category"), max_length=20, choices=Category.choices)
    is_active = models.BooleanField(_("active"), default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["organisation", "office", "person_name"]
        permissions = [
            ("manage_releases", _("Can keep recipients and consents and approve releases")),
            ("request_release", _("Can ask for a release of information")),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(category__in=Category.values), name="recipient_known_category"
            )
        ]

    def __str__(self) -> str:
        return ", ".join(p for p in (self.organisation, self.office, self.person_name) if p)

    def category_history(self) -> list[str]:
        """The category it was created with, then every recorded change, oldest first."""
        changes = RecipientCategoryChange.objects.filter(recipient=self).order_by("at", "pk")
        return [self.category, *(c.to_category for c in changes)]

    @property
    def current_category(self) -> str:
        return self.category_history()[-1]

    @property
    def is_criminal_legal(self) -> bool:
        """Once criminal-legal, always treated as criminal-legal: relabelling a court as a
        treatment provider can never drop the consent and approval rules."""
        return bool(set(self.category_history()) & CRIMINAL_LEGAL)


class RecipientCategoryChange(models.Model):
    """Every change of a recipient's category: who, when, from, to, why."""

    recipient = models.ForeignKey(Recipient, on_delete=models.PROTECT, related_name="+")
    from_category = models.CharField(max_length=20, choices=Category.choices)
    to_category = models.CharField(max_length=20, choices=Category.choices)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField()
    reason = models.CharField(max_length=300)

    def __str__(self) -> str:
        return f"{self.recipient_id}: {self.from_category} → {self.to_category}"


class RecipientStatusChange(models.Model):
    """A recipient taken out of use (or back into use): who, when, why. The application log
    is not the record; this row is."""

    recipient = models.ForeignKey(Recipient, on_delete=models.PROTECT, related_name="+")
    is_active = models.BooleanField(_("in use after the change"))
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField()
    reason = models.CharField(max_length=300)

    def __str__(self) -> str:
        return f"{self.recipient_id}: active={self.is_active}"


class Consent(models.Model):
    """A signed consent (42 CFR §2.31 elements). Never edited after signing.

    Written in one transaction: the consent row (unsealed), its recipients and purposes, then
    `sealed` set as the last step. From then on the database refuses any change to the row,
    its recipients and its purposes (migration 0005). The gate ignores unsealed consents.
    """

    class SignedBy(models.TextChoices):
        PERSON = "person", _("The person")
        REPRESENTATIVE = "representative", _("An authorised representative")

    person = models.ForeignKey(Person, on_delete=models.PROTECT, related_name="consents")
    site = models.ForeignKey(
        Site, on_delete=models.PROTECT, related_name="+", verbose_name=_("who may disclose")
    )
    recipients = models.ManyToManyField(Recipient, related_name="consents")
    scope = models.JSONField(_("information covered"), help_text=_("Scope categories."))
    scope_other = models.CharField(_("other information (described)"), max_length=500, blank=True)
    revocation_statement = models.TextField(_("how it can be revoked"), max_length=2000)
    expires_on = models.DateField(_("expires at the end of"), null=True, blank=True)
    expiry_event = models.CharField(_("or expires when"), max_length=300, blank=True)
    signed_by = models.CharField(max_length=20, choices=SignedBy.choices)
    representative_name = models.CharField(max_length=200, blank=True)
    representative_basis = models.CharField(max_length=300, blank=True)
    signature_image = models.TextField(
        _("signature captured on screen"), blank=True, help_text=_("PNG data URL.")
    )
    scanned_form = models.FileField(upload_to="consents/%Y/%m/", blank=True)
    signed_on = models.DateField(_("date signed"))
    # §2.35: a court may make consent a condition of release; irrevocable only until stated.
    court_condition = models.BooleanField(_("a condition of a court's release"), default=False)
    irrevocable_until = models.DateField(null=True, blank=True)
    irrevocable_until_event = models.CharField(max_length=300, blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    recorded_at = models.DateTimeField()
    sealed = models.BooleanField(default=False, editable=False)
    # From the consent form: the same form posted twice returns the first consent.
    nonce = models.UUIDField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-signed_on", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["site", "nonce"], name="consent_nonce_unique"),
            models.CheckConstraint(
                condition=~models.Q(expires_on__isnull=True, expiry_event=""),
                name="consent_has_expiry",
            ),
            models.CheckConstraint(
                condition=~models.Q(revocation_statement=""), name="consent_states_revocation"
            ),
            models.CheckConstraint(
                condition=~models.Q(signature_image="", scanned_form=""),
                name="consent_is_signed",
            ),
        ]

    def __str__(self) -> str:
        return f"Consent {self.pk} ({self.person_id})"


class ConsentRecipientCategory(models.Model):
    """The category each named recipient had when the consent was signed.

    A consent holds only for that category: a treatment provider later recategorised as a
    court (or a court relabelled as anything else) is not the recipient the person agreed to,
    and the gate refuses ("recipient_recategorised"). Written with the consent, before it is
    sealed; from then on the database refuses any change, as for its recipients (migration
    0007). Consents signed before this table existed were given their recipient's category
    at that migration: the best fact available, not what the form said."""

    consent = models.ForeignKey(
        Consent, on_delete=models.PROTECT, related_name="recipient_categories"
    )
    recipient = models.ForeignKey(Recipient, on_delete=models.PROTECT, related_name="+")
    category = models.CharField(max_length=20, choices=Category.choices)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["consent", "recipient"], name="consent_recipient_category_once"
            ),
            models.CheckConstraint(
                condition=models.Q(category__in=Category.values),
                name="consent_recipient_known_category",
            ),
        ]

    def __str__(self) -> str:
        return f"Consent {self.consent_id}: {self.recipient_id} as {self.category}"


class ConsentPurpose(models.Model):
    consent = models.ForeignKey(Consent, on_delete=models.PROTECT, related_name="purposes")
    text = models.CharField(_("purpose"), max_length=300)

    def __str__(self) -> str:
        return self.text


class Revocation(models.Model):
    """Effective immediately for everything not yet released. Oral: an immediate hold."""

    class How(models.TextChoices):
        WRITTEN = "written", _("In writing")
        ORAL = "oral", _("Orally (a hold until it is in writing)")

    consent = models.ForeignKey(Consent, on_delete=models.PROTECT, related_name="revocations")
    how = models.CharField(max_length=10, choices=How.choices)
    received_on = models.DateField()
    taken_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    note = models.TextField(blank=True, max_length=2000)
    recorded_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"Revocation of {self.consent_id} ({self.how})"


class ExpiryEventRecord(models.Model):
    """Staff record that a consent's expiry event has happened."""

    consent = models.ForeignKey(Consent, on_delete=models.PROTECT, related_name="expiry_events")
    happened_on = models.DateField()
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    recorded_at = models.DateTimeField()
    note = models.CharField(max_length=300, blank=True)

    def __str__(self) -> str:
        return f"Expiry event for {self.consent_id}"


class ReleaseRequest(models.Model):
    """A request to send information out, made by staff for a person and a named recipient."""

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+")
    person = models.ForeignKey(Person, on_delete=models.PROTECT, related_name="release_requests")
    recipient = models.ForeignKey(Recipient, on_delete=models.PROTECT, related_name="requests")
    purpose = models.CharField(max_length=300)
    scope = models.JSONField()
    period_start = models.DateField(null=True, blank=True)
    period_end = models.DateField(null=True, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    requested_at = models.DateTimeField()
    note = models.TextField(blank=True, max_length=2000)

    def __str__(self) -> str:
        return f"Release request {self.pk}"


class Approval(models.Model):
    request = models.ForeignKey(ReleaseRequest, on_delete=models.PROTECT, related_name="approvals")
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    as_privacy_officer = models.BooleanField()
    at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["request", "by"], name="one_approval_per_person")
        ]

    def __str__(self) -> str:
        return f"Approval of {self.request_id} by {self.by_id}"


class ReleasePacket(models.Model):
    """What was prepared for hand-over. Void if the gate says no at hand-over time."""

    request = models.ForeignKey(ReleaseRequest, on_delete=models.PROTECT, related_name="packets")
    consent = models.ForeignKey(Consent, on_delete=models.PROTECT, related_name="+")
    generated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    generated_at = models.DateTimeField()
    manifest = models.JSONField()
    html = models.TextField()
    sha256 = models.CharField(max_length=64)
    handed_over_at = models.DateTimeField(null=True, blank=True)
    handed_over_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    voided_at = models.DateTimeField(null=True, blank=True)
    void_reason = models.CharField(max_length=40, blank=True)

    def __str__(self) -> str:
        return f"Packet {self.pk}"


class HandOver(models.Model):
    """How a packet left the clinic: who handed it over, when, by what means and to whom.
    One per packet, written in the same transaction as the gate's last check; never changed
    or deleted (append-only: triggers on both engines, and the application role may only
    SELECT and INSERT)."""

    class How(models.TextChoices):
        IN_PERSON = "in_person", _("In person, on paper")
        POST = "post", _("By post")
        FAX = "fax", _("By fax")
        SECURE_EMAIL = "secure_email", _("By secure email")
        PORTAL = "portal", _("Through the recipient's secure portal")

    packet = models.OneToOneField(ReleasePacket, on_delete=models.PROTECT, related_name="hand_over")
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField()
    how = models.CharField(_("how it was delivered"), max_length=20, choices=How.choices)
    handed_to = models.CharField(_("to whom, or where it was sent"), max_length=200)
    note = models.TextField(_("note"), blank=True, max_length=1000)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(how__in=["in_person", "post", "fax", "secure_email", "portal"]),
                name="hand_over_known_method",
            ),
            models.CheckConstraint(
                condition=~models.Q(handed_to=""), name="hand_over_says_to_whom"
            ),
        ]

    def __str__(self) -> str:
        return f"Hand-over of packet {self.packet_id}"


class EmergencyRelease(models.Model):
    """What was released in a medical emergency (42 CFR §2.51), stored like a packet: the
    document as sent, its manifest and SHA-256. §2.51(c) asks for exactly these: the medical
    personnel it went to and their affiliation (`personnel_name` at `recipient`), who released
    it and when, the nature of the emergency. Never changed (a trigger refuses UPDATE)."""

    log = models.OneToOneField(
        "DisclosureLog", on_delete=models.PROTECT, related_name="emergency_release"
    )
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+")
    person = models.ForeignKey(Person, on_delete=models.PROTECT, related_name="emergency_releases")
    recipient = models.ForeignKey(Recipient, on_delete=models.PROTECT, related_name="+")
    personnel_name = models.CharField(_("medical personnel who received it"), max_length=200)
    nature = models.CharField(_("nature of the emergency"), max_length=300)
    scope = models.JSONField()
    released_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    released_at = models.DateTimeField()
    manifest = models.JSONField()
    html = models.TextField()
    sha256 = models.CharField(max_length=64)

    class Meta:
        ordering = ["-released_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(personnel_name="") & ~models.Q(nature=""),
                name="emergency_release_documented",
            )
        ]

    def __str__(self) -> str:
        return f"Emergency release {self.pk}"


class EmergencyReview(models.Model):
    """The privacy officer's review of a medical emergency release (RELEASES.md: "always
    reviewed afterwards"): who, when, the finding, a note. One per release, never changed or
    deleted (append-only: triggers on both engines, and the application role may only SELECT
    and INSERT). Due within settings.EMERGENCY_REVIEW_HOURS of the release (default 72);
    an overdue review is shown, never blocks anything."""

    class Finding(models.TextChoices):
        APPROPRIATE = (
            "appropriate",
            _("Appropriate: a medical emergency, to medical personnel, only what they needed"),
        )
        CONCERNS = "concerns", _("Appropriate, with concerns (say which in the note)")
        NOT_APPROPRIATE = (
            "not_appropriate",
            _("Not appropriate: handled as a privacy incident (say how in the note)"),
        )

    emergency = models.OneToOneField(
        EmergencyRelease, on_delete=models.PROTECT, related_name="review"
    )
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+")
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField()
    finding = models.CharField(_("finding"), max_length=20, choices=Finding.choices)
    note = models.TextField(_("note"), blank=True, max_length=2000)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(finding__in=["appropriate", "concerns", "not_appropriate"]),
                name="emergency_review_known_finding",
            ),
            models.CheckConstraint(
                condition=models.Q(finding="appropriate") | ~models.Q(note=""),
                name="emergency_review_concerns_explained",
            ),
        ]

    def __str__(self) -> str:
        return f"Review of emergency release {self.emergency_id}: {self.finding}"


class IncomingRequest(models.Model):
    """A request from outside (subpoena, letter, call). Logged; never releases anything alone."""

    class Kind(models.TextChoices):
        SUBPOENA = "subpoena", _("Subpoena")
        WARRANT = "warrant", _("Warrant")
        COURT_ORDER = "court_order", _("Court order")
        LETTER = "letter", _("Official letter")
        CALL = "call", _("Phone call or visit")
        OTHER = "other", _("Other")

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    received_at = models.DateTimeField()
    logged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    from_recipient = models.ForeignKey(
        Recipient, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    from_text = models.CharField(_("from (as given)"), max_length=300)
    about_text = models.CharField(_("about (as given)"), max_length=300)
    # Linked only by the privacy officer; never shown in any reply.
    person = models.ForeignKey(
        Person, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    asks_for = models.TextField(blank=True, max_length=2000)
    escalated = models.BooleanField(default=False)

    def __str__(self) -> str:
        return f"Incoming {self.kind} {self.pk}"


class DisclosureLogQuerySet(models.QuerySet):
    """Bulk UPDATE and DELETE skip the model's save()/delete(): refuse them here too."""

    def update(self, **kwargs):
        raise PermissionError("The disclosure log is append-only.")

    def delete(self):
        raise PermissionError("The disclosure log is append-only.")

    # bulk_update() goes through update(); _raw_delete() is what a cascade uses.
    def _raw_delete(self, using):
        raise PermissionError("The disclosure log is append-only.")


class DisclosureLog(models.Model):
    """Every attempt to let information out: granted, refused, held or error. Append-only."""

    class Decision(models.TextChoices):
        GRANTED = "granted", _("Granted")
        REFUSED = "refused", _("Refused")
        HELD = "held", _("Held")
        ERROR = "error", _("Error")

    at = models.DateTimeField()
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+")
    asked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    person = models.ForeignKey(
        Person, on_delete=models.PROTECT, null=True, blank=True, related_name="disclosures"
    )
    recipient = models.ForeignKey(
        Recipient, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    recipient_category = models.CharField(max_length=20, blank=True)
    path = models.CharField(max_length=40)
    purpose = models.CharField(max_length=300, blank=True)
    legal_basis = models.CharField(max_length=100, blank=True)
    scope = models.JSONField(default=list)
    decision = models.CharField(max_length=10, choices=Decision.choices)
    reason = models.CharField(max_length=40)
    request = models.ForeignKey(
        ReleaseRequest, on_delete=models.PROTECT, null=True, blank=True, related_name="log"
    )
    packet = models.ForeignKey(
        ReleasePacket, on_delete=models.PROTECT, null=True, blank=True, related_name="log"
    )

    objects = DisclosureLogQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["person", "at"])]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.decision} {self.reason}"

    def save(self, *args, **kwargs):
        # The application never changes a written row (a trigger also refuses it on PostgreSQL).
        if self.pk is not None:
            raise PermissionError("The disclosure log is append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("The disclosure log is append-only.")
