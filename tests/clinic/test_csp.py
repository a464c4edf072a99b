"""The Content-Security-Policy: its header on every kind of page, templates that need nothing
inline, generated SVG without style attributes, and the violation report endpoint that logs
without personal details. The browser test (tests/browser/test_csp.py) visits every page."""

import json
import logging
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from clinic.csp import REPORT_MAX_BYTES
from reports import charts

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "templates"

# Every directive the policy must hold, with exactly these sources.
REQUIRED = {
    "default-src": {"'self'"},
    "script-src": {"'self'"},
    "style-src": {"'self'"},
    "connect-src": {"'self'"},
    "object-src": {"'none'"},
    "base-uri": {"'none'"},
    "frame-ancestors": {"'none'"},
    "form-action": {"'self'"},
}
# Sources allowed anywhere in the policy (data: for the consent signature's PNG, images only).
ALLOWED_SOURCES = {"'self'", "'none'"}
ALLOWED_ELSEWHERE = {"img-src": {"data:"}}


def parse_policy(header: str) -> dict[str, list[str]]:
    policy = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            assert words[0] not in policy, f"{words[0]} twice in {header!r}"
            policy[words[0]] = words[1:]
    return policy


def assert_strict_policy(response) -> dict[str, list[str]]:
    header = response.headers.get("Content-Security-Policy")
    assert header, f"no Content-Security-Policy on {response.request['PATH_INFO']}"
    policy = parse_policy(header)
    for directive, sources in REQUIRED.items():
        assert set(policy.get(directive, [])) == sources, (directive, header)
    for directive, sources in policy.items():
        if directive == "report-uri":
            assert sources == [reverse("csp_report")]
            continue
        allowed = ALLOWED_SOURCES | ALLOWED_ELSEWHERE.get(directive, set())
        # No 'unsafe-inline', 'unsafe-eval', 'unsafe-hashes', wildcard, scheme or other host.
        assert set(sources) <= allowed, (directive, sources)
    return policy


# --- the header ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("persona", "url_name"),
    [
        ("anonymous", "login"),
        ("front_desk", "queues:check_in"),
        ("clinician", "queues:board"),
        ("clinician", "visits:visit_new"),
        ("director", "reports:dashboard"),
        ("director", "staff:list"),
        ("director", "admin:index"),
        ("privacy_officer", "releases:home"),
        ("privacy_officer", "account"),
    ],
)
def test_every_kind_of_page_carries_the_strict_policy(client, login, persona, url_name):
    user = login(persona)
    if url_name == "admin:index":
        user.is_staff = True
        user.save()
    response = client.get(reverse(url_name))

    assert response.status_code == 200
    assert_strict_policy(response)


def test_the_display_a_refusal_and_a_form_sent_back_carry_it_too(client, login, site):
    display = client.get(reverse("queues:display", args=[site.display_token]))
    assert display.status_code == 200
    assert_strict_policy(display)

    login("front_desk")
    # A page the person may not open, and a form sent back with an error.
    assert_strict_policy(client.get(reverse("reports:dashboard")))
    refused = client.post(reverse("queues:check_in"), {"name": ""})
    assert refused.status_code in {200, 400}
    assert_strict_policy(refused)


# --- nothing inline in templates ----------------------------------------------------------------

TAG = re.compile(r"<(?P<name>[a-zA-Z][a-zA-Z0-9-]*)(?P<attrs>(?:[^>\"']|\"[^\"]*\"|'[^']*')*)>")
HANDLER = re.compile(r"(?:^|[\s\"'])on[a-z]+\s*=", re.IGNORECASE)
STYLE_ATTR = re.compile(r"(?:^|[\s\"'])style\s*=", re.IGNORECASE)
JS_URL = re.compile(r"=\s*[\"']?\s*javascript:", re.IGNORECASE)
DATA_BLOCK = re.compile(r"type\s*=\s*[\"']application/(?:ld\+)?json[\"']", re.IGNORECASE)


def inline_code(text: str) -> list[str]:
    """What a strict policy would block in this markup: event-handler attributes, style
    attributes, javascript: URLs, <script> without src (other than JSON data), <style>."""
    found = []
    # Django template comments and tags may hold anything; they are not markup.
    text = re.sub(r"\{#.*?#\}", "", text, flags=re.DOTALL)
    text = re.sub(r"\{%\s*comment\s*%\}.*?\{%\s*endcomment\s*%\}", "", text, flags=re.DOTALL)
    for match in TAG.finditer(text):
        name, attrs = match["name"].lower(), match["attrs"]
        line = text.count("\n", 0, match.start()) + 1
        where = f"line {line}: {match.group(0)[:80]}"
        if HANDLER.search(attrs):
            found.append(f"event handler, {where}")
        if STYLE_ATTR.search(attrs):
            found.append(f"style attribute, {where}")
        if JS_URL.search(attrs):
            found.append(f"javascript: URL, {where}")
        if name == "style":
            found.append(f"<style> element, {where}")
        if name == "script" and not re.search(r"\ssrc\s*=", attrs) and not DATA_BLOCK.search(attrs):
            found.append(f"inline <script>, {where}")
    return found


def test_the_scan_finds_each_kind_of_inline_code():
    markup = (
        '<button type="button" onclick="window.print()">Print</button>\n'
        '<p style="color: red">x</p><a href="javascript:void(0)">y</a>\n'
        "<style>p {}</style><script>alert(1)</script>\n"
        '<script src="/static/js/live.js" defer></script>'
        '<script type="application/json" id="data">{}</script>'
    )
    kinds = [f.split(",")[0] for f in inline_code(markup)]
    assert kinds == [
        "event handler",
        "style attribute",
        "javascript: URL",
        "<style> element",
        "inline <script>",
    ]


def test_no_template_has_inline_script_handlers_or_styles():
    templates = sorted(TEMPLATES.rglob("*.html"))
    assert len(templates) > 80  # the scan really reads the project's templates
    found = {
        str(path.relative_to(ROOT)): problems
        for path in templates
        if (problems := inline_code(path.read_text(encoding="utf-8")))
    }
    assert not found, json.dumps(found, indent=1)


def test_generated_charts_and_the_qr_code_use_presentation_attributes_not_styles(clinician):
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from clinic.signin import setup_qr_svg

    points = [
        charts.Point(label="6 Jan 2025", value=3),
        charts.Point(label="13 Jan 2025", value=None),
        charts.Point(label="20 Jan 2025", value=1, partial=True),
    ]
    rendered = [
        charts.bar_chart(points, chart_id="c1", title="Contacts", y_caption="n"),
        charts.line_chart(
            points, chart_id="c2", title="Wait", y_caption="min", fmt=charts.fmt_minutes
        ),
        charts.retention_chart([], chart_id="c3", title="Returned"),
        setup_qr_svg(TOTPDevice.objects.create(user=clinician, confirmed=False)),
    ]
    for svg in rendered:
        assert "<svg" in svg
        assert inline_code(svg) == [], svg[:200]


# --- the report endpoint ------------------------------------------------------------------------

NAME = "Marcus Bell"


def a_report(**fields) -> dict:
    report = {
        "document-uri": f"http://testserver/visits/new/?q={NAME.replace(' ', '+')}",
        "referrer": f"http://testserver/queue/?name={NAME}",
        "violated-directive": "script-src-attr",
        "effective-directive": "script-src-attr",
        "original-policy": "default-src 'self'",
        "disposition": "enforce",
        "blocked-uri": "inline",
        "line-number": 12,
        "column-number": 3,
        "source-file": "http://testserver/visits/7/",
        "status-code": 200,
        "script-sample": f"alert('{NAME}')",
    }
    report.update(fields)
    return {"csp-report": report}


def send(client, body, *, content_type="application/csp-report"):
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    return client.post(reverse("csp_report"), data=data, content_type=content_type)


@pytest.mark.django_db
def test_a_report_is_logged_by_route_with_no_personal_details(caplog):
    client = Client(enforce_csrf_checks=True)  # a browser's report carries no CSRF token
    with caplog.at_level(logging.WARNING, logger="threshold.csp"):
        response = send(client, a_report())

    assert response.status_code == 204
    assert [r.getMessage() for r in caplog.records] == [
        "CSP violation: script-src-attr blocked inline on visits:visit_new, "
        "from visits:visit at 12:3"
    ]


@pytest.mark.django_db
def test_addresses_in_a_report_are_reduced_to_routes_static_files_and_origins(caplog, site):
    display = f"http://testserver/queue/display/{site.display_token}/?name={NAME}"
    cases = [
        ({"blocked-uri": "https://cdn.example.net/x.js?who=Marcus"}, "https://cdn.example.net"),
        ({"blocked-uri": "http://testserver/static/js/live.js?v=1"}, "/static/js/live.js"),
        ({"blocked-uri": display}, "queues:display"),
        ({"blocked-uri": "data:text/html,Marcus"}, "data"),
        ({"blocked-uri": "chrome-extension://abc/inject.js"}, "chrome-extension"),
        ({"blocked-uri": "http://testserver/no/such/page/Marcus/"}, "this server"),
        ({"blocked-uri": "javascript:alert('Marcus')"}, "other"),
        ({"blocked-uri": "http://[bad"}, "unreadable"),
        ({"blocked-uri": ["list"]}, "-"),
    ]
    with caplog.at_level(logging.WARNING, logger="threshold.csp"):
        for fields, expected in cases:
            caplog.clear()
            assert send(Client(), a_report(**fields)).status_code == 204
            assert f"blocked {expected} on" in caplog.records[0].getMessage()
    # The display's secret token, the name and the sample are nowhere.
    with caplog.at_level(logging.WARNING, logger="threshold.csp"):
        send(Client(), a_report(**{"document-uri": display, "effective-directive": "a b\nc"}))
    line = caplog.records[-1].getMessage()
    assert "queues:display" in line and "unknown blocked" in line
    for secret in (site.display_token, "Marcus", "alert", "default-src"):
        assert secret not in caplog.text


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        # A form could send these: refused before anything is read.
        ("csp-report=1", "application/x-www-form-urlencoded", 415),
        (json.dumps(a_report()), "text/plain", 415),
        (json.dumps(a_report()), "application/json", 415),
        ("{not json", "application/csp-report", 400),
        (json.dumps({"csp-report": "x"}), "application/csp-report", 400),
        (json.dumps([1, 2]), "application/csp-report", 400),
        (b"\xff\xfe", "application/csp-report", 400),
        (json.dumps(a_report(**{"script-sample": "x" * REPORT_MAX_BYTES})), None, 413),
    ],
)
def test_anything_but_a_small_report_is_refused_and_not_logged(caplog, body, content_type, status):
    with caplog.at_level(logging.WARNING, logger="threshold.csp"):
        response = send(Client(), body, content_type=content_type or "application/csp-report")
    assert response.status_code == status
    assert not [r for r in caplog.records if r.name == "threshold.csp"]


@pytest.mark.django_db
def test_the_endpoint_takes_only_post(client):
    assert client.get(reverse("csp_report")).status_code == 405


@pytest.mark.django_db
def test_a_report_never_keeps_a_session_alive(client, clinician):
    client.force_login(clinician)
    client.get(reverse("queues:board"))
    session = Session.objects.get(session_key=client.session.session_key)
    Session.objects.filter(pk=session.pk).update(expire_date=timezone.now() + timedelta(days=1))
    expires = Session.objects.get(pk=session.pk).expire_date

    assert send(client, a_report()).status_code == 204

    assert Session.objects.get(pk=session.pk).expire_date == expires
    assert django_settings.SESSION_COOKIE_NAME not in send(client, a_report()).cookies


@pytest.mark.django_db
def test_the_sign_in_page_reports_anonymously(client):
    assert send(client, a_report(**{"document-uri": "http://testserver/login/"})).status_code == 204
