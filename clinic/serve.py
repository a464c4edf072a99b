"""Serve Threshold: `python -m clinic.serve [--host H] [--port P] [--workers N]`.

The one way the application is served (the Dockerfile, docker-compose.yml and the tests all
start it like this), so the server's limits and its trust in the proxy are set in one place:

- forwarded headers believed only from FORWARDED_ALLOW_IPS (default 127.0.0.1; "*" refused
  outside DEBUG);
- h11 for HTTP, whose request line and headers are capped at HEADER_MAX_BYTES;
- websocket messages capped at WEBSOCKET_MESSAGE_MAX_BYTES, so a larger frame is refused by
  the server before it is buffered.

The request-body limits themselves live in clinic/edge.py, inside the application, and hold
under any ASGI server; if the pages move to another server, set its equivalents of the above.
"""

import argparse
import os
import sys

import uvicorn
from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

APPLICATION = "clinic.asgi:application"
HEADER_MAX_BYTES = 16 * 1024
GRACEFUL_SHUTDOWN_SECONDS = 5


def trusted_proxies() -> list[str]:
    """FORWARDED_ALLOW_IPS, refusing "*" (trust anyone's headers) outside DEBUG."""
    proxies = list(settings.FORWARDED_ALLOW_IPS)
    if "*" in proxies and not settings.DEBUG:
        raise ImproperlyConfigured(
            "FORWARDED_ALLOW_IPS=* would let anyone who reaches the server set X-Forwarded-For "
            "(the address sign-in failures are counted against) and X-Forwarded-Proto "
            "(whether the request came over HTTPS). Set it to the reverse proxy's address "
            "(README: Deployment)."
        )
    return proxies


@checks.register(checks.Tags.security, deploy=True)
def check_forwarded_allow_ips(app_configs=None, **kwargs):
    """`manage.py check --deploy` says the same as the launcher."""
    try:
        trusted_proxies()
    except ImproperlyConfigured as error:
        return [checks.Error(str(error), id="threshold.E001")]
    return []


def uvicorn_options(*, host: str, port: int, workers: int) -> dict:
    return {
        "host": host,
        "port": port,
        "workers": workers,
        "lifespan": "off",
        "proxy_headers": True,
        "forwarded_allow_ips": trusted_proxies(),
        "http": "h11",
        "h11_max_incomplete_event_size": HEADER_MAX_BYTES,
        "ws_max_size": settings.WEBSOCKET_MESSAGE_MAX_BYTES,
        "server_header": False,
        # On SIGTERM uvicorn closes every websocket (1012, "service restart": pages reconnect,
        # to another process if there is one) and then waits for their tasks. A client that
        # never answers the close (a phone gone out of reach) would hold that wait forever;
        # after this long the tasks are cancelled, so the server exits within docker stop's
        # 10 seconds.
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_SECONDS,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m clinic.serve", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY") or 1))
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clinic.settings")
    try:
        options = uvicorn_options(host=args.host, port=args.port, workers=args.workers)
    except ImproperlyConfigured as error:
        sys.exit(f"clinic.serve: {error}")
    uvicorn.run(APPLICATION, **options)


if __name__ == "__main__":
    main()
