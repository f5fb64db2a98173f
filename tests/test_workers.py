"""Several web workers behind one port (CITYTWIN_WORKERS): they serve the same generation, follow a change of the
store together, and the master replaces a worker that dies while the others go on serving."""
from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

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


def test_with_the_stream_both_workers_take_its_changes_from_the_jobs_process_and_agree(serve_app, city_url,
                                                                                       monkeypatch):
    """Live mode with the simulator: the jobs process reads the stream's changes once and publishes them
    (layers.stream_spool); each worker takes them from there, not from the store, and both serve the same
    generation (the publisher's clock and versions) once they have taken the same step."""
    monkeypatch.setenv("CITYTWIN_WORKERS", "2")
    monkeypatch.setenv("CITYTWIN_MODE", "live")
    monkeypatch.setenv("CITYTWIN_SIMULATE", "20")
    monkeypatch.setenv("CITYTWIN_VERSION_CHECK_SECONDS", "1")
    base = serve_app(city_url, timeout=180)
    seen: dict[int, dict] = {}
    for _ in range(3000):
        ask(base)  # a page's poll: the worker that answers follows the store (GET /health only looks)
        answer = base.http.get(base + "/health", timeout=60, headers={"Connection": "close"})
        answer.raise_for_status()
        generation = answer.json()["parts"]["generation"]
        seen[generation["worker"]] = generation
        if len(seen) == 2 and all(g["stream_from"] == "spool" for g in seen.values()) \
                and len({g["key"] for g in seen.values()}) == 1:
            break
        time.sleep(0.05)
    assert len(seen) == 2 and {g["stream_from"] for g in seen.values()} == {"spool"}, seen
    assert len({g["key"] for g in seen.values()}) == 1, seen


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


def drive_body(dependencies: list[dict], search: str) -> dict:
    """The tour's ``drive`` callback as the browser posts it when the URL carries ``?tour=…`` (from the server's
    own callback map, so the body follows the callback's inputs; the browser's own step reads the tour's name)."""
    from urllib.parse import parse_qs

    from tests.callback_requests import body

    entry = next(d for d in dependencies if "tour-state.data" in d["output"] and not d.get("clientside_function")
                 and d["inputs"][0] == {"id": "tour-asked", "property": "data"})
    return body(entry["output"], entry, [{"tour": parse_qs(search.lstrip("?"))["tour"][0], "search": search}])


def test_a_tour_step_starts_its_incident_on_the_jobs_process_simulator(serve_app, city_url, monkeypatch):
    """Issue 13: with two web workers the simulator runs in the jobs process; a drill's step, answered by either
    worker, asks it through the store (layers/incident_requests.py) and the incident plays (its fire alarm is
    stored by the jobs process)."""
    from layers.incident_requests import INCIDENT_REQUESTS
    from tests.mqtt_harness import wait_for

    monkeypatch.setenv("CITYTWIN_WORKERS", "2")
    monkeypatch.setenv("CITYTWIN_MODE", "live")
    monkeypatch.setenv("CITYTWIN_SIMULATE", "5")
    base = serve_app(city_url, timeout=180)
    answers_until(base, lambda seen: len(seen) == 2)  # both workers up, neither runs a simulator
    started = time.time()
    dependencies = base.http.get(base + "/_dash-dependencies", timeout=60).json()
    answer = base.http.post(base + "/_dash-update-component", json=drive_body(dependencies, "?tour=fire-drill"),
                            timeout=120, headers={"Connection": "close"})
    answer.raise_for_status()
    note = answer.json()["response"]["tour-state"]["data"]["note"]
    assert "live mode with the simulator" not in note["en"], note  # what a worker said before: nothing started

    store = Store(city_url)

    def request_row():
        with store.engine.connect() as conn:
            rows = conn.execute(INCIDENT_REQUESTS.select()).mappings().all()
        return rows[-1] if rows and rows[-1]["status"] not in ("pending", "taken") else None

    row = wait_for(request_row, 120, "the jobs process's simulator to answer the drill's request")
    assert (row["spec"], row["status"], row["requested_by"]) == ("fire", "started", base.account), dict(row)
    if "started" in note["en"]:  # the simulator answered while the worker waited: the step names the place
        assert note["en"].endswith(f"started at {row['place']}"), note
    else:
        assert "asked of the simulator" in note["en"], note
    # The fire plays: its smoke detector's alarm is written by the jobs process.
    sensors = store.read_frame("sensors", ["sensor_id", "building_id"])
    detectors = set(sensors.loc[sensors["building_id"] == row["place"], "sensor_id"])
    assert detectors

    def fire_alarm():
        alarms = store.read_frame("alarms", ["sensor_id", "raised_at"])
        return bool(((alarms["raised_at"] >= started - 5) & alarms["sensor_id"].isin(detectors)).any())

    wait_for(fire_alarm, 120, "the fire alarm of the drill's building")


def test_the_jobs_process_is_forked_from_the_warm_master_and_stops_with_it(serve_app, city_url, monkeypatch):
    """The jobs process shares the master's city copy-on-write, as the workers do (a process of its own loaded a
    whole second city: 2.4 GB of 5.9 at the city scale), and it is stopped with the master."""
    monkeypatch.setenv("CITYTWIN_WORKERS", "2")
    base = serve_app(city_url, timeout=180)
    workers = set(answers_until(base, lambda seen: len(seen) == 2))

    def parent(pid: int) -> int:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])

    def children(pid: int) -> set[int]:
        return {int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _parent_or_none(parent, p)
                == pid}

    (master,) = {parent(worker) for worker in workers}
    jobs = children(master) - workers
    assert len(jobs) == 1, (master, workers, jobs)
    (job,) = jobs
    # Forked, not a new interpreter started with --jobs-only: the master's own command line.
    assert Path(f"/proc/{job}/cmdline").read_bytes() == Path(f"/proc/{master}/cmdline").read_bytes()
    os.kill(master, signal.SIGTERM)
    from tests.mqtt_harness import wait_for

    wait_for(lambda: not (Path(f"/proc/{job}").exists() and _running(job)), 120,
             "the jobs process to stop with the master")


def _parent_or_none(parent, entry) -> int | None:
    try:
        return parent(int(entry.name))
    except (OSError, IndexError, ValueError):
        return None


def _running(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped by its parent, does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
