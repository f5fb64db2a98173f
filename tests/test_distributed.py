"""The indicator engine on Dask (metrics.distributed) against the engine in memory (metrics.engine).

Parity: on a sample city whose history files were written from its store, every indicator on every level for every
window (the dashboard's and the history's: a year, the same window last year) is the same figure both ways, on a
LocalCluster of two worker processes this test starts. The sample city ends on 3 December 2026: its orders span
November (closed) and December, so "today" leaves November out for the windowed figures and reads it for the
snapshots (open and overdue orders), and a wrong declaration in ``WINDOWED`` shows here.

Fault tolerance: a scheduler and two workers started as separate processes on loopback (the ``dask`` CLIs); one
worker is killed (SIGKILL) while it computes a partition, and the result is still the right one.
"""
from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from distributed import Client, LocalCluster, get_task_stream
from distributed.diagnostics.plugin import WorkerPlugin

from layers.city import load_city
from layers.history import History, HistoryError, write_history
from layers.specs import CITY_TIMEZONE, LEVELS
from metrics import distributed, engine
from metrics.registry import INDICATORS
from metrics.spec import HISTORY_WINDOWS, WINDOWS, named_window
from sample_data.__main__ import build

REPO_ROOT = Path(__file__).resolve().parent.parent
DASK = Path(sys.executable).parent / "dask"
END = pd.Timestamp("2026-12-03 16:00", tz=CITY_TIMEZONE)
KEY = ["level", "code", "indicator"]


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    folder = tmp_path_factory.mktemp("distributed")
    store = build("test", f"sqlite:///{folder / 'city.sqlite'}", progress=False, end=END)
    write_history(store, folder / "history")
    return load_city(store), History(folder / "history")


@pytest.fixture(scope="module")
def client():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, memory_limit="1GiB", host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as dask_client:
        yield dask_client


def assert_same_table(expected: pd.DataFrame, actual: pd.DataFrame) -> None:
    """The same rows and figures (to float summation order: partitions add in another order than one bincount)
    and the same states, except a value that lies on a threshold step to the last digits, which either side of
    that summation order may put in either state."""
    expected = expected.sort_values(KEY).reset_index(drop=True)
    actual = actual.sort_values(KEY).reset_index(drop=True)
    assert list(actual.columns) == list(expected.columns)
    assert (actual[KEY].to_numpy() == expected[KEY].to_numpy()).all()
    for column in ("value", "numerator", "denominator"):
        a, e = actual[column].to_numpy(float), expected[column].to_numpy(float)
        wrong = ~np.isclose(a, e, rtol=1e-9, atol=1e-9, equal_nan=True)
        assert not wrong.any(), (column, expected.loc[wrong, KEY + [column]].head(), a[wrong][:5])
    differ = actual["state"].to_numpy() != expected["state"].to_numpy()
    for row in np.flatnonzero(differ):
        indicator = INDICATORS[expected.at[row, "indicator"]]
        value = expected.at[row, "value"]
        steps = [s.value for s in indicator.thresholds.steps[1:]] if indicator.thresholds else []
        assert any(math.isclose(value, step, rel_tol=1e-9) for step in steps), expected.loc[row].to_dict()


@pytest.mark.parametrize("window_name", [*WINDOWS, *HISTORY_WINDOWS])
def test_dask_engine_equals_the_engine_in_memory(sample, client, window_name):
    city, history = sample
    window = named_window(window_name, city.as_of)
    run = distributed.Run()
    table = distributed.compute(history, window, city, levels=LEVELS, client=client, run=run)
    assert_same_table(engine.compute(city, window, levels=LEVELS), table)
    assert run.partitions > 0 and run.bytes_read > 0
    assert set(table["indicator"]) == set(INDICATORS)


def test_the_year_figures_are_the_whole_history(sample, client):
    """A year holds every order of the sample: its volume is their count, read from both months' files."""
    city, history = sample
    table = distributed.compute(history, named_window("12m", city.as_of), city, ["order_volume"], ["city"],
                                client=client)
    assert table["value"].iloc[0] == len(history.read("orders", columns=["order_id"])) == len(city["orders"])


def test_windowed_figures_skip_months_outside_the_window_and_snapshots_read_them(sample):
    city, history = sample
    today = named_window("today", city.as_of)
    ids = ["order_volume", "open_orders", "active_alarms"]
    jobs = {(p.layer, p.month): [ids[r] for r in rows] for p, rows in distributed.plan(history, today, ids)}
    assert jobs == {("orders", "2026-11"): ["open_orders"], ("orders", "2026-12"): ["order_volume", "open_orders"],
                    ("alarms", "2026-12"): ["active_alarms"]}


def test_without_a_cluster_the_same_tasks_run_here(sample):
    city, history = sample
    window = named_window("7d", city.as_of)
    ids = ["order_volume", "on_time_rate", "orders_per_10k_residents", "pm25_mean", "buildings"]
    assert_same_table(engine.compute(city, window, ids), distributed.compute(history, window, city, ids))


def test_a_history_of_another_city_is_refused(sample, tmp_path):
    city, history = sample
    other = build("test", f"sqlite:///{tmp_path / 'other.sqlite'}", progress=False, end=END, seed=7)
    with pytest.raises(HistoryError, match="another unit hierarchy"):
        distributed.compute(history, named_window("7d", city.as_of), load_city(other), ["order_volume"])


def test_big_windows_go_to_the_scheduler_named_by_the_environment(sample, client, monkeypatch):
    """A window the city in memory does not hold runs on the cluster of $CITYTWIN_DASK_SCHEDULER (here the
    module's LocalCluster: its task log shows the partitions); one it holds is computed in memory."""
    city, history = sample
    monkeypatch.setenv(distributed.SCHEDULER_VARIABLE, client.scheduler.address)
    year = named_window("12m", city.as_of)
    assert distributed.needs_history(year, city)
    with get_task_stream(client) as stream:
        table = distributed.compute_window(city, year, history, ["order_volume"], ["city"])
    assert any(str(t["key"]).startswith("partition_sums") for t in stream.data)
    assert table["value"].iloc[0] == len(city["orders"])
    week = named_window("7d", city.as_of)
    assert not distributed.needs_history(week, city)
    assert_same_table(engine.compute(city, week, ["on_time_rate"]),
                      distributed.compute_window(city, week, history, ["on_time_rate"]))


def test_a_scheduler_address_that_is_not_one_is_named():
    with pytest.raises(ValueError, match="CITYTWIN_DASK_SCHEDULER='localhost' is not a scheduler address"):
        with distributed.dask_client(address="localhost"):
            pass


# --- a worker killed mid-run ------------------------------------------------------------------------------------

class HoldPartitionsOn(WorkerPlugin):
    """On the worker named ``victim``: once a partition's task starts there, mark it in ``marker`` and hold the
    worker's event loop, so that the task cannot report back before the test kills the worker."""

    def __init__(self, victim: str, marker: str):
        self.victim, self.marker = victim, marker

    def setup(self, worker):
        self.worker = worker

    def transition(self, key, start, finish, **kwargs):
        name = key if isinstance(key, str) else str(key)
        if self.worker.name == self.victim and finish == "executing" and name.startswith("partition_sums"):
            Path(self.marker).write_text(name)
            while True:  # until SIGKILL
                time.sleep(0.05)


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(condition, what: str, timeout: float = 120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_worker_killed_mid_run_leaves_the_result_right(sample, tmp_path):
    city, history = sample
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO_ROOT), str(Path(__file__).parent)]))
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    processes = [subprocess.Popen([str(DASK), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                                   "--no-dashboard"], cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)]
    try:
        for name in ("victim", "survivor"):
            processes.append(subprocess.Popen(
                [str(DASK), "worker", address, "--name", name, "--nthreads", "1", "--no-nanny",
                 "--memory-limit", "1GiB", "--no-dashboard", "--host", "127.0.0.1"],
                cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        with distributed.dask_client(address=address) as client:
            client.wait_for_workers(2, timeout=120)
            workers = {info["name"]: addr for addr, info in client.scheduler_info()["workers"].items()}
            victim_pid = client.run(os.getpid, workers=[workers["victim"]])[workers["victim"]]
            assert victim_pid == processes[1].pid
            marker = tmp_path / "held"
            client.register_plugin(HoldPartitionsOn("victim", str(marker)), name="hold")
            window = named_window("12m", city.as_of)
            result = {}
            thread = threading.Thread(target=lambda: result.update(
                table=distributed.compute(history, window, city, client=client)))
            thread.start()
            held = _wait_for(lambda: marker.exists() and marker.read_text(), "a partition to start on the victim")
            processing = client.processing(workers=[workers["victim"]])[workers["victim"]]
            assert any(str(key) == held for key in processing), (held, processing)
            os.kill(victim_pid, signal.SIGKILL)
            thread.join(timeout=300)
            assert not thread.is_alive(), "the run did not finish after the worker was killed"
            assert processes[1].wait(timeout=30) == -signal.SIGKILL
            assert list(client.scheduler_info()["workers"]) == [workers["survivor"]]
        assert_same_table(engine.compute(city, window), result["table"])
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
