from clinic.language import highlight, language_check
from visits.models import Visit
from visits.selectors.goals import person_goals
from visits.selectors.tox import visit_tox_screens


def visit_for_site(*, site, pk: int) -> Visit | None:
    return (
        Visit.objects.filter(pk=pk, site=site)
        .select_related("site", "person", "arrival", "opened_by")
        .first()
    )


def visit_page(*, visit: Visit, user) -> dict:
    """Everything the visit page shows, with the language check of the note and addenda."""
    participants = list(visit.participants.select_related("user").order_by("joined_at", "pk"))
    addenda = list(visit.addenda.select_related("author"))
    for addendum in addenda:
        addendum.highlighted = highlight(addendum.text)
        addendum.findings = language_check(addendum.text)
    return {
        "visit": visit,
        "participants": participants,
        "is_participant": any(p.user_id == user.pk for p in participants),
        "services_delivered": list(visit.services.all()),
        "medications": list(visit.medications.select_related("recorded_by")),
        "addenda": addenda,
        "note_highlighted": highlight(visit.note),
        "note_findings": language_check(visit.note),
        "goals": person_goals(person=visit.person) if visit.person_id else [],
        "tox_screens": visit_tox_screens(visit=visit),
        "hand_off_notes": list(visit.hand_off_notes.select_related("event__by", "event__to_staff")),
    }
