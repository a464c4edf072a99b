"""The walk-in queue. An Arrival is one person coming in; every change to it is an event row.

Place in line depends only on clinical urgency and arrival time (PRODUCT.md invariant 2). An
appointment time is stored to be shown, never to sort by.
"""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from clinic.models import Person, Room, Service, Site


class State(models.TextChoices):
    WAITING = "waiting", _("Waiting")
    CALLED = "called", _("Called")
    WITH_STAFF = "with_staff", _("With staff")
    STEPPED_OUT = "stepped_out", _("Stepped out")
    DONE = "done", _("Done")
    LEFT = "left", _("Left before being seen")


ACTIVE_STATES = (State.WAITING, State.CALLED, State.WITH_STAFF, State.STEPPED_OUT)
NOT_SEEN_STATES = (State.WAITING, State.CALLED, State.STEPPED_OUT)


class Arrival(models.Model):
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="arrivals")
    # Null only for anonymous contacts; check-in always attaches a person.
    person = models.ForeignKey(
        Person, on_delete=models.PROTECT, null=True, blank=True, related_name="arrivals"
    )
    service = models.ForeignKey(
        Service,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("came for"),
    )
    urgent = models.BooleanField(_("urgent"), default=False)
    urgent_reason = models.CharField(_("urgent because"), max_length=200, blank=True)
    day = models.DateField(_("day"), help_text=_("Local date at the site."))
    ticket_number = models.PositiveIntegerField()
    ticket = models.CharField(_("ticket"), max_length=12)
    arrived_at = models.DateTimeField(_("arrived"))
    appointment_at = models.DateTimeField(_("appointment"), null=True, blank=True)
    state = models.CharField(max_length=12, choices=State.choices, default=State.WAITING)
    state_changed_at = models.DateTimeField()
    staff = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("called by / with"),
    )
    room = models.ForeignKey(
        Room, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # Bumped by every change; a form that carries an older revision was made from a stale screen.
    revision = models.PositiveIntegerField(default=1)
    # From the check-in form: a repeated tap with the same nonce returns the first arrival.
    nonce = models.UUIDField(null=True, blank=True, editable=False)
    # Set only on arrivals brought in by import_visits from a previous system: a digest of the
    # source row that makes a repeated import a no-op. Their clock times are not known (only the
    # day), so wait-time measures leave them out. NULL (not "") for live arrivals, so that the
    # unique constraint below ignores them.
    import_key = models.CharField(  # noqa: DJ001
        max_length=64, null=True, blank=True, editable=False
    )

    class Meta:
        verbose_name = _("arrival")
        verbose_name_plural = _("arrivals")
        permissions = [
            ("view_queue", _("Can see the queue with names and reasons")),
            ("check_in", _("Can check people in")),
            ("mark_presence", _("Can mark stepped out, back and left before being seen")),
            ("call_arrival", _("Can call, see, hand off and finish")),
            ("close_day", _("Can close the day")),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["site", "day", "ticket_number"], name="ticket_unique_per_site_day"
            ),
            models.UniqueConstraint(fields=["site", "nonce"], name="checkin_nonce_unique"),
            models.UniqueConstraint(fields=["site", "import_key"], name="import_key_unique"),
            models.UniqueConstraint(
                fields=["person"],
                condition=models.Q(state__in=ACTIVE_STATES),
                name="one_active_arrival_per_person",
            ),
            models.CheckConstraint(
                condition=models.Q(urgent=False) | ~models.Q(urgent_reason=""),
                name="urgent_needs_reason",
            ),
        ]
        indexes = [
            models.Index(fields=["site", "state", "urgent", "arrived_at"]),
            # (site, day) with what the reports count of an arrival (reports/measures.py,
            # rt_pa): the period's counts come from the index alone.
            models.Index(
                fields=["site", "day", "state", "person", "appointment_at"],
                name="arrival_site_day_report_idx",
            ),
            # The reports' arrival-to-visit waits (rt_w) read these by id.
            models.Index(
                fields=["id", "arrived_at", "import_key"], name="arrival_id_wait_report_idx"
            ),
        ]

    def __str__(self) -> str:
        return self.ticket


class EventKind(models.TextChoices):
    CHECKED_IN = "checked_in", _("Checked in")
    CALLED = "called", _("Called")
    STARTED = "started", _("Started seeing")
    HANDED_OFF = "handed_off", _("Handed off")
    STEPPED_OUT = "stepped_out", _("Stepped out")
    CAME_BACK = "came_back", _("Came back")
    LEFT = "left", _("Left before being seen")
    DAY_CLOSED = "day_closed", _("Day closed while not seen yet")
    DONE = "done", _("Done")
    UNDONE = "undone", _("Undone")


class ArrivalEvent(models.Model):
    """One state change. Rows are only ever added; wait and service times come from them."""

    arrival = models.ForeignKey(Arrival, on_delete=models.PROTECT, related_name="events")
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=12, choices=EventKind.choices)
    at = models.DateTimeField()
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    from_state = models.CharField(max_length=12, choices=State.choices, blank=True)
    to_state = models.CharField(max_length=12, choices=State.choices)
    from_staff = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    to_staff = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    from_room = models.ForeignKey(
        Room, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    to_room = models.ForeignKey(
        Room, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    reverts = models.OneToOneField(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="reverted_by"
    )
    # The arrival's revision this event brought it to (1: the check-in). The database refuses a
    # change of state, staff member or room whose event is not written first (migration 0004).
    revision = models.PositiveIntegerField(null=True, editable=False)

    class Meta:
        ordering = ["at", "pk"]
        verbose_name = _("queue event")
        verbose_name_plural = _("queue events")
        indexes = [models.Index(fields=["site", "kind", "at"])]
        constraints = [
            # Partial (revision is null on no row the services write): also how SQLite adds it
            # without rebuilding the table and losing its triggers.
            models.UniqueConstraint(
                fields=["arrival", "revision"],
                condition=models.Q(revision__isnull=False),
                name="one_event_per_arrival_revision",
            )
        ]

    def __str__(self) -> str:
        return f"{self.arrival} {self.kind}"


class StaffRoom(models.Model):
    """The room a staff member calls people to at a site, kept across sign-ins.

    A session forgot it at every sign-in, and the waiting-room TV then said "Please come to the
    front desk". People also change rooms from one day to the next, so the day's first call asks
    to confirm it: `confirmed_on` is the site's local day it was last chosen or confirmed.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="+")
    # Empty: the front desk. A room taken out of use (or deleted) counts as no room.
    room = models.ForeignKey(
        Room, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    confirmed_on = models.DateField(_("confirmed on"), null=True, blank=True)

    class Meta:
        verbose_name = _("staff member's room")
        verbose_name_plural = _("staff members' rooms")
        constraints = [
            models.UniqueConstraint(fields=["user", "site"], name="one_room_per_user_and_site")
        ]

    def __str__(self) -> str:
        return f"{self.user} at {self.site}: {self.room or '-'}"


class TicketCounter(models.Model):
    """The last ticket number handed out at a site on a local day (locked while taking one)."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    last = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["site", "day"], name="one_counter_per_site_day")
        ]

    def __str__(self) -> str:
        return f"{self.site} {self.day}: {self.last}"


class QueueClock(models.Model):
    """The version of a site's queue: bumped in the same transaction as every change.

    Kept apart from Site so that saving a site in the admin never writes an old version back.
    """

    site = models.OneToOneField(Site, on_delete=models.CASCADE, primary_key=True, related_name="+")
    version = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.site} v{self.version}"
