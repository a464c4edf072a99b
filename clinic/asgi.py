"""ASGI entry point: HTTP through Django, websockets through Channels.

Everything passes clinic/edge.py first: request limits, forwarded headers removed, and a
websocket's Origin checked exactly (scheme, host and port). Websockets carry the Django
session; each consumer then checks the user's role and site before joining a group. Pages
run on a fixed set of threads that keep their database connections (clinic/http_threads.py).
"""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clinic.settings")
django.setup(set_prefix=False)

from django.conf import settings  # noqa: E402

from clinic.http_threads import ThreadsASGIHandler  # noqa: E402

django_asgi_app = ThreadsASGIHandler(settings.HTTP_THREADS)

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from clinic.edge import EdgeMiddleware  # noqa: E402
from queues.routing import websocket_urlpatterns  # noqa: E402

application = EdgeMiddleware(
    ProtocolTypeRouter(
        {
            "http": django_asgi_app,
            "websocket": AuthMiddlewareStack(URLRouter(websocket_urlpatterns)),
        }
    )
)
