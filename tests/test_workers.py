"""Several web workers behind one port (CITYTWIN_WORKERS): they serve the same generation, follow a change of the
store together, and the master replaces a worker that dies while the others go on serving."""
from __future__ import annotations

import json
import os
import signal
import time

import pytest

from layers.store import Store
from sample_data.__main__ import build
from tests.test_live import write_readings


@pytest.fixture(scope="module")
def city_url(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('workers') / 'city.sqlite'}"
    build("test", url, progress=False)
    return url


def ask(base) -> dict:
    """The generation a worker serves (``base`` is the signed-in AppURL that serve_app returns)."""
    # A new connection each time (a kept-alive one would stay with one worker).
    answer = base.http.get(base + "/api/generation", timeout=60, headers={"Connection": "close"})
    answer.raise_for_status()
    return answer.json()


def answers_until(base: str, wanted, tries: int = 400) -> dict[int, str]:
    """Ask until ``wanted(generations by worker)`` holds (each request lands on whichever worker accepts it)."""
    seen: dict[int, str] = {}
    for _ in range(tries):
        answer = ask(base)
        seen[answer["worker"]] = answer["generation"]
        if wanted(seen):
            return seen
        time.sleep(0.05)
    raise AssertionError(f"never held; last answers by worker: {seen}")


def test_two_workers_serve_one_generation_and_follow_a_change_together(serve_app, city_url, monkeypatch):
    monkeypatch.setenv("CITYTWIN_WORKERS", "2")
    monkeypatch.setenv("CITYTWIN_VERSION_CHECK_SECONDS", "0.5")
    base = serve_app(city_url, timeout=180)
    first = answers_until(base, lambda seen: len(seen) == 2)
    assert len(set(first.values())) == 1, first  # both workers hold the city the master loaded
    workers = set(first)

    store = Store(city_url)
    sensor = store.read_frame("sensors", ["sensor_id", "kind"]).query("kind == 'pm25'")["sensor_id"].iloc[0]
    write_readings(store, [dict(sensor_id=sensor, ts=int(time.time()) - 7 * 86400, value=42.0)])
    old = next(iter(first.values()))
    after = answers_until(base, lambda seen: set(seen) >= workers and all(seen[w] != old for w in workers),
                          tries=2000)
    assert len({after[w] for w in workers}) == 1, after


def test_a_killed_worker_is_replaced_while_the_other_serves(serve_app, city_url, monkeypatch):
    monkeypatch.setenv("CITYTWIN_WORKERS", "2")
    base = serve_app(city_url, timeout=180)
    first = answers_until(base, lambda seen: len(seen) == 2)
    victim = min(first)
    os.kill(victim, signal.SIGKILL)
    failures = 0
    seen: set[int] = set()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            seen.add(ask(base)["worker"])
        except (OSError, ValueError):  # requests' connection errors are OSErrors; a cut answer is not JSON
            failures += 1
        if seen - set(first):
            break
        time.sleep(0.05)
    assert victim not in seen
    assert seen - set(first), "no new worker took the killed one's place"
    assert failures <= 1  # at most the one request the dying worker held


@pytest.mark.postgis
def test_two_worker_groups_on_one_postgresql_serve_and_follow_one_generation(serve_app, postgis_db_url, monkeypatch):
    """A second machine joins by pointing at the same PostgreSQL: here two separate servers (two worker groups, each
    with its own master) on loopback."""
    build("test", postgis_db_url, progress=False)
    monkeypatch.setenv("CITYTWIN_WORKERS", "2")
    monkeypatch.setenv("CITYTWIN_VERSION_CHECK_SECONDS", "0.5")
    monkeypatch.setenv("CITYTWIN_ESCALATION_MINUTES", "0")  # the jobs run on one machine only
    groups = [serve_app(postgis_db_url, timeout=300), serve_app(postgis_db_url, timeout=300)]
    first = [answers_until(base, lambda seen: len(seen) == 2) for base in groups]
    keys = {key for seen in first for key in seen.values()}
    assert len(keys) == 1, first

    store = Store(postgis_db_url)
    sensor = store.read_frame("sensors", ["sensor_id", "kind"]).query("kind == 'pm25'")["sensor_id"].iloc[0]
    write_readings(store, [dict(sensor_id=sensor, ts=int(time.time()) - 7 * 86400, value=42.0)])
    (old,) = keys
    after = [answers_until(base, lambda seen, workers=set(seen): set(seen) >= workers
                           and all(seen[w] != old for w in workers), tries=2000)
             for base, seen in zip(groups, first)]
    assert len({key for seen in after for key in seen.values() if key != old}) == 1, after
