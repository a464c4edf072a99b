"""The benchmarks keep working: bench/fanout.py end to end at a tiny size (its figures mean
nothing at this size and nothing here looks at them), and how it reads a screen's version."""

import importlib.util
import json
import os
import re
import subprocess
import sys

import pytest
from django.db import connection

from tests.conftest import ROOT, _test_database_url


def load_fanout():
    spec = importlib.util.spec_from_file_location("bench_fanout", ROOT / "bench" / "fanout.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_screens_version_is_read_from_a_snapshot_a_patch_or_a_batch():
    fanout = load_fanout()
    version, base = fanout.message_version, fanout.message_base
    snapshot = json.dumps({"type": "snapshot", "version": 12, "html": '<li data-v="3">'})
    assert (version(snapshot), base(snapshot)) == (12, None)
    patch = json.dumps({"type": "patch", "from": 12, "version": 13, "rows": [{"version": 2}]})
    assert (version(patch), base(patch)) == (13, 12)
    assert version(json.dumps({"type": "patch", "base": 4, "to": 5})) == 5
    assert version(json.dumps({"data": {"version": 7}})) == 7
    assert version(json.dumps([{"version": 3}, {"version": 5}, {"x": 1}])) == 5
    assert version(b'{"version": 9}') == 9
    for nothing in ("", "not json", "[]", '{"version": "9"}', '{"version": true}', "null"):
        assert version(nothing) is None


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_the_fanout_benchmark_runs_end_to_end(settings):
    env = {
        **os.environ,
        "DATABASE_URL": _test_database_url(),
        "DATABASE_OWNER_URL": _test_database_url(owner=True) if settings.DATABASE_OWNER else "",
        "REDIS_URL": settings.TEST_REDIS_URL,
    }
    tiny = "--quick --ns 0,2 --runs 2 --warmup 0 --checkins 12 --clients 2 --burst-screens 2"
    result = subprocess.run(
        [sys.executable, "bench/fanout.py", *tiny.split(), "--waiting", "2", "--timeout", "60"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    out = result.stdout
    # The latency table: no screen, then 2 screens next to the plain broadcasts and the ratios.
    assert re.search(r"^\| 0 \| [\d.,]+ / [\d.,]+ \| \u2013 \|", out, re.MULTILINE)
    # The message: the patch a screen gets after a change, next to its snapshot on connect.
    message = r"[\d.,]+ KB \(snapshot on connect [\d.,]+ KB\)"
    assert re.search(
        r"^\| 2 \| {t} \| {t} \| {t} and {t} \| {r} / {r} \| {m} \|$".format(
            t=r"[\d.,]+ / [\d.,]+", r=r"[\d,]+\u00d7", m=message
        ),
        out,
        re.MULTILINE,
    )
    # The bursts: no errors, and the screens reached the final version.
    assert re.search(r"^\| 0 \| [\d.]+ \| 0 \| ", out, re.MULTILINE)
    assert re.search(r"^\| 2 \| [\d.]+ \| 0 \| [\d.,]+ / [\d.,]+ \| -?[\d.,]+ ms \|", out, re.M)
    assert "did not stop on SIGTERM" not in out


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_http_path_benchmark_runs_end_to_end(settings):
    env = {
        **os.environ,
        "DATABASE_URL": _test_database_url(),
        "DATABASE_OWNER_URL": _test_database_url(owner=True) if settings.DATABASE_OWNER else "",
    }
    tiny = "--threads 1,2 --checkins 6 --clients 2 --processes 1"
    connection.close()  # the script counts every backend on the database but its own
    result = subprocess.run(
        [sys.executable, "bench/http_path.py", *tiny.split()],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    # One row per HTTP_THREADS, no errors; one process of 1 or 2 threads holds 1 or 2 backends.
    rows = re.findall(
        r"^\| (\d) \| [\d.]+ \| (\d+) \| [^|]+\|[^|]+\| [\d.]+ \| (\d+) \|", result.stdout, re.M
    )
    assert [(threads, errors) for threads, errors, _most in rows] == [("1", "0"), ("2", "0")]
    assert all(int(most) <= int(threads) for threads, _errors, most in rows)
