"""Hostile text through every form and every search of the product, each as a role that may
use it: NUL, lone surrogates, zero-width and right-to-left marks, 10,000 characters, SQL and
HTML metacharacters, huge numbers, other digits than 0-9, dates out of range or malformed, and
whatever else Hypothesis makes. Never a server error, and never a partial write: when the
answer is a refusal (4xx, or the form again with its errors) or a page was only read, no table
has gained or lost a row.

Every URL pattern of the product is in ROUTES or in EXCLUDED (with the reason), and every one
that accepts a POST declares what it reads from the body: a new route or form cannot be left
out silently. Searches are POSTs (a name never travels in a URL): a search of its own route
lists its fields in `post=`; one sent by a "find" button of a form that also saves, in
`search=`, and is then probed apart from the save and must never write.
"""

import functools
import math
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import quote

import pytest
from django.db import connection, transaction
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clinic.forms import NameSearchForm
from clinic.staff_forms import MembershipForm, StaffCreationForm
from queues.forms import CallNextForm, CheckInForm, HandOffForm, RoomForm
from releases.forms_outgoing import (
    EmergencyReleaseForm,
    EmergencyReviewForm,
    HandOverForm,
    ReleaseRequestForm,
)
from releases.forms_registry import (
    ConsentForm,
    DeactivateForm,
    ExpiryEventForm,
    HoldForm,
    IncomingForm,
    RecategoriseForm,
    RecipientForm,
    RevocationForm,
)
from releases.models import Category, Scope
from releases.services import outgoing as outgoing_services
from reports.forms import ReportFilterForm
from tests.factories import PersonFactory, check_in
from tests.releases.factories import make_consent, make_recipient
from visits.forms_appointments import AppointmentForm
from visits.forms_goals import GoalForm, GoalStatusForm, ProgressForm
from visits.forms_merge import MergeDeclineForm, MergeFindForm, MergeProposeForm
from visits.forms_people import AccessLogFilterForm, ChangesFilterForm, PersonDetailsForm
from visits.forms_tox import ToxScreenForm
from visits.forms_visit import DirectVisitForm, HandOffNoteForm, MedicationForm, VisitEditForm
from visits.models import Visit
from visits.services.appointments import appointment_create
from visits.services.goals import goal_set
from visits.services.merge import merge_fingerprint, person_merge_propose

# Refused before any view (clinic/bad_input.py): sent on their own, or they would hide the rest.
NUL = ["\x00", "Sam\x00my"]
HOSTILE = [
    "\ud800",  # a lone surrogate: not UTF-8 at all; sent as the bytes a broken client sends
    "a\udfffb",
    "\u200b",
    "\u200b\u200c\u200d\u2060\ufeff",
    "\u202eymmaS\u202c",
    "\u200f\u200e",
    "\u0301",
    "x" * 10_000,
    "   ",
    "<script>alert(1)</script>",
    "'; DROP TABLE clinic_person; --",
    "%(name)s {{ name }} %s",
    "9" * 40,
    "-9223372036854775809",
    "1e309",
    "\u00b2",
    "\u0663\u0664",
    "0001-01-01",
    "9999-12-31",
    "0001-01-01T00:00",
    "2024-02-30",
    "99999-01-01",
    "😀" * 300,
]
texts = st.sampled_from(HOSTILE) | st.text(
    alphabet=st.characters(blacklist_characters="\x00"), max_size=300
)

# Query-string names any page might read: each page also gets hostile values in all of them.
QUERY_NAMES = ("q", "name", "page", "person", "staff", "since", "until", "day", "next", "arrival")

# Tables a request may write to even when it refuses or only reads, and why.
IGNORED_TABLES = {
    "django_session": "signing in for the example, and the idle timer's session",
    "clinic_staffsession": "which sessions a staff member has (signing in for the example)",
    "clinic_accesslog": "every read of a person's record is logged, by design",
    "clinic_lockoutevent": "a refused sign-in is recorded, by design",
    "axes_accessattempt": "a refused sign-in is counted, by design",
    "axes_accessfailurelog": "a refused sign-in is counted, by design",
    "axes_accesslog": "sign-ins are logged, by design",
    "otp_totp_totpdevice": "the set-up page keeps the unconfirmed app secret it shows, by design",
    **dict.fromkeys(
        (
            "reports_report",
            "reports_visitday",
            "reports_serviceday",
            "reports_visitwait",
            "reports_coveragerun",
            "reports_siteday",
            "reports_stale",
        ),
        "report summaries are a cache, brought up to date when a report is read",
    ),
}


@dataclass(frozen=True)
class Route:
    persona: str  # a conftest persona who may use the route
    args: tuple = ()  # keys of the world (their pk) or literal values, in the URL's order
    get: tuple | None = ()  # query-string names it reads; None: it answers no GET
    post: tuple | None = None  # body names it reads; None: it answers no POST
    # Body names its POST search reads ("find" pressed; a search saves nothing): None, none.
    search: tuple | None = None
    valid: dict = field(default_factory=dict)  # plausible values mixed in (keys of the world)


def fields(*forms, extra=()) -> tuple:
    return tuple(dict.fromkeys([*(n for f in forms for n in f.base_fields), *extra]))


ROUTES: dict[str, Route] = {
    "home": Route("front_desk"),
    "switch_site": Route("clinician", get=None, post=("site",)),
    "healthz": Route("anonymous"),
    "healthz_live": Route("anonymous"),
    "login": Route("anonymous", post=("username", "password", "next")),
    "login_code": Route("anonymous", post=("code",)),
    "account": Route("clinician", get=("set-up",)),
    "account_password": Route(
        "clinician", get=None, post=("old_password", "new_password1", "new_password2")
    ),
    "account_second_factor": Route("clinician", get=None, post=("code",)),
    "account_second_factor_remove": Route("clinician", get=None, post=("password",)),
    "lockout_log": Route("privacy_officer", get=("page",)),
    "unlock": Route("clinician", get=None, post=("password", "code", "user")),
    "session_activity": Route("clinician", get=None, post=()),
    "queues:check_in": Route(
        "front_desk",
        get=("person",),
        post=fields(CheckInForm, extra=("next",)),
        search=fields(CheckInForm),
        valid={"nonce": "nonce", "name": "Sam"},
    ),
    "queues:person_matches": Route("front_desk", get=None, post=("name",)),
    "queues:board": Route("clinician"),
    "queues:board_live": Route("clinician"),
    "queues:set_room": Route("clinician", get=None, post=fields(RoomForm, extra=("next",))),
    "queues:call_next": Route("clinician", get=None, post=fields(CallNextForm, extra=("next",))),
    "queues:close_day": Route("director", post=("revision", "confirm")),
    "queues:hand_off": Route(
        "clinician", args=("arrival",), post=fields(HandOffForm, HandOffNoteForm)
    ),
    "queues:arrival_action": Route(
        "clinician", args=("arrival", "step-out"), get=None, post=("revision", "next")
    ),
    "queues:display": Route("anonymous", args=("token",)),
    "queues:display_live": Route("anonymous", args=("token",)),
    "visits:visit_new": Route(
        "clinician",
        get=("person",),
        post=fields(DirectVisitForm, extra=("q",)),
        search=("q",),
        valid={"origin": "quick", "started_at": "now_local"},
    ),
    "visits:visit": Route("clinician", args=("visit",)),
    "visits:visit_edit": Route(
        "clinician", args=("visit",), get=None, post=fields(VisitEditForm, extra=("end",))
    ),
    "visits:medication_add": Route(
        "clinician",
        args=("visit",),
        get=None,
        post=fields(MedicationForm),
        valid={"medication": "methadone", "dose": "30 mg", "action": "prescribed"},
    ),
    "visits:addendum_add": Route("clinician", args=("visit",), get=None, post=("text",)),
    "visits:draft_save": Route(
        "clinician",
        args=("visit",),
        get=None,
        post=("form", "base", "services", "priorities", "note", "dose", "words", "text"),
        valid={"form": "record"},
    ),
    "visits:visit_join": Route("second_clinician", args=("visit",), get=None, post=()),
    "visits:visit_for_arrival": Route("clinician", args=("arrival",)),
    "visits:tox_new": Route(
        "clinician",
        args=("visit",),
        post=fields(ToxScreenForm, extra=("result_fentanyl", "result_unknown")),
        valid={"specimen": "urine", "collected_on": "today", "result_fentanyl": "positive"},
    ),
    "visits:tox_detail": Route("clinician", args=("missing",)),
    "visits:goal_add": Route(
        "clinician", args=("person",), get=None, post=fields(GoalForm, extra=("next",))
    ),
    "visits:goal_status": Route(
        "clinician", args=("goal",), get=None, post=fields(GoalStatusForm, extra=("next",))
    ),
    "visits:goal_progress": Route(
        "clinician", args=("goal",), get=None, post=fields(ProgressForm, extra=("next",))
    ),
    "visits:appointments": Route("clinician", get=("day",)),
    "visits:appointment_new": Route(
        "clinician",
        get=("person",),
        post=fields(AppointmentForm),
        search=("q",),
        valid={"person": "person"},
    ),
    "visits:appointment_edit": Route(
        "clinician", args=("appointment",), post=fields(AppointmentForm)
    ),
    "visits:appointment_cancel": Route(
        "clinician", args=("appointment",), get=None, post=("next",)
    ),
    "visits:reach_out": Route("clinician"),
    "visits:reach_out_dismiss": Route("clinician", args=("person",), get=None, post=("next",)),
    "visits:person": Route("clinician", args=("person",)),
    "visits:person_edit": Route(
        "front_desk", args=("person",), post=fields(PersonDetailsForm), valid={"name": "Sam"}
    ),
    "visits:access_log": Route(
        "privacy_officer",
        get=(*AccessLogFilterForm.base_fields, "page"),
        post=fields(NameSearchForm),
    ),
    "visits:changes": Route("privacy_officer", get=(*ChangesFilterForm.base_fields, "page")),
    "visits:merge_find": Route("clinician", args=("person",), post=fields(MergeFindForm)),
    "visits:merge_propose": Route(
        "clinician",
        args=("person", "other"),
        post=fields(MergeProposeForm, extra=("take_name", "take_phone")),
        valid={"nonce": "nonce", "seen": "seen"},
    ),
    "visits:merges": Route("privacy_officer"),
    "visits:merge": Route("privacy_officer", args=("merge",)),
    "visits:merge_approve": Route("privacy_officer", args=("merge",), get=None, post=()),
    "visits:merge_decline": Route(
        "privacy_officer", args=("merge",), get=None, post=fields(MergeDeclineForm)
    ),
    "releases:home": Route("privacy_officer", post=("q",)),
    "releases:recipients": Route("privacy_officer"),
    "releases:recipient_new": Route(
        "privacy_officer", post=fields(RecipientForm), valid={"category": "treatment_provider"}
    ),
    "releases:recipient": Route("privacy_officer", args=("recipient",)),
    "releases:recipient_deactivate": Route(
        "privacy_officer", args=("recipient",), get=None, post=fields(DeactivateForm)
    ),
    "releases:recipient_recategorise": Route(
        "privacy_officer", args=("recipient",), get=None, post=fields(RecategoriseForm)
    ),
    "releases:consent_hold": Route("privacy_officer", args=("person",), post=fields(HoldForm)),
    "releases:person_consents": Route("privacy_officer", args=("person",)),
    "releases:consent_new": Route(
        "privacy_officer",
        args=("person",),
        post=fields(ConsentForm),
        valid={"nonce": "nonce", "recipients": "recipient", "scope": "attendance"},
    ),
    "releases:consent": Route("privacy_officer", args=("consent",)),
    "releases:consent_print": Route("privacy_officer", args=("consent",)),
    "releases:consent_scan": Route("privacy_officer", args=("consent",)),
    "releases:consent_revoke": Route(
        "privacy_officer", args=("consent",), get=None, post=fields(RevocationForm)
    ),
    "releases:consent_expiry_event": Route(
        "privacy_officer", args=("consent",), get=None, post=fields(ExpiryEventForm)
    ),
    "releases:incoming_list": Route("privacy_officer"),
    "releases:incoming_new": Route("privacy_officer", post=fields(IncomingForm)),
    "releases:incoming": Route("privacy_officer", args=("missing",)),
    "releases:incoming_reply": Route("privacy_officer", args=("missing",)),
    "releases:outgoing_new": Route(
        "clinician",
        args=("person",),
        post=fields(ReleaseRequestForm),
        valid={"recipient": "recipient", "purpose": "attendance", "scope": "attendance"},
    ),
    "releases:outgoing_emergency": Route(
        "clinician",
        args=("person",),
        post=fields(EmergencyReleaseForm),
        valid={"recipient": "recipient", "scope": "attendance"},
    ),
    "releases:emergency_detail": Route("privacy_officer", args=("emergency",)),
    "releases:emergency_review": Route(
        "privacy_officer",
        args=("emergency",),
        get=None,
        post=fields(EmergencyReviewForm),
        valid={"finding": "appropriate"},
    ),
    "releases:emergency_reviews": Route("director"),
    "releases:outgoing_list": Route("privacy_officer"),
    "releases:outgoing_detail": Route("privacy_officer", args=("release",)),
    "releases:outgoing_approve": Route("privacy_officer", args=("release",), get=None, post=()),
    "releases:outgoing_generate": Route("clinician", args=("release",), get=None, post=()),
    "releases:packet_view": Route("clinician", args=("missing",)),
    "releases:packet_pdf": Route("clinician", args=("missing",)),
    "releases:packet_hand_over": Route(
        "clinician", args=("missing",), post=fields(HandOverForm), valid={"how": "in_person"}
    ),
    "releases:accounting": Route("privacy_officer", args=("person",)),
    "releases:accounting_print": Route("privacy_officer", args=("person",)),
    "reports:dashboard": Route("director", get=fields(ReportFilterForm)),
    "reports:export": Route("director", args=("summary",), get=fields(ReportFilterForm)),
    "reports:outreach": Route("clinician", get=("page", "sort")),
    "staff:list": Route("director"),
    "staff:new": Route(
        "director", post=fields(StaffCreationForm), valid={"roles": "clinician_role"}
    ),
    "staff:member": Route("director", args=("staff",)),
    "staff:roles": Route("director", args=("staff",), get=None, post=fields(MembershipForm)),
    "staff:password": Route(
        "director", args=("staff",), get=None, post=("new_password1", "new_password2")
    ),
    "staff:active": Route("director", args=("staff",), get=None, post=("active",)),
    "staff:unlock": Route("director", args=("staff",), get=None, post=("from",)),
}

EXCLUDED = {
    "csp_report": "reads only a JSON violation report, never a form; its refusals of other "
    "types, sizes and malformed reports: tests/clinic/test_csp.py",
    "logout": "Django's own sign-out: reads nothing from the request",
    "account_sign_out_everywhere": "reads nothing from the request; ends the example's session",
    "session_lock": "reads nothing from the request; ends the example's session",
    "staff:remove": "reads nothing from the request (the account comes from the URL)",
    "staff:second_factor_reset": "reads nothing from the request (the account from the URL)",
}


def _product_routes() -> list[str]:
    names = []

    def walk(patterns, namespace=None):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                if pattern.namespace == "admin":
                    continue  # Django's admin; NUL in its searches: tests/clinic/test_bad_input
                walk(pattern.url_patterns, pattern.namespace or namespace)
            elif isinstance(pattern, URLPattern):
                names.append(f"{namespace}:{pattern.name}" if namespace else pattern.name)

    walk(get_resolver().url_patterns)
    return names


def test_every_route_is_either_probed_or_excluded_with_a_reason():
    routes = set(_product_routes())
    assert routes - ROUTES.keys() - EXCLUDED.keys() == set(), "add them to ROUTES or EXCLUDED"
    assert (ROUTES.keys() | EXCLUDED.keys()) - routes == set(), "no such routes any more"
    assert not ROUTES.keys() & EXCLUDED.keys()


# --- the world the requests act on -------------------------------------------------------------


@pytest.fixture
def world(site, service, room, front_desk, clinician, second_clinician, director, privacy_officer):
    from clinic.models import Membership

    person = PersonFactory(site=site, name="Sam Rivera")
    other = PersonFactory(site=site, name="Sammy")
    arrival = check_in(site=site, by=front_desk, person=other)
    visit = Visit.objects.create(
        site=site, person=person, started_at=timezone.now(), opened_by=clinician
    )
    goal = goal_set(person=person, words="Keep my housing", by=clinician)
    appointment = appointment_create(
        site=site, by=clinician, person=person, at=timezone.now() + timedelta(days=3)
    )
    recipient = make_recipient(
        site=site, category=Category.TREATMENT_PROVIDER, organisation="Eastside"
    )
    consent = make_consent(
        person=person, recipients=[recipient], purposes=["attendance"], scope=[Scope.ATTENDANCE]
    )
    release = outgoing_services.release_request_create(
        site=site,
        person=person,
        recipient=recipient,
        purpose="attendance",
        scope=[Scope.ATTENDANCE],
        by=clinician,
    )
    emergency = outgoing_services.emergency_release(
        site=site,
        person=person,
        recipient=recipient,
        personnel_name="Dr. Ana Ruiz",
        reason="Unresponsive, brought to the ED",
        scope=[Scope.ATTENDANCE],
        by=clinician,
    )
    kept, duplicate = (
        PersonFactory(site=site, name="Samuel"),
        PersonFactory(site=site, name="Sam R"),
    )
    merge = person_merge_propose(
        site=site,
        kept=kept,
        duplicate=duplicate,
        by=clinician,
        reason="Same birth date",
        seen=merge_fingerprint(kept, duplicate),
        nonce=uuid.uuid4(),
    )
    objects = {
        "person": person,
        "other": other,
        "arrival": arrival,
        "visit": visit,
        "goal": goal,
        "appointment": appointment,
        "recipient": recipient,
        "consent": consent,
        "release": release,
        "emergency": emergency,
        "merge": merge,
        "staff": second_clinician,
        "clinician_role": Membership.objects.get(user=clinician).roles.first(),
    }
    literal = {
        "token": site.display_token,
        "missing": 2_000_000_000,
        "nonce": str(uuid.uuid4()),
        "seen": merge_fingerprint(person, other),
        "now_local": timezone.localtime(timezone.now(), site.tz).strftime("%Y-%m-%dT%H:%M"),
        "today": timezone.localdate(timezone.now(), site.tz).isoformat(),
    }
    return {key: getattr(value, "pk", value) for key, value in objects.items()} | literal


# --- sending -----------------------------------------------------------------------------------


def _encode(values: dict) -> str:
    # By hand: a lone surrogate cannot be encoded as UTF-8, so it goes as the bytes a broken
    # client would send (the server decodes what it cannot read as U+FFFD).
    return "&".join(
        f"{quote(name)}={quote(str(value).encode('utf-8', 'surrogatepass'), safe='')}"
        for name, value in values.items()
    )


@functools.cache
def _tables(vendor: str) -> list[str]:
    names = set(connection.introspection.table_names())
    return sorted(names - IGNORED_TABLES.keys() - {"django_migrations"})


def _table_counts() -> dict[str, int]:
    tables = _tables(connection.vendor)
    quoted = [connection.ops.quote_name(t) for t in tables]
    with connection.cursor() as cursor:
        # Table names from the database's own catalogue, quoted: nothing typed reaches this.
        cursor.execute("SELECT " + ", ".join(f"(SELECT COUNT(*) FROM {q})" for q in quoted))  # noqa: S608
        return dict(zip(tables, cursor.fetchone(), strict=True))


def _refused(response, method: str) -> bool:
    if response.status_code >= 400 or method in ("GET", "SEARCH"):
        return True
    if response.status_code != 200:
        return False  # a redirect after a POST: it was done
    context = response.context or {}
    if hasattr(context, "flatten"):  # one template rendered: a RequestContext
        shown = list(context.flatten().values())
    else:  # several: a ContextList
        shown = [context[key] for key in context.keys()]  # noqa: SIM118
    return any(getattr(form, "errors", None) for form in shown if hasattr(form, "is_bound"))


def _send(client, request, name: str, route: Route, world: dict, method: str, values: dict):
    url = reverse(name, args=[world.get(arg, arg) for arg in route.args])
    with transaction.atomic():
        if route.persona != "anonymous":
            client.force_login(request.getfixturevalue(route.persona))
        before = _table_counts()
        if method == "GET":
            response = client.get(f"{url}?{_encode(values)}")
        else:
            if method == "SEARCH":
                values = {**values, "find": "1"}
            response = client.post(
                url, _encode(values), content_type="application/x-www-form-urlencoded"
            )
        assert response.status_code < 500, (name, method)
        if _refused(response, method):
            after = _table_counts()
            changed = {t: (before[t], after[t]) for t in before if before[t] != after[t]}
            assert not changed, (name, method, response.status_code, changed)
        transaction.set_rollback(True)
    return response


def _examples(route: Route, method: str) -> tuple[tuple, st.SearchStrategy]:
    names = getattr(route, method.lower()) or ()
    if method == "GET":
        names = tuple(dict.fromkeys([*names, *QUERY_NAMES]))
    return names, st.fixed_dictionaries(
        {n: (st.just(route.valid[n]) | texts) if n in route.valid else texts for n in names}
    )


PROBES = [
    (name, method)
    for name, route in ROUTES.items()
    for method, names in (("GET", route.get), ("POST", route.post), ("SEARCH", route.search))
    if names is not None
]


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "method"), PROBES, ids=[f"{m} {n}" for n, m in PROBES])
def test_hostile_input_never_breaks_a_page_nor_writes_half(client, request, world, name, method):
    route = ROUTES[name]
    names, strategy = _examples(route, method)

    def plausible(values):
        return {k: world.get(v, v) if isinstance(v, str) else v for k, v in values.items()}

    # A NUL in every field; then every hostile value at least once, a different one in each
    # field of a request (fewer requests)...
    _send(client, request, name, route, world, method, dict.fromkeys(names, NUL[len(names) % 2]))
    for k in range(math.ceil(len(HOSTILE) / max(1, len(names)))):
        values = {n: HOSTILE[(k * len(names) + i) % len(HOSTILE)] for i, n in enumerate(names)}
        _send(client, request, name, route, world, method, values)

    # ...then mixtures, plausible values beside hostile ones, where the route reads anything.
    if not getattr(route, method.lower()):
        return

    @settings(
        max_examples=2,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(values=strategy)
    def mixture(values):
        _send(client, request, name, route, world, method, plausible(values))

    mixture()


@pytest.mark.django_db
@pytest.mark.parametrize("name", sorted(ROUTES))
def test_a_route_that_takes_a_post_says_what_it_reads(client, request, world, name):
    """Catches a view that started to accept POST (a new form) without its fields here."""
    route = ROUTES[name]
    if route.post is not None:
        return
    response = _send(client, request, name, route, world, "POST", {})
    assert response.status_code in (302, 403, 404, 405), (name, response.status_code)
