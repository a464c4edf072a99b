"""What every request and websocket meets before Django or Channels sees it.

An ASGI middleware around the whole application (clinic/asgi.py), so these limits hold under
whichever ASGI server serves the pages; clinic/serve.py, the launcher, sets the same limits in
uvicorn as well, so that it refuses early and never buffers what this would refuse.

Request bodies (Django's ASGI handler reads a whole body, to disk past 2.5 MB, before any
view or middleware could refuse it, so the limits are enforced here, before the body is read):

- Nobody signed in: at most REQUEST_BODY_MAX_BYTES_ANONYMOUS (a sign-in form, a code) and
  no files: a `multipart/form-data` body is refused before it is read.
- Signed in: at most REQUEST_BODY_MAX_BYTES, and still no files, except on a route whose view
  is marked with `upload_limit` (the scanned consent form), which has its own size and time.
- A Content-Length above the limit is answered 413 at once; a chunked body is cut off with
  413 when it passes the limit; a body that stalls for REQUEST_BODY_SECONDS, or has not
  arrived within its time, is answered 408. Each of these closes the connection.

Whether someone is signed in is asked of the session store only when a body is larger than
the anonymous limit or is an upload: a sign-in page's request never costs a lookup.

Forwarded headers (X-Forwarded-For, X-Forwarded-Proto, Forwarded, ...) are removed: the
server has already applied them to the client address and scheme when, and only when, they
came from the trusted proxy (FORWARDED_ALLOW_IPS); from anyone else they are a client's
claim, and nothing in the application may read them.

Websockets: the Origin must be exactly the page's own origin (scheme, host and port, the host
one of ALLOWED_HOSTS) or one listed in CSRF_TRUSTED_ORIGINS, the rule Django applies to a
form's POST. A message larger than WEBSOCKET_MESSAGE_MAX_BYTES (a screen only ever sends a
short "sync") closes the socket with 1009.
"""

import asyncio
from importlib import import_module
from urllib.parse import urlsplit

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http.cookie import parse_cookie
from django.http.request import split_domain_port, validate_host
from django.urls import Resolver404, resolve

FORWARDED_HEADERS = frozenset(
    {
        b"forwarded",
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"x-forwarded-host",
        b"x-forwarded-port",
        b"x-forwarded-prefix",
        b"x-real-ip",
    }
)
CLOSE_TOO_BIG = 1009
DEFAULT_PORTS = {"http": 80, "https": 443}


def upload_limit(*, max_bytes: int, seconds: float):
    """Mark a view as taking one uploaded file from a signed-in person, in a body of at most
    `max_bytes` that arrives within `seconds`. Put it outermost, above the other decorators."""

    def mark(view):
        view.upload_limit = (max_bytes, seconds)
        return view

    return mark


class EdgeMiddleware:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        headers = [(n, v) for n, v in scope["headers"] if n.lower() not in FORWARDED_HEADERS]
        scope = {**scope, "headers": headers}
        if scope["type"] == "http":
            return await _http(self.app, scope, receive, send)
        return await _websocket(self.app, scope, receive, send)


# --- HTTP -------------------------------------------------------------------------------------


def _header(scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key.lower() == name:
            return value
    return None


async def _refuse(send, status: int, text: str) -> None:
    body = text.encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


TOO_LARGE = "The request is larger than this address accepts."
NO_FILES = "This address accepts no files."
TOO_SLOW = "The request did not arrive in time."


def _upload_route(scope) -> tuple[int, float] | None:
    path = scope["path"]
    root = scope.get("root_path") or ""
    if root and path.startswith(root):
        path = path[len(root) :]
    try:
        match = resolve(path)
    except Resolver404:
        return None
    return getattr(match.func, "upload_limit", None)


def _session_signed_in(session_key: str) -> bool:
    from django.contrib.auth import SESSION_KEY
    from django.db import connections

    try:
        store = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
        return store.get(SESSION_KEY) is not None
    finally:
        connections.close_all()  # this thread's; the request itself has not begun


async def _signed_in(scope) -> bool:
    cookie = _header(scope, b"cookie")
    if not cookie:
        return False
    session_key = parse_cookie(cookie.decode("latin1")).get(settings.SESSION_COOKIE_NAME)
    if not session_key or len(session_key) > 64:
        return False
    return await sync_to_async(_session_signed_in, thread_sensitive=False)(session_key)


async def _http(app, scope, receive, send):
    content_type = (_header(scope, b"content-type") or b"").strip().lower()
    length = _header(scope, b"content-length")
    try:
        declared = int(length) if length is not None else None
    except ValueError:
        return await _refuse(send, 400, "The request's Content-Length is not a number.")

    anonymous = settings.REQUEST_BODY_MAX_BYTES_ANONYMOUS
    seconds = settings.REQUEST_BODY_SECONDS
    signed_in = None  # asked at most once, and only when it matters
    if content_type.startswith(b"multipart/"):
        upload = _upload_route(scope)
        if upload is None or not await _signed_in(scope):
            return await _refuse(send, 415, NO_FILES)
        signed_in = True
        limit, seconds = upload
    elif declared is not None and declared <= anonymous:
        limit = anonymous
    elif declared is not None:
        signed_in = await _signed_in(scope)
        limit = settings.REQUEST_BODY_MAX_BYTES if signed_in else anonymous
    else:
        limit = anonymous  # chunked: raised below if the body outgrows it and they sign in
    if declared is not None and declared > limit:
        return await _refuse(send, 413, TOO_LARGE)

    body = bytearray()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    stall = settings.REQUEST_BODY_SECONDS
    while True:
        remaining = deadline - loop.time()
        try:
            message = await asyncio.wait_for(receive(), min(stall, remaining))
        except TimeoutError:
            return await _refuse(send, 408, TOO_SLOW)
        if message["type"] == "http.disconnect":
            return None
        body += message.get("body", b"")
        if len(body) > limit and signed_in is None:
            signed_in = await _signed_in(scope)
            if signed_in:
                limit = settings.REQUEST_BODY_MAX_BYTES
        if len(body) > limit:
            return await _refuse(send, 413, TOO_LARGE)
        if not message.get("more_body", False):
            break

    replayed = False

    async def replay():
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}
        return await receive()

    return await app(scope, replay, send)


# --- websockets -------------------------------------------------------------------------------


def _origin(value: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an origin, the port filled in; None if it is not one."""
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    if parts.path or parts.query or parts.fragment or parts.username or parts.password:
        return None
    return parts.scheme, parts.hostname, port or DEFAULT_PORTS[parts.scheme]


def origin_allowed(scope) -> bool:
    """The websocket's Origin is the page's own origin, exactly, or a trusted one."""
    raw = _header(scope, b"origin")
    if not raw:
        return False
    origin = _origin(raw.decode("latin1"))
    if origin is None:
        return False
    if origin in {_origin(o) for o in settings.CSRF_TRUSTED_ORIGINS}:
        return True
    host = (_header(scope, b"host") or b"").decode("latin1")
    domain, _port = split_domain_port(host)
    allowed_hosts = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed_hosts:
        allowed_hosts = [".localhost", "127.0.0.1", "[::1]"]
    if not domain or not validate_host(domain, allowed_hosts):
        return False
    scheme = "https" if scope.get("scheme") in ("wss", "https") else "http"
    return origin == _origin(f"{scheme}://{host}")


async def _websocket(app, scope, receive, send):
    if not origin_allowed(scope):
        # Refused before the handshake completes: the client sees HTTP 403.
        message = await receive()
        if message["type"] == "websocket.connect":
            await send({"type": "websocket.close"})
        return None

    limit = settings.WEBSOCKET_MESSAGE_MAX_BYTES
    closed = False

    async def capped_receive():
        nonlocal closed
        message = await receive()
        if message["type"] == "websocket.receive":
            text = message.get("text") or ""
            data = message.get("bytes") or b""
            if len(data) > limit or len(text) > limit or len(text.encode()) > limit:
                closed = True
                await send({"type": "websocket.close", "code": CLOSE_TOO_BIG})
                return {"type": "websocket.disconnect", "code": CLOSE_TOO_BIG}
        return message

    async def guarded_send(message):
        if not closed:
            await send(message)

    return await app(scope, capped_receive, guarded_send)
