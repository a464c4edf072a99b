"""Every page under the Content-Security-Policy, in headless Chromium on a real daphne process.

Each role signs in through the sign-in page (the director with an authenticator code) and opens
every page its work takes it to; the operator opens the admin. An init script records each
`securitypolicyviolation` event the moment it fires, the console is read for CSP errors, and
the server's log for the reports the browser sent to /csp-report/. None may appear.

The pages come from the URL resolver itself: every named route is either visited here or listed
in NOT_PAGES with the reason, and each of those reasons is checked (a POST-only route answers
GET with 405, a data route answers something other than HTML). A route added later fails this
test until it is visited or excluded with a reason.
"""

import json
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import URLResolver, get_resolver, reverse
from django.utils import timezone
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from clinic.models import LockoutEvent, Person, Shift
from queues import services as queue
from queues.models import Arrival
from releases.models import (
    Consent,
    EmergencyRelease,
    IncomingRequest,
    ReleasePacket,
    ReleaseRequest,
)
from releases.services.outgoing import packet_generate, release_approve
from tests.browser.conftest import launched_chromium
from tests.browser.test_live_queue import DESK
from tests.factories import UserFactory, check_in
from tests.visits.merging import propose, two_records
from visits.models import Appointment, ToxScreen, Visit

try:
    from playwright.sync_api import expect
except ImportError:  # the "browser" marker skips (or, in CI, fails) these tests with a reason
    expect = None

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Routes that are not pages a person opens, each with its reason; the test checks the reason.
POST_ONLY = "POST only: answers GET with 405"
DATA = "data for a page (JSON, CSV, PDF, text, script): not HTML"
NOT_PAGES = {
    "switch_site": POST_ONLY,
    "csp_report": POST_ONLY,
    "logout": POST_ONLY,
    "account_password": POST_ONLY,
    "account_sign_out_everywhere": POST_ONLY,
    "account_second_factor": POST_ONLY,
    "account_second_factor_remove": POST_ONLY,
    "unlock": POST_ONLY,
    "session_activity": POST_ONLY,
    "session_lock": POST_ONLY,
    "queues:set_room": POST_ONLY,
    "queues:call_next": POST_ONLY,
    "queues:arrival_action": POST_ONLY,
    "visits:visit_edit": POST_ONLY,
    "visits:visit_join": POST_ONLY,
    "visits:medication_add": POST_ONLY,
    "visits:addendum_add": POST_ONLY,
    "visits:draft_save": POST_ONLY,
    "visits:goal_add": POST_ONLY,
    "visits:goal_status": POST_ONLY,
    "visits:goal_progress": POST_ONLY,
    "visits:appointment_cancel": POST_ONLY,
    "visits:reach_out_dismiss": POST_ONLY,
    "visits:merge_approve": POST_ONLY,
    "visits:merge_decline": POST_ONLY,
    "releases:recipient_deactivate": POST_ONLY,
    "releases:recipient_recategorise": POST_ONLY,
    "releases:consent_revoke": POST_ONLY,
    "releases:consent_expiry_event": POST_ONLY,
    "releases:outgoing_approve": POST_ONLY,
    "releases:outgoing_generate": POST_ONLY,
    "releases:emergency_review": POST_ONLY,
    "staff:roles": POST_ONLY,
    "staff:password": POST_ONLY,
    "staff:remove": POST_ONLY,
    "staff:active": POST_ONLY,
    "staff:unlock": POST_ONLY,
    "staff:second_factor_reset": POST_ONLY,
    "admin:logout": "a redirect (307) to the product's sign-out, which is POST only",
    "healthz": DATA,
    "healthz_live": DATA,
    "queues:board_live": DATA,
    "queues:display_live": DATA,
    "releases:packet_pdf": DATA,
    "reports:export": DATA,
    "admin:jsi18n": DATA,
    # Inserted into the check-in page as the name is typed: the test types a name there.
    "queues:person_matches": "a fragment of the check-in page, exercised by typing a name",
    # The admin's select2 data for autocomplete fields; it needs a field to complete.
    "admin:autocomplete": "JSON for the admin's autocomplete widgets",
    "admin:view_on_site": "a redirect to the product's own page for an object",
    # Served with a policy of its own, stricter still: default-src 'none'; sandbox.
    "releases:consent_scan": "the scanned signed form itself (a file)",
}
# Pages that exist but refuse everyone, and show the refusal page instead (still under the policy).
REFUSED = {"admin:auth_user_delete": 403}  # accounts are removed on the staff pages, not deleted
CSP_CONSOLE = ("Content Security Policy", "Content-Security-Policy")
INIT_SCRIPT = """
document.addEventListener("securitypolicyviolation", function (e) {
  window.__cspViolation({
    page: location.pathname, directive: e.effectiveDirective, blocked: e.blockedURI,
    source: e.sourceFile, line: e.lineNumber, sample: e.sample
  });
});
// Printing is not for a headless browser: count the presses instead.
window.print = function () { window.__printed = (window.__printed || 0) + 1; };
"""


def named_routes() -> dict[str, str]:
    """Every named route of the project: name -> its pattern, from the resolver."""
    routes, unnamed = {}, []

    def walk(patterns, namespace, prefix):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                ns = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
                walk(pattern.url_patterns, ns, prefix + str(pattern.pattern))
            elif pattern.name:
                routes[namespace + pattern.name] = prefix + str(pattern.pattern)
            else:
                unnamed.append(prefix + str(pattern.pattern))

    walk(get_resolver().url_patterns, "", "")
    # Only the admin has routes without a name: its redirects and its catch-all.
    assert unnamed and all(p.startswith("admin/") for p in unnamed), unnamed
    return routes


@dataclass
class Role:
    username: str
    password: str
    pages: dict[str, str] = field(default_factory=dict)  # route name -> path
    code_key: tuple | None = None  # the authenticator app's key, for a second factor


def password_for(user) -> str:
    password = f"pw-{uuid.uuid4()}"
    user.set_password(password)
    user.save()
    return password


@pytest.fixture
def clinic(site, service, room, front_desk, clinician, director, privacy_officer):
    """A clinic with something on every page, and each role's pages; all ORM work is done
    here, before Chromium starts."""
    records = two_records(
        site=site, front_desk=front_desk, clinician=clinician, privacy_officer=privacy_officer
    )
    kept, duplicate = records.kept, records.duplicate
    merge = propose(records, by=clinician)
    check_in(site=site, by=front_desk, name="Marcus Bell", service=service)
    called = check_in(site=site, by=front_desk, name="Jess Ode", service=service)
    queue.arrival_call(arrival=called, by=clinician, revision=None)
    visit = Visit.objects.filter(person=duplicate).order_by("pk").first()
    tox = ToxScreen.objects.filter(visit__person=duplicate).first()
    appointment = Appointment.objects.filter(person=duplicate).first()
    consent = Consent.objects.filter(person=duplicate).first()
    incoming = IncomingRequest.objects.first()
    emergency = EmergencyRelease.objects.first()
    request = ReleaseRequest.objects.filter(person=duplicate).first()
    release_approve(request=request, by=privacy_officer)
    packet = packet_generate(request=request, by=privacy_officer)
    assert ReleasePacket.objects.filter(pk=packet.pk).exists()
    LockoutEvent.objects.create(kind=LockoutEvent.Kind.LOCKED, user=front_desk)
    arrival = Arrival.objects.filter(person=duplicate).order_by("pk").first()

    start = timezone.now() - timedelta(hours=3)
    Shift.objects.create(
        site=site, user=clinician, starts_at=start, ends_at=start + timedelta(hours=2)
    )
    director.is_staff = True
    director.save()
    device = TOTPDevice.objects.create(user=director, name="app", confirmed=True)
    operator = UserFactory(username="root", is_superuser=True, is_staff=True)
    person = Person.objects.get(pk=kept.pk)

    def r(name, *args):
        return name, reverse(name, args=args)

    roles = {
        "anonymous": Role("", "", dict([r("login"), r("queues:display", site.display_token)])),
        "front_desk": Role(
            "robin",
            password_for(front_desk),
            dict(
                [
                    r("home"),
                    r("queues:check_in"),
                    r("queues:close_day"),
                    r("visits:appointments"),
                    r("visits:appointment_new"),
                    r("visits:appointment_edit", appointment.pk),
                    r("releases:consent_hold", person.pk),
                    r("account"),
                ]
            ),
        ),
        "clinician": Role(
            "alex",
            password_for(clinician),
            dict(
                [
                    r("queues:board"),
                    r("queues:hand_off", called.pk),
                    r("visits:visit_new"),
                    r("visits:visit", visit.pk),
                    r("visits:visit_for_arrival", arrival.pk),
                    r("visits:tox_new", visit.pk),
                    r("visits:tox_detail", tox.pk),
                    r("visits:reach_out"),
                    r("reports:outreach"),
                    r("visits:person", duplicate.pk),
                    r("visits:person_edit", duplicate.pk),
                    r("visits:merge_find", kept.pk),
                    r("visits:merge_propose", kept.pk, duplicate.pk),
                    r("visits:merge", merge.pk),
                    r("releases:outgoing_new", duplicate.pk),
                    r("releases:outgoing_emergency", duplicate.pk),
                    r("releases:outgoing_detail", request.pk),
                    r("releases:packet_view", packet.pk),
                    r("releases:packet_hand_over", packet.pk),
                ]
            ),
        ),
        "director": Role(
            "dana",
            password_for(director),
            dict(
                [
                    r("reports:dashboard"),
                    r("staff:list"),
                    r("staff:new"),
                    r("staff:member", front_desk.pk),
                    r("login_code"),  # on the way in: the authenticator code
                ]
            ),
            code_key=(device.bin_key, device.step, device.t0, device.digits, device.drift),
        ),
        "privacy_officer": Role(
            "priya",
            password_for(privacy_officer),
            dict(
                [
                    r("releases:home"),
                    r("releases:recipients"),
                    r("releases:recipient_new"),
                    r("releases:recipient", records.recipient.pk),
                    r("releases:person_consents", duplicate.pk),
                    r("releases:consent_new", duplicate.pk),
                    r("releases:consent", consent.pk),
                    r("releases:consent_print", consent.pk),
                    r("releases:incoming_list"),
                    r("releases:incoming_new"),
                    r("releases:incoming", incoming.pk),
                    r("releases:incoming_reply", incoming.pk),
                    r("releases:emergency_detail", emergency.pk),
                    r("releases:emergency_reviews"),
                    r("releases:outgoing_list"),
                    r("releases:accounting", duplicate.pk),
                    r("releases:accounting_print", duplicate.pk),
                    r("visits:access_log"),
                    r("visits:changes"),
                    r("visits:merges"),
                    r("lockout_log"),
                ]
            ),
        ),
        "operator": Role("root", password_for(operator), admin_pages(front_desk, site)),
    }
    # The screen lock, the second-factor set-up and the QR code: on the account page.
    roles["privacy_officer"].pages["account"] = reverse("account") + "?set-up=1"
    data = {
        "healthz": (None, reverse("healthz")),
        "healthz_live": (None, reverse("healthz_live")),
        "queues:board_live": (clinician, reverse("queues:board_live")),
        "queues:display_live": (None, reverse("queues:display_live", args=[site.display_token])),
        "releases:packet_pdf": (clinician, reverse("releases:packet_pdf", args=[packet.pk])),
        "reports:export": (director, reverse("reports:export", args=["summary"])),
        "admin:jsi18n": (operator, reverse("admin:jsi18n")),
    }
    return {"roles": roles, "data": data, "operator": operator}


def admin_pages(account, site) -> dict[str, str]:
    """Every admin page for every model the admin has, opened on a real object (`account`
    for the staff accounts: an operator does not set their own password there)."""
    from django.contrib import admin

    pages = {
        "admin:index": reverse("admin:index"),
        "admin:login": reverse("admin:login"),
        "admin:password_change": reverse("admin:password_change"),
        "admin:password_change_done": reverse("admin:password_change_done"),
        "admin:auth_user_password_change": reverse(
            "admin:auth_user_password_change", args=[account.pk]
        ),
    }
    from django.contrib.auth.models import Group

    samples = {Group: Group.objects.first(), get_user_model(): account}
    for model, model_admin in admin.site._registry.items():
        meta = model._meta
        app = f"admin:app_list:{meta.app_label}"
        pages[app] = reverse("admin:app_list", args=[meta.app_label])
        obj = samples.get(model) or model.objects.filter(**_site_filter(model, site)).first()
        assert obj is not None, f"no {meta.model_name} to open in the admin"
        for view in ("changelist", "add"):
            name = f"admin:{meta.app_label}_{meta.model_name}_{view}"
            pages[name] = reverse(name)
        for view in ("change", "history", "delete"):
            name = f"admin:{meta.app_label}_{meta.model_name}_{view}"
            pages[name] = reverse(name, args=[obj.pk])
        assert model_admin is not None
    return pages


def _site_filter(model, site) -> dict:
    names = {f.name for f in model._meta.get_fields()}
    if "site" in names:
        return {"site": site}
    if model._meta.model_name == "site":
        return {"pk": site.pk}
    return {}


def sample_path(pattern: str) -> str:
    """A path for a route pattern, with a made-up value for each parameter."""
    path = re.sub(r"<(?:int:)?[a-z_]+>", "1", pattern)
    path = re.sub(r"<(?:str|slug|path):[a-z_]+>", "x", path)
    return "/" + path


def check_not_pages(routes: dict[str, str], clinic: dict) -> None:
    """Each exclusion's reason holds: POST-only routes refuse GET, data routes are not HTML."""
    for name, reason in NOT_PAGES.items():
        if reason == POST_ONLY:
            response = Client().get(sample_path(routes[name]), follow=True)
            assert response.status_code == 405, (name, response.status_code)
    client = Client()
    client.force_login(clinic["operator"])
    response = client.get(reverse("admin:logout"))
    assert (response.status_code, response["Location"]) == (307, reverse("logout"))
    data = clinic["data"]
    assert set(data) == {n for n, reason in NOT_PAGES.items() if reason == DATA}
    for name, (user, path) in data.items():
        client = Client()
        if user is not None:
            client.force_login(user)
        response = client.get(path)
        assert response.status_code == 200, (name, response.status_code)
        assert not response["Content-Type"].startswith("text/html"), name


class Watcher:
    """Violations, CSP console errors and script errors of one browser context."""

    def __init__(self, context):
        self.violations, self.console, self.errors = [], [], []
        context.expose_function("__cspViolation", lambda v: self.violations.append(v))
        context.add_init_script(INIT_SCRIPT)

    def watch(self, page):
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on(
            "console",
            lambda msg: (
                self.console.append(msg.text)
                if any(word in msg.text for word in CSP_CONSOLE)
                else None
            ),
        )


def sign_in(page, role: Role) -> None:
    page.goto("/login/")
    page.get_by_label("Username").fill(role.username)
    page.get_by_label("Password").fill(role.password)
    page.get_by_role("button", name="Sign in").click()
    if role.code_key:
        key, step, t0, digits, drift = role.code_key
        page.wait_for_url(f"**{reverse('login_code')}")
        code = str(totp(key, step=step, t0=t0, digits=digits, drift=drift)).zfill(digits)
        page.get_by_label("Code from your authenticator app").fill(code)
        page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/login/" not in url)


def test_every_page_of_every_role_runs_under_the_policy_with_no_violation(asgi_server, clinic):
    roles = clinic["roles"]
    routes = named_routes()
    visited = {name for role in roles.values() for name in role.pages}
    # The admin's per-app index is one route visited once per app.
    visited_routes = {
        n.rsplit(":", 1)[0] if n.startswith("admin:app_list:") else n for n in visited
    }
    missing = set(routes) - visited_routes - set(NOT_PAGES)
    assert not missing, f"routes neither visited nor excluded with a reason: {sorted(missing)}"
    assert not (visited_routes & set(NOT_PAGES)), visited_routes & set(NOT_PAGES)
    assert not (set(NOT_PAGES) - set(routes)), "excluded routes that no longer exist"
    assert len(visited_routes) + len(NOT_PAGES) == len(routes)
    check_not_pages(routes, clinic)

    opened = []
    with launched_chromium() as browser:
        for role_name, role in roles.items():
            context = browser.new_context(base_url=asgi_server.url, viewport=DESK)
            watcher = Watcher(context)
            page = context.new_page()
            watcher.watch(page)
            if role.username:
                sign_in(page, role)
            for name, path in role.pages.items():
                if name == "login_code":
                    continue  # passed through while signing in
                response = page.goto(path)
                assert response is not None
                assert response.status == REFUSED.get(name, 200), (role_name, name, path)
                assert "text/html" in response.headers["content-type"], (name, path)
                assert "content-security-policy" in response.headers, (name, path)
                page.wait_for_load_state("load")
                exercise(page, name, watcher)
                opened.append((role_name, name))
            context.close()
            assert not watcher.violations, json.dumps(watcher.violations, indent=1)
            assert not watcher.console, watcher.console
            assert not watcher.errors, (role_name, watcher.errors)
        browser.close()

    assert len(opened) == sum(len(r.pages) for r in roles.values()) - 1  # less login_code
    reported = [
        line for line in asgi_server.log.read_text().splitlines() if "CSP violation" in line
    ]
    assert not reported, reported


def exercise(page, name: str, watcher: Watcher) -> None:
    """What a page does after it loads, done the way a person would."""
    if name in {"queues:board", "queues:display"}:
        # The websocket is open (connect-src 'self' covers ws: of the same host).
        status = "Live: this list updates by itself." if name == "queues:board" else ""
        expect(page.locator("#live-status")).to_have_text(status)
    elif name == "queues:check_in":
        page.get_by_label("Name").first.fill("Marc")
        expect(page.locator("#matches")).to_contain_text("Marcus Bell")
    elif name in {
        "releases:packet_view",
        "releases:consent_print",
        "releases:incoming_reply",
        "releases:accounting_print",
    }:
        page.get_by_role("button", name="Print").click()
        assert page.evaluate("window.__printed") == 1, json.dumps(watcher.violations, indent=1)
    elif name == "releases:outgoing_emergency":
        # A form sent back with its errors, then the page after the release (POST only).
        release = page.get_by_role("button", name="Release for the emergency")
        release.click()
        expect(
            page.get_by_text("Please give the name of the person who receives it.")
        ).to_be_visible()
        page.get_by_label("Medical personnel").select_option(index=1)
        page.get_by_label("Name of the medical staff member who receives it").fill("Dr Okafor")
        page.get_by_label("The nature of the emergency, in your words").fill("Overdose")
        page.get_by_label("Medications").check()
        page.get_by_role("button", name="Release for the emergency").click()
        expect(page.get_by_text("Released in a medical emergency")).to_be_visible()
        page.get_by_role("button", name="Print").click()
        assert page.evaluate("window.__printed") == 1, json.dumps(watcher.violations, indent=1)
    elif name == "account":
        if page.locator(".qr svg").count():
            expect(page.locator(".qr svg")).to_be_visible()
        # The screen lock: lock now, then the lock panel is on screen.
        page.get_by_role("button", name="Lock screen").click()
        expect(page.get_by_role("dialog", name="Locked")).to_be_visible()
    elif name == "reports:dashboard":
        expect(page.get_by_role("img", name="Contacts per week")).to_be_visible()


def test_the_watch_sees_a_violation_and_the_browser_reports_it_without_personal_details(
    asgi_server, transactional_db
):
    """The listener above is not blind: an inline style set by script is refused, seen as it
    happens and reported to /csp-report/, whose log line names the route and nothing else."""
    with launched_chromium() as browser:
        context = browser.new_context(base_url=asgi_server.url, viewport=DESK)
        watcher = Watcher(context)
        page = context.new_page()
        watcher.watch(page)
        page.goto("/login/?next=/visits/new/%3Fq%3DMarcus")
        page.evaluate("document.body.setAttribute('style', 'color: #123456')")
        expect(page.locator("body")).not_to_have_css("color", "rgb(18, 52, 86)")
        page.wait_for_function("true")
        browser.close()

    assert [(v["directive"], v["blocked"]) for v in watcher.violations] == [
        ("style-src-attr", "inline")
    ]
    # The browser's report reaches the server's log, by route name only.
    line = wait_for_log(asgi_server.log, "CSP violation")
    assert "style-src-attr blocked inline on login" in line
    # (The access log's own lines are another matter: the server's, not this endpoint's.)
    reports = [x for x in asgi_server.log.read_text().splitlines() if "CSP violation" in x]
    assert reports and not any("Marcus" in x or "?" in x for x in reports), reports


def wait_for_log(log, text: str, seconds: float = 10) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for line in log.read_text().splitlines():
            if text in line:
                return line
        time.sleep(0.1)
    raise AssertionError(f"{text!r} never reached the server's log:\n{log.read_text()[-2000:]}")
