"""/healthz/live/: whether the channel layer answers and how long since a live update went out,
for the clinic's monitoring. Anonymous, never cached, nothing about a person, and never held
up by a Redis that hangs."""

import socket
import threading
import time

import pytest
import redis
from channels.layers import channel_layers
from django.urls import reverse

from clinic.settings import redis_channel_layer
from queues import health, realtime
from tests.factories import check_in

NO_REDIS = "redis://127.0.0.1:1/0"  # nothing listens on port 1


@pytest.fixture(autouse=True)
def fresh_health_state(monkeypatch):
    """Every test starts as a process that has sent nothing and checked nothing."""
    monkeypatch.setattr(health, "_last_broadcast", None)
    monkeypatch.setattr(health, "_last_noted_in_redis", 0.0)
    monkeypatch.setattr(health, "_last_check", None)
    yield
    channel_layers.backends.clear()


def use_layer(settings, url: str | None) -> None:
    settings.CHANNEL_LAYERS = {
        "default": redis_channel_layer(url)
        if url
        else {"BACKEND": "channels.layers.InMemoryChannelLayer"}
    }
    channel_layers.backends.clear()


@pytest.fixture
def silent_redis():
    """A server that accepts connections and never answers: a hung Redis."""
    listener = socket.create_server(("127.0.0.1", 0))
    held = []
    stop = threading.Event()

    def serve():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            held.append(conn)  # read nothing, answer nothing

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    listener.close()


def get_health(client):
    """The answer, asked from another thread: a check that hung would fail the test instead
    of holding the suite."""
    answer = {}
    thread = threading.Thread(
        target=lambda: answer.update(response=client.get(reverse("healthz_live"))), daemon=True
    )
    thread.start()
    thread.join(timeout=4 * health.CHECK_TIMEOUT_SECONDS + 5)
    assert not thread.is_alive(), "/healthz/live/ did not answer within its bound"
    return answer["response"]


@pytest.mark.redis
def test_live_health_reports_a_reachable_redis(client, settings, db):
    use_layer(settings, settings.TEST_REDIS_URL)

    response = get_health(client)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["channel_layer"] == "redis"
    assert body["reachable"] is True
    assert body["last_broadcast_scope"] == "deployment"


def test_live_health_is_anonymous_uncached_and_get_only(client, settings, db):
    use_layer(settings, None)
    response = client.get(reverse("healthz_live"))
    assert response.status_code == 200
    assert "no-cache" in response["Cache-Control"]
    assert "max-age=0" in response["Cache-Control"]
    assert response.json()["channel_layer"] == "in-memory"
    assert client.post(reverse("healthz_live")).status_code == 405


def test_live_health_reports_a_refused_redis_as_unreachable_with_503(client, settings, db):
    use_layer(settings, NO_REDIS)

    response = get_health(client)

    assert response.status_code == 503
    body = response.json()
    assert body["reachable"] is False
    assert body["last_broadcast_scope"] == "process"
    # The liveness check is a separate endpoint and stays healthy: pages still work.
    assert client.get(reverse("healthz")).status_code == 200


def test_live_health_gives_up_on_a_hung_redis_within_its_bound(client, settings, db, silent_redis):
    use_layer(settings, silent_redis)

    response = get_health(client)

    assert response.status_code == 503
    body = response.json()
    assert body["reachable"] is False
    assert body["check_ms"] <= 2 * health.CHECK_TIMEOUT_SECONDS * 1000 + 500
    assert silent_redis.rsplit(":", 1)[1] not in response.content.decode()


def test_live_health_reports_the_age_of_the_last_broadcast_after_a_check_in(
    client, settings, site, front_desk, django_capture_on_commit_callbacks
):
    use_layer(settings, None)
    assert client.get(reverse("healthz_live")).json()["last_broadcast_age_seconds"] is None

    with django_capture_on_commit_callbacks(execute=True):
        check_in(site=site, by=front_desk, name="Marcus Reyes")
    health._last_check = None  # not the answer reused from a moment ago

    response = client.get(reverse("healthz_live"))
    body = response.json()
    assert 0 <= body["last_broadcast_age_seconds"] < 60
    assert "Marcus" not in response.content.decode()


@pytest.mark.redis
def test_live_health_reports_the_newest_broadcast_of_any_process_through_redis(
    client, settings, site, front_desk, django_capture_on_commit_callbacks
):
    use_layer(settings, settings.TEST_REDIS_URL)
    with redis.Redis.from_url(settings.TEST_REDIS_URL) as shared:
        shared.delete(health.LAST_BROADCAST_KEY)
        # Another process broadcast 40 seconds ago; this one has sent nothing.
        shared.set(health.LAST_BROADCAST_KEY, repr(time.time() - 40))
        age = get_health(client).json()["last_broadcast_age_seconds"]
        assert 39 <= age < 100

        health._last_check = None
        with django_capture_on_commit_callbacks(execute=True):
            check_in(site=site, by=front_desk, name="Marcus Reyes")
        assert realtime.hints_wait(10)
        body = get_health(client).json()
        assert 0 <= body["last_broadcast_age_seconds"] < 30
        assert body["last_broadcast_scope"] == "deployment"
        # The newest time is kept: an older one noted late never moves it back.
        health._last_noted_in_redis = 0.0
        health.broadcast_sent(when=time.time() - 3600)
        assert float(shared.get(health.LAST_BROADCAST_KEY)) > time.time() - 30
        shared.delete(health.LAST_BROADCAST_KEY)
