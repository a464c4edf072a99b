"""Reads of the history of changes (clinic/history.py), in plain words for the privacy officer.

A change is shown as: when (at the site's time), who (the staff member, or how it was made
when nobody signed in made it), which record, and each field with its label and its value
before and after (choices by their labels, people and staff by name, dates as dates).
Clinical content: the views write an access-log row for every person shown, first.
"""

import dataclasses
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.contrib.auth import get_user_model
from django.core.paginator import Page, Paginator
from django.db import models
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from clinic import history
from clinic.models import ChangeHistory, Membership, Person, PersonMerge, Service, Site
from clinic.people import with_merged
from releases.models import Recipient, Scope

PERSON_HISTORY_LIMIT = 20
CHANGES_PAGE_SIZE = 50

RECORD_LABELS = {
    "clinic_person": gettext_lazy("Person's details"),
    "clinic_personmerge": gettext_lazy("Merge of two records"),
    "visits_visit": gettext_lazy("Visit"),
    "visits_visitparticipant": gettext_lazy("Who took part in a visit"),
    "visits_visit_services": gettext_lazy("Service delivered at a visit"),
    "visits_addendum": gettext_lazy("Addendum to a visit"),
    "visits_medicationevent": gettext_lazy("Medication"),
    "visits_toxscreen": gettext_lazy("Tox-screen conversation"),
    "visits_toxresult": gettext_lazy("Tox-screen result"),
    "visits_goal": gettext_lazy("Goal"),
    "visits_goalprogress": gettext_lazy("Progress on a goal"),
    "visits_appointment": gettext_lazy("Appointment"),
    "releases_consent": gettext_lazy("Consent"),
    "releases_consentpurpose": gettext_lazy("Purpose named in a consent"),
    "releases_consent_recipients": gettext_lazy("Recipient named in a consent"),
    "releases_revocation": gettext_lazy("Revocation of a consent"),
    "releases_expiryeventrecord": gettext_lazy("A consent's expiry event"),
}
# Labels for columns whose model field says too little (or nothing, on many-to-many tables).
FIELD_LABELS = {
    ("visits_visit_services", "service_id"): gettext_lazy("Service"),
    ("releases_consent_recipients", "recipient_id"): gettext_lazy("Recipient"),
    ("releases_consent", "sealed"): gettext_lazy("Signed and sealed"),
    ("releases_consent", "signed_by"): gettext_lazy("Signed by"),
    ("visits_visitparticipant", "user_id"): gettext_lazy("Staff member"),
}
# Columns not shown: the site is the page's own; a row's link to its parent says nothing new.
HIDDEN = {"site_id"}
# ... and, of one table: a merge's copy of both records' details as proposed (the people's own
# history has them) and its form's nonce.
HIDDEN_OF = {("clinic_personmerge", "snapshot"), ("clinic_personmerge", "nonce")}
# JSON lists of choices, shown by their labels.
LIST_CHOICES = {("releases_consent", "scope"): Scope}
MOVED_LABELS = {
    "queue_arrival": gettext_lazy("Arrivals"),
    "visits_visit": gettext_lazy("Visits"),
    "visits_goal": gettext_lazy("Goals"),
    "visits_appointment": gettext_lazy("Appointments"),
    "releases_releaserequest": gettext_lazy("Release requests"),
    "releases_incomingrequest": gettext_lazy("Requests from outside"),
}


@dataclass(frozen=True)
class FieldChange:
    label: str
    before: str | None  # None: empty
    after: str | None
    long: bool  # long text: the template lets it wrap in full


@dataclass(frozen=True)
class Change:
    pk: int
    at: datetime
    operation: str
    operation_label: str
    record: str
    row_id: int
    who: str
    who_detail: str  # the username, or how the change was made
    person_id: int | None
    person: Person | None  # None also when the person's row is gone
    fields: list[FieldChange]


@dataclass(frozen=True)
class MergeLine:
    """One merge (or proposal) of this person's records, in words, for their history."""

    merge: PersonMerge
    summary: str


@dataclass(frozen=True)
class PersonHistory:
    changes: list[Change]
    more: bool  # older changes exist beyond these
    merges: list[MergeLine] = dataclasses.field(default_factory=list)


def person_history(
    *, person: Person, limit: int = PERSON_HISTORY_LIMIT, ids: list[int] | None = None
) -> PersonHistory:
    """The newest `limit` changes concerning the person and the records merged into theirs
    (their history stays with them), and every merge involving any of those records."""
    ids = ids or with_merged(person)
    entries = list(
        ChangeHistory.objects.filter(person_id__in=ids, site_id=person.site_id).order_by(
            "-at", "-pk"
        )[: limit + 1]
    )
    return PersonHistory(
        changes=describe(entries[:limit], site=person.site),
        more=len(entries) > limit,
        merges=merge_lines(person=person, ids=ids),
    )


def merge_lines(*, person: Person, ids: list[int]) -> list[MergeLine]:
    merges = (
        PersonMerge.objects.filter(Q(kept_id__in=ids) | Q(duplicate_id__in=ids))
        .filter(site_id=person.site_id)
        .select_related("kept", "duplicate", "proposed_by", "decided_by")
        .order_by("-proposed_at", "-pk")
    )
    return [MergeLine(merge=m, summary=_merge_summary(m, person)) for m in merges]


def _merge_summary(merge: PersonMerge, person: Person) -> str:
    names = {
        "kept": merge.kept.name,
        "k": merge.kept_id,
        "duplicate": merge.duplicate.name,
        "d": merge.duplicate_id,
    }
    if merge.status == PersonMerge.Status.APPROVED:
        if merge.kept_id == person.pk:
            return _("%(duplicate)s (record #%(d)s) was merged into this record.") % names
        if merge.duplicate_id == person.pk:
            return _("This record was merged into %(kept)s (record #%(k)s).") % names
        return _("%(duplicate)s (record #%(d)s) was merged into %(kept)s (record #%(k)s).") % names
    if merge.status == PersonMerge.Status.DECLINED:
        return (
            _("Declined: merging %(duplicate)s (record #%(d)s) into %(kept)s (record #%(k)s).")
            % names
        )
    return (
        _(
            "Waiting for the privacy officer: merging %(duplicate)s (record #%(d)s) into "
            "%(kept)s (record #%(k)s)."
        )
        % names
    )


def history_staff_choices(*, site: Site) -> QuerySet:
    """Staff who work at the site, and anyone who ever changed something there."""
    User = get_user_model()
    return (
        User.objects.filter(
            Q(pk__in=Membership.objects.filter(site=site).values("user_id"))
            | Q(
                pk__in=ChangeHistory.objects.filter(site=site, actor__isnull=False).values(
                    "actor_id"
                )
            )
        )
        .distinct()
        .order_by("first_name", "last_name", "username")
    )


def changes_page(
    *,
    site: Site,
    person: Person | None = None,
    user=None,
    since: date | None = None,
    until: date | None = None,
    page: str | int | None = 1,
) -> Page:
    """One page of the site's changes, newest first, optionally about one person, by one staff
    member, and/or from `since` to `until` (days at the site, both included). Its object_list
    is described Changes; `people` the people they concern (and the one asked about)."""
    entries = ChangeHistory.objects.filter(site_id=site.pk)
    if person is not None:
        entries = entries.filter(person_id__in=with_merged(person))
    if user is not None:
        entries = entries.filter(actor_id=user.pk)
    if since is not None:
        entries = entries.filter(at__gte=datetime.combine(since, time(), tzinfo=site.tz))
    if until is not None:
        next_day = datetime.combine(until + timedelta(days=1), time(), tzinfo=site.tz)
        entries = entries.filter(at__lt=next_day)
    result = Paginator(entries.order_by("-at", "-pk"), CHANGES_PAGE_SIZE).get_page(page)
    result.object_list = describe(list(result.object_list), site=site)
    people = {c.person.pk: c.person for c in result.object_list if c.person is not None}
    if person is not None:
        people[person.pk] = person
    result.people = list(people.values())
    return result


# --- in plain words --------------------------------------------------------------------------


def describe(entries: list[ChangeHistory], *, site: Site) -> list[Change]:
    decoded = [(entry, history.decoded_changes(entry)) for entry in entries]
    names = _names(decoded, site=site)
    users = names.get(get_user_model(), {})
    people = names.get(Person, {})
    changes = []
    for entry, pairs in decoded:
        model = history.audited_model(entry.table_name)
        fields = {f.column: f for f in model._meta.concrete_fields} if model else {}
        shown = []
        for column, (before, after) in pairs.items():
            if column in HIDDEN or (entry.table_name, column) in HIDDEN_OF:
                continue
            if entry.operation != "update" and _blank(before) and _blank(after):
                continue  # an empty field of a row added or removed
            field = fields.get(column)
            shown.append(
                FieldChange(
                    label=_label(entry.table_name, column, field),
                    before=_value(entry.table_name, column, field, before, site, names),
                    after=_value(entry.table_name, column, field, after, site, names),
                    long=any(isinstance(v, str) and len(v) > 80 for v in (before, after)),
                )
            )
        who, detail = _who(entry, users)
        changes.append(
            Change(
                pk=entry.pk,
                at=entry.at,
                operation=entry.operation,
                operation_label=entry.get_operation_display(),
                record=str(RECORD_LABELS.get(entry.table_name, entry.table_name)),
                row_id=entry.row_id,
                who=who,
                who_detail=detail,
                person_id=entry.person_id,
                person=people.get(entry.person_id),
                fields=shown,
            )
        )
    return changes


def _blank(value) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _label(table, column, field) -> str:
    if (table, column) in FIELD_LABELS:
        return str(FIELD_LABELS[(table, column)])
    if field is None:
        return column
    return capfirst(str(field.verbose_name))


def _who(entry, users) -> tuple[str, str]:
    user = users.get(entry.actor_id)
    if user is not None:
        return user.get_full_name() or user.get_username(), user.get_username()
    if entry.actor_id is not None:
        return _("Staff account #%(id)s") % {"id": entry.actor_id}, ""
    if entry.via == "web":
        return _("Nobody signed in"), _("through the application")
    if entry.via:
        return _("No staff member named"), _("command: %(name)s") % {"name": entry.via}
    return _("Not recorded"), _("changed outside the application")


def _names(decoded, *, site) -> dict:
    """{model: {id: object}} for every staff account, person, service and recipient the
    entries name, in one query per model. People only from this site."""
    User = get_user_model()
    named = {User, Person, Service, Recipient}  # others are shown by their id
    wanted: dict = {User: set(), Person: set()}
    for entry, pairs in decoded:
        if entry.actor_id is not None:
            wanted[User].add(entry.actor_id)
        if entry.person_id is not None:
            wanted[Person].add(entry.person_id)
        model = history.audited_model(entry.table_name)
        fields = {f.column: f for f in model._meta.concrete_fields} if model else {}
        for column, values in pairs.items():
            field = fields.get(column)
            if field is not None and field.is_relation and field.related_model in named:
                wanted.setdefault(field.related_model, set()).update(
                    v for v in values if v is not None
                )
    names = {}
    for model, ids in wanted.items():
        objects = model.objects.filter(pk__in=ids)
        if model is not User:  # people, services and recipients of this site only
            objects = objects.filter(site=site)
        names[model] = objects.in_bulk() if ids else {}
    return names


def _named(obj) -> str:
    if isinstance(obj, get_user_model()):
        return obj.get_full_name() or obj.get_username()
    return str(obj)


def _value(table, column, field, value, site, names) -> str | None:
    if _blank(value):
        return None
    if column in history.OPAQUE.get(table, ()):
        return _("captured (not shown here)")
    if (table, column) in LIST_CHOICES:
        labels = dict(LIST_CHOICES[(table, column)].choices)
        return ", ".join(str(labels.get(v, v)) for v in value)
    if (table, column) == ("clinic_personmerge", "moved") and isinstance(value, dict):
        return ", ".join(
            f"{MOVED_LABELS.get(t, t)}: {len(ids)}" for t, ids in value.items() if ids
        ) or _("Nothing")
    if (table, column) == ("clinic_personmerge", "take_from_duplicate"):
        return ", ".join(str(capfirst(Person._meta.get_field(f).verbose_name)) for f in value)
    if field is None:
        return str(value)
    if field.is_relation:
        obj = names.get(field.related_model, {}).get(value)
        return _named(obj) if obj is not None else f"#{value}"
    if field.choices:
        return str(dict(field.flatchoices).get(value, value))
    if isinstance(field, models.BooleanField):
        return _("Yes") if value else _("No")
    if isinstance(field, models.DateTimeField):
        return date_format(timezone.localtime(value, site.tz), "j M Y, H:i")
    if isinstance(field, models.DateField):
        return date_format(value, "j M Y")
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)
