"""Tox-screen conversations, recorded inside a visit.

PRODUCT.md invariant 3: a tox result can never, by itself, change a prescription, a place in
line or access to care. This module therefore writes only ToxScreen and ToxResult rows (and
adds the author to the visit's team). It imports nothing from the queue and never touches
medication events; tests/visits/test_tox_no_penalty.py holds it to that.
"""

from collections.abc import Mapping
from datetime import date, datetime

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from clinic.access import access_log_record
from clinic.dates import record_day_problem, site_first_day
from clinic.models import AccessLog
from visits.errors import VisitError
from visits.models import Substance, ToxResult, ToxScreen, Visit
from visits.services.visits import visit_add_participant

TALKED_FIELDS = (
    "talked_fentanyl_supply",
    "talked_mixing",
    "talked_naloxone_offered",
    "talked_naloxone_given",
    "talked_test_strips",
    "talked_safer_supplies",
    "talked_goals",
)
TEXT_FIELDS = ("own_account", "decision", "note")


def _field_max(name: str) -> int:
    return ToxScreen._meta.get_field(name).max_length


def _clean_results(results: Mapping[str, str]) -> dict[str, str]:
    unknown = [s for s in results if s not in Substance.values]
    if unknown:
        raise VisitError(
            "unknown_substance",
            _("%(what)s is not in the list of substances; nothing was saved.")
            % {"what": ", ".join(sorted(str(s) for s in unknown))},
        )
    bad = [s for s, r in results.items() if r not in ToxResult.Result.values]
    if bad:
        raise VisitError(
            "unknown_result",
            _("Please choose negative, positive, expected or not tested for each substance."),
        )
    tested = {s: r for s, r in results.items() if r != ToxResult.Result.NOT_TESTED}
    if not tested:
        raise VisitError(
            "no_results", _("Please record a result for at least one substance that was tested.")
        )
    return tested


def tox_screen_record(
    *,
    visit: Visit,
    by,
    specimen: str,
    collected_on: date,
    results: Mapping[str, str],
    own_account: str = "",
    decision: str = "",
    note: str = "",
    talked: Mapping[str, bool] | None = None,
    now: datetime | None = None,
) -> ToxScreen:
    """Record a tox screen and the conversation it started. Locks the visit.

    `results` maps a Substance value to a ToxResult.Result value; "not tested" rows are not
    stored. `talked` maps the talked_* field names to booleans.
    """
    now = now or timezone.now()
    if specimen not in ToxScreen.Specimen.values:
        raise VisitError("unknown_specimen", _("Please choose urine or oral fluid."))
    tested = _clean_results(results)
    talked = dict(talked or {})
    if set(talked) - set(TALKED_FIELDS):
        raise VisitError("unknown_topic", _("Please pick from the topics listed."))
    texts = {}
    given = {"own_account": own_account, "decision": decision, "note": note}
    for name in TEXT_FIELDS:
        value = (given[name] or "").strip()
        if len(value) > _field_max(name):
            raise VisitError(
                "too_long",
                _("%(label)s can be at most %(max)d characters.")
                % {
                    "label": ToxScreen._meta.get_field(name).verbose_name,
                    "max": _field_max(name),
                },
            )
        texts[name] = value
    with transaction.atomic():
        visit = Visit.objects.select_for_update().select_related("site").get(pk=visit.pk)
        if not visit.is_open:
            raise VisitError(
                "visit_closed",
                _("This visit is closed, so a tox-screen conversation cannot be added to it."),
            )
        if collected_on > timezone.localdate(now, visit.site.tz):
            raise VisitError("future_date", _("The date cannot be in the future."))
        if collected_on < site_first_day(visit.site):
            raise VisitError("before_first_day", record_day_problem(collected_on, site=visit.site))
        screen = ToxScreen.objects.create(
            visit=visit,
            specimen=specimen,
            collected_on=collected_on,
            recorded_by=by,
            recorded_at=now,
            **texts,
            **{name: bool(talked.get(name)) for name in TALKED_FIELDS},
        )
        # In the order of the list, so every page shows them the same way.
        ToxResult.objects.bulk_create(
            ToxResult(screen=screen, substance=s, result=tested[s])
            for s in Substance.values
            if s in tested
        )
        visit_add_participant(visit=visit, user=by, at=now)
    return screen


def tox_log_shown(*, user, visit: Visit, screens) -> None:
    """Write one access-log row per tox screen shown to `user` (call it wherever one is shown).

    Runs in the caller's transaction: a page that failed to log was not shown.
    """
    for screen in screens:
        access_log_record(
            user=user, site=visit.site, what=AccessLog.What.TOX, person=visit.person, obj=screen
        )
