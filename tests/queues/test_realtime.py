"""Live-update hints: one per change to each of the site's two groups, after commit, and never
anything about a person. A channel layer that is down never costs a saved change."""

import asyncio
import json
import logging

import pytest
from asgiref.sync import async_to_sync
from channels.layers import BaseChannelLayer, InMemoryChannelLayer, get_channel_layer
from django.db import transaction

from queues import realtime, services
from queues.errors import QueueError
from queues.models import Arrival, ArrivalEvent, State
from queues.realtime import display_group, staff_group
from queues.selectors import queue_version
from tests.factories import check_in


class RecordingChannelLayer(InMemoryChannelLayer):
    """The in-memory layer, keeping a list of every group_send."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.sent: list[tuple[str, dict]] = []

    async def group_send(self, group, message):
        self.sent.append((group, message))
        await super().group_send(group, message)


class UnreachableChannelLayer(InMemoryChannelLayer):
    """A layer whose server is down, as channels-redis behaves when Redis is stopped."""

    async def group_send(self, group, message):
        raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")


class HungChannelLayer(BaseChannelLayer):
    """A network layer whose server accepted the connection and never answers."""

    async def group_send(self, group, message):
        await asyncio.Event().wait()


@pytest.fixture
def layer(settings) -> RecordingChannelLayer:
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": f"{__name__}.RecordingChannelLayer"}}
    layer = get_channel_layer()
    assert isinstance(layer, RecordingChannelLayer)
    return layer


def hints(site) -> list[tuple[str, dict]]:
    """The two messages one change at `site` must send, at the site's current version."""
    message = {"type": "queue.changed", "site": site.pk, "version": queue_version(site.pk)}
    return [(staff_group(site.pk), message), (display_group(site.pk), message)]


# Each entry prepares the queue (no hints captured) and returns the change to broadcast.
CHANGES = {}


def change(name):
    def register(prepare):
        CHANGES[name] = prepare
        return prepare

    return register


@change("check in")
def _check_in(t):
    return lambda: check_in(site=t.site, by=t.front_desk, name="Marcus Avery")


@change("call next")
def _call_next(t):
    check_in(site=t.site, by=t.front_desk, name="Marcus Avery")
    return lambda: services.arrival_call_next(site=t.site, by=t.clinician, room=t.room)


@change("call")
def _call(t):
    a = check_in(site=t.site, by=t.front_desk, name="Marcus Avery")
    return lambda: services.arrival_call(arrival=a, by=t.clinician, revision=a.revision)


@change("start")
def _start(t):
    a = check_in(site=t.site, by=t.front_desk, name="Marcus Avery")
    return lambda: services.arrival_start(arrival=a, by=t.clinician, revision=a.revision)


@change("hand off")
def _hand_off(t):
    a = check_in(site=t.site, by=t.front_desk, name="Marcus Avery")
    a = services.arrival_start(arrival=a, by=t.clinician, revision=a.revision)
    return lambda: services.arrival_hand_off(
        arrival=a, by=t.clinician, revision=a.revision, to_user=t.second_clinician
    )


@change("step out")
def _step_out(t):
    a = check_in(site=t.site, by=t.front_desk, name="Marcus Avery")
    return lambda: services.arrival_step_out(arrival=a, by=t.front_desk, revision=a.revision)


@change("back")
def _back(t):
    a = check_in(site=t.site, by=t.front_desk, name="Marcus Avery")
    a = services.arrival_step_out(arrival=a, by=t.front_desk, revision=a.revision)
    return lambda: services.arrival_come_back(arrival=a, by=t.front_desk, revision=a.revision)


@change("left")
def _left(t):
    a = check_in(site=t.site, by=t.front_desk, name="Marcus Avery")
    return lambda: services.arrival_mark_left(arrival=a, by=t.front_desk, revision=a.revision)


@change("done")
def _done(t):
    a = check_in(site=t.site, by=t.front_desk, name="Marcus Avery")
    a = services.arrival_start(arrival=a, by=t.clinician, revision=a.revision)
    return lambda: services.arrival_finish(arrival=a, by=t.clinician, revision=a.revision)


@change("undo")
def _undo(t):
    a = check_in(site=t.site, by=t.front_desk, name="Marcus Avery")
    a = services.arrival_call(arrival=a, by=t.clinician, revision=a.revision)
    return lambda: services.arrival_undo(arrival=a, by=t.clinician, revision=a.revision)


@change("close day")
def _close_day(t):
    for name in ("Marcus Avery", "Juniper Oakes", "Rosalind Vega"):
        check_in(site=t.site, by=t.front_desk, name=name)
    return lambda: services.queue_close_day(site=t.site, by=t.front_desk)


@change("rotate display link")
def _rotate(t):
    return lambda: services.site_rotate_display_token(site=t.site)


@pytest.fixture
def team(site, room, front_desk, clinician, second_clinician):
    class Team:
        pass

    t = Team()
    t.site, t.room, t.front_desk = site, room, front_desk
    t.clinician, t.second_clinician = clinician, second_clinician
    return t


@pytest.mark.parametrize("name", CHANGES, ids=list(CHANGES))
def test_each_change_sends_one_hint_to_staff_screens_and_one_to_displays(
    name, team, layer, django_capture_on_commit_callbacks
):
    make_change = CHANGES[name](team)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        make_change()
        assert layer.sent == [], "nothing may be sent before the change is committed"

    assert len(callbacks) == 1
    assert layer.sent == hints(team.site)


def test_a_hint_carries_only_type_site_and_version(
    site, front_desk, layer, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        check_in(
            site=site,
            by=front_desk,
            name="Marcus Avery",
            urgent=True,
            urgent_reason="chest pain",
            what_helps="has a dog called Pepper",
        )

    assert len(layer.sent) == 2
    for _group, message in layer.sent:
        assert set(message) == {"type", "site", "version"}
        text = json.dumps(message)
        for private in ("Marcus", "Avery", "chest pain", "Pepper", "K-1"):
            assert private not in text


def test_hints_go_to_the_groups_of_the_site_that_changed(
    site, other_site, front_desk, other_site_clinician, layer, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        check_in(site=other_site, by=other_site_clinician, name="Elsewhere")

    assert layer.sent == hints(other_site)
    assert not any(str(site.pk) == group.rsplit(".", 1)[1] for group, _ in layer.sent)


def test_a_screen_in_the_staff_group_receives_the_hint(
    site, front_desk, settings, django_capture_on_commit_callbacks
):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    layer = get_channel_layer()
    staff_screen = async_to_sync(layer.new_channel)()
    display_screen = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(staff_group(site.pk), staff_screen)
    async_to_sync(layer.group_add)(display_group(site.pk), display_screen)

    with django_capture_on_commit_callbacks(execute=True):
        check_in(site=site, by=front_desk, name="Marcus")

    expected = {"type": "queue.changed", "site": site.pk, "version": 1}
    assert async_to_sync(layer.receive)(staff_screen) == expected
    assert async_to_sync(layer.receive)(display_screen) == expected


def test_several_changes_in_a_row_send_increasing_versions(
    site, front_desk, clinician, layer, django_capture_on_commit_callbacks
):
    for name in ("Ana", "Ben", "Cy"):
        with django_capture_on_commit_callbacks(execute=True):
            check_in(site=site, by=front_desk, name=name)
    with django_capture_on_commit_callbacks(execute=True):
        services.arrival_call_next(site=site, by=clinician)

    staff_versions = [m["version"] for group, m in layer.sent if group == staff_group(site.pk)]
    display_versions = [m["version"] for group, m in layer.sent if group == display_group(site.pk)]
    assert staff_versions == display_versions == [1, 2, 3, 4]


def test_nothing_is_sent_when_the_change_is_rolled_back(
    site, front_desk, layer, django_capture_on_commit_callbacks
):
    class Abandon(Exception):
        pass

    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(Abandon),
        transaction.atomic(),
    ):
        check_in(site=site, by=front_desk, name="Marcus")
        raise Abandon

    assert callbacks == []
    assert layer.sent == []
    assert not Arrival.objects.exists()


def test_a_refused_action_sends_nothing(
    site, front_desk, clinician, layer, django_capture_on_commit_callbacks
):
    arrival = check_in(site=site, by=front_desk, name="Marcus")
    nonce = arrival.nonce

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        for attempt in (
            lambda: check_in(site=site, by=front_desk, name=""),
            lambda: check_in(site=site, by=front_desk, name="N" * 10_000),
            lambda: services.arrival_finish(arrival=arrival, by=clinician, revision=None),
            lambda: services.arrival_undo(arrival=arrival, by=clinician, revision=None),
            lambda: services.arrival_call(arrival=arrival, by=clinician, revision=99),
        ):
            with pytest.raises(QueueError):
                attempt()
        check_in(site=site, by=front_desk, name="Marcus", nonce=nonce)  # a repeated tap

    assert callbacks == []
    assert layer.sent == []


@pytest.mark.django_db(transaction=True)
def test_hints_follow_real_commits_and_never_real_rollbacks(site, front_desk, clinician, layer):
    class Abandon(Exception):
        pass

    with pytest.raises(Abandon), transaction.atomic():
        check_in(site=site, by=front_desk, name="Gone")
        raise Abandon
    assert layer.sent == []
    assert not Arrival.objects.exists()

    check_in(site=site, by=front_desk, name="Marcus")
    assert layer.sent == hints(site)

    with transaction.atomic():
        services.arrival_call_next(site=site, by=clinician)
        assert len(layer.sent) == 2, "nothing may be sent before the commit"
    assert len(layer.sent) == 4
    assert layer.sent[2:] == hints(site)


# --- a channel layer that is down ---------------------------------------------------------------


def broadcast_warnings(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "queues.realtime"]


def test_check_in_and_call_are_saved_when_the_channel_layer_is_down(
    site, front_desk, clinician, settings, caplog, django_capture_on_commit_callbacks
):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": f"{__name__}.UnreachableChannelLayer"}}
    caplog.set_level(logging.WARNING, logger="queues.realtime")

    with django_capture_on_commit_callbacks(execute=True):
        arrival = check_in(site=site, by=front_desk, name="Marcus")
    with django_capture_on_commit_callbacks(execute=True):
        called = services.arrival_call_next(site=site, by=clinician)

    assert called.pk == arrival.pk
    saved = Arrival.objects.get(pk=arrival.pk)
    assert (saved.state, saved.staff) == (State.CALLED, clinician)
    assert ArrivalEvent.objects.filter(arrival=arrival).count() == 2
    assert queue_version(site.pk) == 2
    records = broadcast_warnings(caplog)
    assert records, "a failed broadcast must be logged"
    assert {r.levelno for r in records} == {logging.WARNING}
    assert all(isinstance(r.exc_info[1], ConnectionError) for r in records)
    logged = " ".join(r.getMessage() for r in records)
    assert "version 1" in logged and "version 2" in logged


@pytest.mark.django_db(transaction=True)
def test_committed_changes_stay_saved_when_the_channel_layer_is_down(
    site, front_desk, clinician, settings, caplog
):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": f"{__name__}.UnreachableChannelLayer"}}
    caplog.set_level(logging.WARNING, logger="queues.realtime")

    arrival = check_in(site=site, by=front_desk, name="Marcus")
    services.arrival_call_next(site=site, by=clinician)

    assert Arrival.objects.get(pk=arrival.pk).state == State.CALLED
    assert ArrivalEvent.objects.filter(arrival=arrival).count() == 2
    assert broadcast_warnings(caplog)


@pytest.mark.django_db(transaction=True)
def test_check_in_is_saved_when_redis_cannot_be_reached(site, front_desk, settings, caplog):
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]},  # nothing listens on port 1
        }
    }
    caplog.set_level(logging.WARNING, logger="queues.realtime")

    arrival = check_in(site=site, by=front_desk, name="Marcus")
    assert realtime.hints_wait(10)  # a network layer's hints go out in the background

    assert Arrival.objects.get(pk=arrival.pk).state == State.WAITING
    assert broadcast_warnings(caplog)


def test_a_hanging_channel_layer_drops_hints_instead_of_queueing_without_end(
    site, front_desk, settings, caplog, monkeypatch, django_capture_on_commit_callbacks
):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": f"{__name__}.HungChannelLayer"}}
    monkeypatch.setattr(realtime, "HINT_TIMEOUT_SECONDS", 0.2)
    monkeypatch.setattr(realtime, "HINT_BACKLOG", 3)
    monkeypatch.setattr(realtime, "_sender_instance", None)  # a sender with these limits
    caplog.set_level(logging.INFO, logger="queues.realtime")

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        for name in ("Ana", "Ben", "Cy", "Di", "Ed", "Flo", "Gus", "Hal", "Ida", "Jo"):
            check_in(site=site, by=front_desk, name=name)
    assert len(callbacks) == 10
    assert realtime.hints_wait(30)

    assert Arrival.objects.filter(site=site).count() == 10
    messages = [r.getMessage() for r in broadcast_warnings(caplog)]
    dropped = [m for m in messages if m.startswith("Live-update hints are being dropped")]
    given_up = [m for m in messages if m.startswith("Could not broadcast")]
    assert len(dropped) == 1, "dropping is logged once, not once per hint"
    # At most one hint being sent and three waiting; the other six were dropped at once.
    assert 3 <= len(given_up) <= 4
    cleared = "Live-update hints are no longer dropped: the backlog has cleared."
    assert messages.count(cleared) == 1
    assert messages.index(cleared) > messages.index(dropped[0])
