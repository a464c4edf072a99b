"""Visit records. A visit opens when a team member starts seeing someone from the queue."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from clinic.models import Discipline, Person, Site


class Visit(models.Model):
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="visits")
    # Null for an anonymous contact (e.g. naloxone handed out at the door).
    person = models.ForeignKey(
        Person, on_delete=models.PROTECT, null=True, blank=True, related_name="visits"
    )
    arrival = models.OneToOneField(
        "queue.Arrival", on_delete=models.PROTECT, null=True, blank=True, related_name="visit"
    )
    started_at = models.DateTimeField(_("started"))
    ended_at = models.DateTimeField(_("ended"), null=True, blank=True)
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        verbose_name = _("visit")
        verbose_name_plural = _("visits")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(ended_at__isnull=True)
                | models.Q(ended_at__gte=models.F("started_at")),
                name="visit_ends_after_it_starts",
            )
        ]

    def __str__(self) -> str:
        return f"{self.person or _('anonymous contact')} {self.started_at:%Y-%m-%d}"


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
