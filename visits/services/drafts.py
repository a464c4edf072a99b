"""Drafts of the visit page's forms: what a team member has typed and not saved yet.

The page sends each form's fields a moment after typing stops (static/js/drafts.js); the page
puts them back when it is shown again, so another button, a reload or the screen lock never
loses them. Drafts are clinical text: only their author reads them back, on that visit's page
at its site; saving the form deletes its draft. Once the visit has ended, its drafts are
offered as one addendum, and saving that deletes them all.
"""

import re
from datetime import datetime

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from visits.errors import VisitError
from visits.models import Draft, Visit
from visits.services import visits as visit_services
from visits.services.goals import PROGRESS_MAX, WORDS_MAX

CHOICE_MAX = 40
# A browser sends a textarea's line breaks as CRLF, so its text can be longer than the
# characters it counted; a draft keeps it all (saving the form checks the real limit).
SLACK = 2
# Each form a draft can be kept for: its fields, and how long each may be.
FORMS = {
    "record": {
        "base": CHOICE_MAX,
        "services": CHOICE_MAX,
        "priorities": visit_services.PRIORITIES_MAX,
        "note": visit_services.NOTE_MAX,
    },
    "medication": {
        "medication": CHOICE_MAX,
        "dose": visit_services.DOSE_MAX,
        "days_supply": CHOICE_MAX,
        "action": CHOICE_MAX,
    },
    "addendum": {"text": visit_services.ADDENDUM_MAX},
    "goal": {"words": WORDS_MAX},
    "step": {"note": PROGRESS_MAX},
}
FORM_NAME = re.compile(r"^(record|medication|addendum|goal)$|^(step)-([1-9][0-9]{0,17})$")
# Fields that say what a form was made from, or pick from a list: not text anyone typed.
NOT_TYPED = {"base", "medication", "action"}
MAX_VALUES = 200


def _kind(form: str) -> str:
    match = FORM_NAME.match(form or "")
    if match is None:
        raise VisitError("bad_draft", _("This page was out of date. Please reload it."))
    return match.group(1) or match.group(2)


def _clean(kind: str, data: dict[str, list[str]]) -> dict[str, list[str]]:
    fields = FORMS[kind]
    clean = {}
    for name, values in data.items():
        if name not in fields:
            continue
        if len(values) > MAX_VALUES or any(
            not isinstance(v, str) or len(v) > fields[name] * SLACK for v in values
        ):
            raise VisitError("bad_draft", _("This draft is too long to keep."))
        clean[name] = list(values)
    return clean


def _typed(data: dict[str, list[str]]) -> bool:
    """Whether anything in it was typed or ticked (a form made and left alone is no draft)."""
    return any(v.strip() for name, values in data.items() if name not in NOT_TYPED for v in values)


def draft_save(
    *, visit: Visit, author, form: str, data: dict[str, list[str]], now: datetime | None = None
) -> Draft | None:
    """Keep what `author` has typed into `form` of the visit's page, replacing their last
    draft of it; nothing typed any more deletes it. Locks nothing: one author, one row."""
    data = _clean(_kind(form), data)
    with transaction.atomic():
        if not _typed(data):
            Draft.objects.filter(visit=visit, author=author, form=form).delete()
            return None
        draft, _created = Draft.objects.update_or_create(
            visit=visit,
            author=author,
            form=form,
            defaults={"data": data, "updated_at": now or timezone.now()},
        )
    return draft


def drafts_for(*, visit: Visit, author) -> dict[str, dict[str, list[str]]]:
    """The author's drafts of this visit's forms, by form."""
    return {
        d.form: d.data
        for d in Draft.objects.filter(visit=visit, author=author).only("form", "data")
    }


def draft_discard(*, visit: Visit, author, forms: tuple[str, ...] | None = None) -> None:
    """The author saved these forms (or, with no `forms`, what their drafts became)."""
    drafts = Draft.objects.filter(visit=visit, author=author)
    if forms is not None:
        drafts = drafts.filter(form__in=forms)
    drafts.delete()


def drafts_as_addendum(drafts: dict[str, dict[str, list[str]]]) -> str:
    """The text of an ended visit's drafts, as one addendum, in the page's order."""
    labels = {
        "priorities": _("Their priorities today, in their words"),
        "note": _("Note"),
        "dose": _("Medication dose"),
        "days_supply": _("Days' supply"),
        "words": _("A new goal, in their own words"),
        "text": "",
    }
    parts = []
    order = ["record", "goal", "medication", *sorted(f for f in drafts if "-" in f), "addendum"]
    for form in order:
        for name, label in labels.items():
            text = "\n".join(v.strip() for v in drafts.get(form, {}).get(name, []) if v.strip())
            if form.startswith("step-") and name == "note":
                label = _("A step towards a goal")
            if text:
                parts.append(f"{label}: {text}" if label else text)
    return "\n\n".join(parts)
