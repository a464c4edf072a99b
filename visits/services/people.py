"""Writes to a person's own details (the non-clinical part of their page)."""

from datetime import date

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from clinic.dates import birth_date_problem
from clinic.models import Person
from clinic.names import NO_LETTER, has_letter, person_name_clean
from queues import services as queue_services
from queues.models import ACTIVE_STATES, Arrival
from visits.errors import VisitError

NAME_MAX = 200
PRONOUNS_MAX = 40
PHONE_MAX = 40
WHAT_HELPS_MAX = 1000


def _text(value: str | None, *, max_length: int, code: str, label: str) -> str:
    value = (value or "").strip()
    if len(value) > max_length:
        raise VisitError(
            code,
            _("%(label)s can be at most %(max)d characters.") % {"label": label, "max": max_length},
        )
    return value


def check_date_of_birth(born: date, *, today: date) -> None:
    """`today` is the date at the person's site (clinic.dates has the bounds)."""
    problem = birth_date_problem(born, today=today)
    if problem is not None:
        raise VisitError(*problem)


def person_update(
    *,
    person: Person,
    by,
    name: str,
    pronouns: str = "",
    date_of_birth: date | None = None,
    phone: str = "",
    what_helps: str = "",
    today: date | None = None,
) -> Person:
    """Replace the person's details with the given ones. Only the name is required; a blank
    optional field clears it (that is what the edit form shows and asks).

    Validates everything before writing anything. Locks the person row, so two people saving
    at once are applied one after the other, never mixed. If the person is on today's board and
    their name or pronouns change, the board is told (through the queue's version bump).
    """
    name = _text(
        person_name_clean(name), max_length=NAME_MAX, code="name_too_long", label=_("Name")
    )
    if name and not has_letter(name):
        raise VisitError("name_no_letter", str(NO_LETTER))
    if not name:
        raise VisitError("name_required", _("Please enter the name the person goes by."))
    details = {
        "name": name,
        "pronouns": _text(
            pronouns, max_length=PRONOUNS_MAX, code="pronouns_too_long", label=_("Pronouns")
        ),
        "phone": _text(phone, max_length=PHONE_MAX, code="phone_too_long", label=_("Phone")),
        "what_helps": _text(
            what_helps, max_length=WHAT_HELPS_MAX, code="what_helps_too_long", label=_("What helps")
        ),
        "date_of_birth": date_of_birth,
    }
    if date_of_birth is not None:
        check_date_of_birth(
            date_of_birth, today=today or timezone.localdate(timezone.now(), person.site.tz)
        )

    with transaction.atomic():
        locked = Person.objects.select_for_update().get(pk=person.pk)
        board_changed = (locked.name, locked.pronouns) != (name, details["pronouns"])
        for field, value in details.items():
            setattr(locked, field, value)
        locked.save(update_fields=list(details))
        on_board = Arrival.objects.filter(
            Q(state__in=ACTIVE_STATES) | Q(day=today), person=locked
        ).exists()
        if board_changed and on_board:
            # The board shows names and pronouns; screens refetch when the version moves.
            queue_services.queue_version_bump(locked.site_id)
    for field, value in details.items():
        setattr(person, field, value)
    return person
