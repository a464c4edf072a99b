"""Reports of what the Content-Security-Policy blocked (the policy: settings.py).

Browsers POST a small JSON document (`application/csp-report`) to the policy's report-uri
whenever a page breaks the policy: a script or style the clinic did not write (a browser
extension, injected markup, a mistake in a template). A log line per violation lets a clinic
notice it.

The report carries the page's address, the blocked address and a sample of the blocked code,
any of which could hold personal details (a name in a query string, a display link's secret,
text from the page). So the line names pages by their route (`visits:visit`), other servers
by their origin, and says nothing else: no query string, path, sample, referrer or person.

The endpoint is anonymous (the sign-in page reports too) and exempt from CSRF, which it can
be only because it accepts nothing but that content type (an HTML form cannot send it), reads
at most REPORT_MAX_BYTES, changes nothing and answers nothing but 204. Browsers send reports
by themselves, so they never keep a session alive (clinic/idle.py).
"""

import json
import logging
import re
from urllib.parse import urlsplit

from csp.utils import DEFAULT_DIRECTIVES
from django.conf import settings
from django.http import HttpResponse
from django.urls import Resolver404, resolve
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

logger = logging.getLogger("threshold.csp")

REPORT_CONTENT_TYPE = "application/csp-report"
# A browser's report is well under 2 KB (its code sample is cut at 40 characters).
REPORT_MAX_BYTES = 8 * 1024
# What the browser names instead of an address for inline code, eval and the like.
KEYWORDS = {
    "inline",
    "eval",
    "wasm-eval",
    "data",
    "blob",
    "self",
    "trusted-types-policy",
    "trusted-types-sink",
}
DIRECTIVES = set(DEFAULT_DIRECTIVES)
_HOST = re.compile(r"[a-z0-9.:\[\]-]{1,100}")
_STATIC_PATH = re.compile(r"[A-Za-z0-9/._-]{1,200}")


def _where(value, *, host: str) -> str:
    """An address from a report as something safe to log: a keyword the browser uses, a route
    name or static file of this server, another server's origin; never a path or query."""
    if not isinstance(value, str) or not value:
        return "-"
    if value in KEYWORDS:
        return value
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return "unreadable"
    scheme = parts.scheme.lower()
    if scheme in {"data", "blob", "chrome-extension", "moz-extension", "safari-web-extension"}:
        return scheme
    netloc = (parts.hostname or "") + (f":{port}" if port else "")
    if scheme not in {"http", "https", "ws", "wss"} or not _HOST.fullmatch(netloc):
        return "other"
    if netloc != host.lower():
        return f"{scheme}://{netloc}"
    static = "/" + settings.STATIC_URL.lstrip("/")
    if parts.path.startswith(static) and _STATIC_PATH.fullmatch(parts.path):
        return parts.path
    try:
        return resolve(parts.path).view_name or "this server"
    except Resolver404:
        return "this server"


def _number(value) -> str:
    return str(value) if isinstance(value, int) and 0 <= value < 10**7 else "-"


def violation_line(report: dict, *, host: str) -> str:
    """One report as a log line, with nothing in it that could identify a person."""
    directive = report.get("effective-directive") or report.get("violated-directive") or ""
    directive = directive.split(" ", 1)[0] if isinstance(directive, str) else ""
    directive = directive if directive in DIRECTIVES else "unknown"
    blocked = _where(report.get("blocked-uri"), host=host)
    page = _where(report.get("document-uri"), host=host)
    source = _where(report.get("source-file"), host=host)
    line, column = _number(report.get("line-number")), _number(report.get("column-number"))
    mode = " (report only)" if report.get("disposition") == "report" else ""
    where = f", from {source} at {line}:{column}" if source != "-" else ""
    return f"CSP violation{mode}: {directive} blocked {blocked} on {page}{where}"


@never_cache
@csrf_exempt
@require_POST
def report(request):
    if request.content_type != REPORT_CONTENT_TYPE:
        return HttpResponse(status=415)
    try:
        length = int(request.headers.get("Content-Length") or -1)
    except ValueError:
        length = -1
    if length < 0:
        return HttpResponse(status=411)
    if length > REPORT_MAX_BYTES:
        return HttpResponse(status=413)
    try:
        body = json.loads(request.read(REPORT_MAX_BYTES))
    except (ValueError, UnicodeDecodeError):
        return HttpResponse(status=400)
    violation = body.get("csp-report") if isinstance(body, dict) else None
    if not isinstance(violation, dict):
        return HttpResponse(status=400)
    logger.warning(violation_line(violation, host=request.get_host()))
    return HttpResponse(status=204)
