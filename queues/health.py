"""The live layer's state, for the clinic's monitoring (`/healthz/live/`).

Two facts: whether the channel layer answers (a Redis PING within CHECK_TIMEOUT_SECONDS: a
Redis that accepts connections and never answers is reported unreachable, never waited on),
and how long ago a live-update hint was last sent successfully.

The last broadcast, across processes: every process that sends a hint successfully writes
the time to one Redis key (at most once a second, from the background sender, never from a
request), so whichever process answers the health check reports the newest broadcast of the
whole deployment, in the same round trip as the PING. When Redis cannot be reached the answer
falls back to this process's own memory, and says so. Without Redis (the in-memory layer, a
single process) the process's memory is the whole truth.

Nothing here names a person: a time, a yes or no, the kind of layer.
"""

import logging
import threading
import time

from django.conf import settings

logger = logging.getLogger(__name__)

CHECK_TIMEOUT_SECONDS = 1.0
LAST_BROADCAST_KEY = "threshold:live:last-broadcast"
# Written at most this often: the age is reported in seconds, and a burst of changes must
# not double the commands sent to Redis.
NOTE_EVERY_SECONDS = 1.0
# A reachability answer is reused for this long, so a flood of health checks costs Redis one
# PING a second per process (and at most one waiting request thread at a time).
REUSE_SECONDS = 1.0

_lock = threading.Lock()
_last_broadcast: float | None = None  # time.time() of this process's last successful hint
_last_noted_in_redis = 0.0
_last_check: tuple[float, dict] | None = None


def redis_url() -> str | None:
    """The Redis the channel layer uses, or None when it uses none (in-memory)."""
    layer = settings.CHANNEL_LAYERS.get("default", {})
    if "redis" not in layer.get("BACKEND", "").lower():
        return None
    host = (layer.get("CONFIG", {}).get("hosts") or ["redis://localhost:6379"])[0]
    if isinstance(host, dict):
        host = host.get("address", "")
    if isinstance(host, (tuple, list)):
        host = f"redis://{host[0]}:{host[1]}"
    return str(host)


def _client(url: str):
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    # No retries: a retry policy would multiply the bound.
    return redis.Redis.from_url(
        url,
        socket_timeout=CHECK_TIMEOUT_SECONDS,
        socket_connect_timeout=CHECK_TIMEOUT_SECONDS,
        retry=Retry(NoBackoff(), 0),
    )


def broadcast_sent(*, when: float | None = None) -> None:
    """A hint reached the channel layer (realtime.py calls this, off the request path)."""
    global _last_broadcast, _last_noted_in_redis
    when = time.time() if when is None else when
    _last_broadcast = when
    url = redis_url()
    if url is None or when - _last_noted_in_redis < NOTE_EVERY_SECONDS:
        return
    _last_noted_in_redis = when
    client = _client(url)
    try:
        # Only ever forward: another process may have noted a later time already.
        client.eval(
            "local old = tonumber(redis.call('GET', KEYS[1]) or '0') "
            "if tonumber(ARGV[1]) > old then "
            "redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2]) end",
            1,
            LAST_BROADCAST_KEY,
            repr(when),
            7 * 24 * 3600,
        )
    except Exception:  # the hint itself went out; the health check then reports this process
        logger.info("Could not note the last broadcast time in Redis", exc_info=True)
    finally:
        client.close()


def live_layer_state() -> dict:
    """What `/healthz/live/` answers. Returns within about CHECK_TIMEOUT_SECONDS (twice that
    at worst: connecting, then one read)."""
    global _last_check
    with _lock:
        now = time.time()
        if _last_check is not None and now - _last_check[0] < REUSE_SECONDS:
            state = dict(_last_check[1])
        else:
            state = _check()
            _last_check = (time.time(), state)
            state = dict(state)
    newest = state.pop("_last_broadcast")
    state["last_broadcast_age_seconds"] = (
        None if newest is None else max(0, round(time.time() - newest, 1))
    )
    return state


def _check() -> dict:
    url = redis_url()
    started = time.perf_counter()
    if url is None:
        return {
            "channel_layer": "in-memory",
            "reachable": True,
            "check_ms": 0.0,
            "last_broadcast_scope": "process",
            "_last_broadcast": _last_broadcast,
        }
    client = _client(url)
    reachable, newest = False, None
    try:
        pipe = client.pipeline(transaction=False)
        pipe.ping()
        pipe.get(LAST_BROADCAST_KEY)
        _pong, stored = pipe.execute()
        reachable = True
        newest = float(stored) if stored else None
    except Exception as error:
        # The kind of failure only: the URL may hold a password.
        logger.warning("Live layer health check: Redis unreachable (%s)", type(error).__name__)
    finally:
        client.close()
    if reachable:
        scope = "deployment"
        mine = _last_broadcast
        if mine is not None and (newest is None or mine > newest):
            newest = mine
    else:
        scope, newest = "process", _last_broadcast
    return {
        "channel_layer": "redis",
        "reachable": reachable,
        "check_ms": round((time.perf_counter() - started) * 1000, 1),
        "last_broadcast_scope": scope,
        "_last_broadcast": newest,
    }
