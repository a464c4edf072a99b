"""The access log: every opening of a clinical record is written down (who, whom, what, when).

The privacy officer reads it. Views call `access_log_record` when they show clinical data;
it runs in the request's own transaction, so a page that failed to log was not shown.
"""

from clinic.models import AccessLog, Person, Site


def access_log_record(
    *, user, site: Site, what: str, person: Person | None = None, obj=None
) -> AccessLog:
    return AccessLog.objects.create(
        user=user,
        site=site,
        person=person,
        what=what,
        object_id=str(obj.pk) if obj is not None else "",
    )


def access_log_record_many(*, user, site: Site, what: str, people) -> None:
    """One row per person shown on a list page (e.g. the outreach list), in one insert."""
    AccessLog.objects.bulk_create(
        AccessLog(user=user, site=site, person=person, what=what) for person in people
    )
