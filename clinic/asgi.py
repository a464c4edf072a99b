"""ASGI entry point: HTTP through Django, websockets through Channels.

Everything passes clinic/edge.py first: request limits, forwarded headers removed, and a
websocket's Origin checked exactly (scheme, host and port). Websockets carry the Django
session; each consumer then checks the user's role and site before joining a group.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clinic.settings")
django_asgi_app = get_asgi_application()

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
