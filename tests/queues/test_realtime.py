"""Live-update hints: one per change to the site's group, after commit, and never
anything about a person (through a network layer, a burst at one site is spaced into fewer
hints, the last at the newest version). A channel layer that is down never costs a saved
change."""

import asyncio
import json
import logging
import os
import subprocess
import sys
import time

import pytest
from asgiref.sync import async_to_sync
from channels.layers import BaseChannelLayer, InMemoryChannelLayer, get_channel_layer
from django.conf import settings
from django.db import transaction

from queues import realtime, services
from queues.errors import QueueError
from queues.models import Arrival, ArrivalEvent, State
from queues.realtime import site_group
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
    """The message one change at `site` must send, at the site's current version."""
    message = {"type": "queue.changed", "site": site.pk, "version": queue_version(site.pk)}
    return [(site_group(site.pk), message)]


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
def test_each_change_sends_one_hint_to_the_sites_screens(
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

    assert len(layer.sent) == 1
    for _group, message in layer.sent:
        assert set(message) == {"type", "site", "version"}
        text = json.dumps(message)
        for private in ("Marcus", "Avery", "chest pain", "Pepper", "K-1"):
            assert private not in text


def test_hints_go_to_the_group_of_the_site_that_changed(
    site, other_site, front_desk, other_site_clinician, layer, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        check_in(site=other_site, by=other_site_clinician, name="Elsewhere")

    assert layer.sent == hints(other_site)
    assert not any(str(site.pk) == group.rsplit(".", 1)[1] for group, _ in layer.sent)


def test_every_process_in_the_sites_group_receives_the_hint(
    site, front_desk, settings, django_capture_on_commit_callbacks
):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    layer = get_channel_layer()
    one_process = async_to_sync(layer.new_channel)()
    another_process = async_to_sync(layer.new_channel)()
    for channel in (one_process, another_process):
        async_to_sync(layer.group_add)(site_group(site.pk), channel)

    with django_capture_on_commit_callbacks(execute=True):
        check_in(site=site, by=front_desk, name="Marcus")

    expected = {"type": "queue.changed", "site": site.pk, "version": 1}
    assert async_to_sync(layer.receive)(one_process) == expected
    assert async_to_sync(layer.receive)(another_process) == expected


def test_several_changes_in_a_row_send_increasing_versions(
    site, front_desk, clinician, layer, django_capture_on_commit_callbacks
):
    for name in ("Ana", "Ben", "Cy"):
        with django_capture_on_commit_callbacks(execute=True):
            check_in(site=site, by=front_desk, name=name)
    with django_capture_on_commit_callbacks(execute=True):
        services.arrival_call_next(site=site, by=clinician)

    assert [m["version"] for group, m in layer.sent if group == site_group(site.pk)] == [1, 2, 3, 4]
    assert len(layer.sent) == 4


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
        assert len(layer.sent) == 1, "nothing may be sent before the commit"
    assert len(layer.sent) == 2
    assert layer.sent[1:] == hints(site)


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


# --- the background sender spaces a site's hints under a burst ------------------------------------


class SpyNetworkLayer(BaseChannelLayer):
    """A network layer (its hints go through the background sender) that notes each send."""

    sent: list[tuple[str, dict, float]] = []

    async def group_send(self, group, message):
        SpyNetworkLayer.sent.append((group, message, time.monotonic()))


@pytest.fixture
def spy(settings, monkeypatch) -> list[tuple[str, dict, float]]:
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": f"{__name__}.SpyNetworkLayer"}}
    monkeypatch.setattr(SpyNetworkLayer, "sent", [])
    monkeypatch.setattr(realtime, "_sender_instance", None)  # a sender of this test's own
    yield SpyNetworkLayer.sent
    assert realtime.hints_wait(10)  # nothing held over into another test


def sent_versions(spy, site_id: int) -> list[int]:
    return [m["version"] for g, m, _at in spy if g == site_group(site_id)]


def sent_soon(spy, wanted, timeout: float = 3.0) -> bool:
    """Whether something in `spy` satisfies `wanted` within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(wanted(group, message) for group, message, _at in list(spy)):
            return True
        time.sleep(0.01)
    return False


def test_a_burst_at_one_site_goes_out_as_two_hints_the_last_at_the_newest_version(
    site, front_desk, monkeypatch, spy, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(realtime, "HINT_SPACING_SECONDS", 5.0)
    with django_capture_on_commit_callbacks(execute=True):
        check_in(site=site, by=front_desk, name="Person 0")
        first_version = queue_version(site.pk)
        for i in range(1, 10):
            check_in(site=site, by=front_desk, name=f"Person {i}")
    assert realtime.hints_wait(10)  # sends what is held, without waiting out the spacing

    # The first change at once; the nine that came within the spacing as one, the newest.
    assert sent_versions(spy, site.pk) == [first_version, queue_version(site.pk)]
    assert len(spy) == 2


def test_a_held_hint_goes_out_by_itself_once_the_spacing_has_passed(site, monkeypatch, spy):
    monkeypatch.setattr(realtime, "HINT_SPACING_SECONDS", 0.3)
    realtime._send(site.pk, 1)
    realtime._send(site.pk, 3)
    realtime._send(site.pk, 2)  # committed before 3, told after it: never sent after 3

    assert sent_soon(spy, lambda g, m: m.get("version") == 3)
    assert sent_versions(spy, site.pk) == [1, 3]
    first, last = (at for g, m, at in spy if g == site_group(site.pk))
    assert last - first >= 0.3


def test_the_spacing_holds_neither_other_sites_nor_closing_sockets(
    site, other_site, monkeypatch, spy
):
    monkeypatch.setattr(realtime, "HINT_SPACING_SECONDS", 30.0)
    realtime._send(site.pk, 1)
    realtime._send(site.pk, 2)  # held for 30 seconds (or until hints_wait)
    realtime._send(other_site.pk, 7)
    realtime._send_groups(["account.5"], {"type": realtime.SESSION_ENDED}, "session end")

    assert sent_soon(spy, lambda g, m: m.get("site") == other_site.pk)
    assert sent_soon(spy, lambda g, m: m["type"] == realtime.SESSION_ENDED)
    assert sent_versions(spy, site.pk) == [1]


class FileSpyLayer(BaseChannelLayer):
    """A network layer writing each hint's group and version to the file in $SPY_FILE."""

    async def group_send(self, group, message):
        with open(os.environ["SPY_FILE"], "a") as spy:
            spy.write(f"{group} {message.get('version')}\n")


EXITING = f"""
import django
django.setup()
from django.conf import settings
settings.CHANNEL_LAYERS = {{"default": {{"BACKEND": "{__name__}.FileSpyLayer"}}}}
from queues import realtime
realtime.HINT_SPACING_SECONDS = 60.0
realtime._send(1, 1)
realtime._send(1, 2)  # held for a minute: the process ends long before
"""


def test_a_process_that_exits_sends_the_hints_it_holds_first(tmp_path):
    spy = tmp_path / "sent.txt"
    env = {**os.environ, "SPY_FILE": str(spy), "DJANGO_SETTINGS_MODULE": "clinic.settings"}
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "-c", EXITING], env=env, cwd=settings.BASE_DIR, check=True, timeout=60
    )

    assert time.monotonic() - started < 30  # not the minute of spacing
    sent = spy.read_text().splitlines()
    assert sent == [f"{site_group(1)} 1", f"{site_group(1)} 2"]
