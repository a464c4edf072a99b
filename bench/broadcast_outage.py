"""How long a check-in POST takes when the channel layer's Redis is healthy, refused or hung.

A hung Redis accepts connections and never answers (a server in this script that reads and
never replies). Before live-update hints moved to a background sender, each check-in waited
Redis's socket timeout once per group (about 30 s); now it should take its normal time.

Runs in-process on a temporary SQLite database (DEBUG=1 settings), posting through Django's
test client, so on-commit hints are sent for real.

    .venv/bin/python bench/broadcast_outage.py [--runs 10] [--redis redis://127.0.0.1:6379/3]
"""

import argparse
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def silent_server() -> str:
    listener = socket.create_server(("127.0.0.1", 0))
    held = []

    def serve():
        while True:
            conn, _ = listener.accept()
            held.append(conn)  # read nothing, answer nothing

    threading.Thread(target=serve, daemon=True).start()
    return f"redis://127.0.0.1:{listener.getsockname()[1]}/0"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--redis", help="a real Redis to compare with (its database is used)")
    args = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix="threshold-bench-")
    os.environ.update(
        DJANGO_SETTINGS_MODULE="clinic.settings",
        DEBUG="1",
        SQLITE_PATH=str(Path(workdir) / "db.sqlite3"),
        LOG_LEVEL="ERROR",
    )
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from channels.layers import channel_layers
    from django.conf import settings
    from django.core.management import call_command
    from django.test import Client
    from django.urls import reverse

    from clinic import roles
    from clinic.settings import redis_channel_layer
    from queues import realtime
    from tests.factories import SiteFactory, make_staff

    call_command("migrate", verbosity=0)
    site = SiteFactory(name="Bench", slug="bench", ticket_prefix="B")
    desk = make_staff(site=site, roles=[roles.FRONT_DESK], username="bench-desk")
    settings.ALLOWED_HOSTS = ["testserver"]
    client = Client()
    client.force_login(desk)

    layers = {"in-memory": None}
    if args.redis:
        layers["redis"] = args.redis
    layers["refused (port 1)"] = "redis://127.0.0.1:1/0"
    layers["hung (accepts, never answers)"] = silent_server()

    print(f"check-in POST, {args.runs} runs each (ms)")
    for label, url in layers.items():
        settings.CHANNEL_LAYERS = {
            "default": redis_channel_layer(url)
            if url
            else {"BACKEND": "channels.layers.InMemoryChannelLayer"}
        }
        channel_layers.backends.clear()
        times = []
        for _ in range(args.runs):
            start = time.perf_counter()
            response = client.post(
                reverse("queues:check_in"),
                {"nonce": str(uuid.uuid4()), "name": f"Bench {uuid.uuid4().hex[:8]}"},
            )
            times.append((time.perf_counter() - start) * 1000)
            assert response.status_code == 302, response.status_code
        print(
            f"  {label:32} median {statistics.median(times):7.1f}  max {max(times):7.1f}",
            flush=True,
        )
        realtime.hints_wait(0)  # do not wait for the background sender to give up


if __name__ == "__main__":
    main()
