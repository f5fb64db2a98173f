"""The live stream's changes, read from the store once per machine and taken in by every process from here.

With a stream writing every second, every process that shows the city (each web worker, the jobs process) used to
read the same new rows from the store at each of its refreshes: the sensors reported on, the hours of readings
touched, the alarms — a third of a web worker's refresh, and three readers of a store the stream is writing to.
Now one publisher (a thread of the jobs process, :func:`publish_every`) reads them at the store's arrival marks and
writes each step here; the other processes take the steps in (:meth:`StreamSpool.changes_for`) and read the store
only for what the stream did not write (an operator's action, an import) or when the publisher has gone quiet.

A step holds what changed between two positions of the stream (the arrival marks of the sensors and readings, the
alarms' version), as :class:`layers.city.SensorChanges`. Steps follow each other (one's end is the next one's start)
until something other than the stream wrote a sensor layer: the publisher then starts a new chain, and a process
behind it reads the store once itself. The changes from a position ``a`` to ``c`` are whole for every city at a
position ``b`` between them: the sensors reported on since ``a`` and the hours of readings touched since ``a`` are
a superset of those since ``b``, each read at ``c``, so a city that read part of them already takes in newer rows.

Each step is a folder (Arrow IPC files of the rows as stored, a ``step.json``), written under a temporary name and
renamed into place, so a reader never sees half of one. The spool sits beside the store's snapshot folder; steps
older than :data:`KEEP_SECONDS` are removed by the publisher. Like the snapshot, it is a cache: the store stays the
source of truth.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow.feather as feather

from layers.city import City, SensorChanges, came_from_the_stream, sensors_reported_since, stream_marks
from layers.city_settings import timezone as city_timezone
from layers.load import decode_frame, encode_frame, load_layer
from layers.retention import hourly_readings_arrived
from layers.snapshot import read_stored, snapshot_folder, stored_table
from layers.specs import LAYERS
from layers.store import Store

KEEP_SECONDS = 120.0
"""How long a step is kept: a process that has not refreshed for longer reads the store once itself."""

QUIET_SECONDS = 10.0
"""A publisher that has not written its heartbeat for this long (at least) is taken for gone: the processes read the
store themselves again."""

FORMAT = 1


def spool_folder(store: Store) -> Path:
    folder = snapshot_folder(store)
    return folder.with_name(f"{folder.name}.stream")


def position_of(marks: dict, versions: dict) -> dict:
    """Where a reader of the stream stands: the sensors' and readings' arrival marks, the alarms' version."""
    return {"sensors": tuple(marks["sensors"]), "readings": tuple(marks["readings"]),
            "alarms": (int(versions.get("alarms") or 0),)}


def city_position(city: City, versions: dict | None = None) -> dict | None:
    """``city``'s position in the stream (``versions``: its sensor layers' versions, when ``city`` already carries
    another layer's newer ones); None when it does not know its marks (read whole from a snapshot)."""
    if not all(layer in city.arrival_marks for layer in ("sensors", "readings")):
        return None
    return position_of(city.arrival_marks, city.versions if versions is None else versions)


def _between(low: dict, position: dict, high: dict) -> bool:
    return all(all(a <= b <= c for a, b, c in zip(low[layer], position[layer], high[layer]))
               for layer in ("sensors", "readings", "alarms"))


def _frozen(position: dict) -> tuple:
    return tuple(position[layer] for layer in ("sensors", "readings", "alarms"))


def _reach(position: dict) -> int:
    """How far the stream had come at ``position`` (every counter grows): to pick the furthest of two chains."""
    return sum(sum(mark) for mark in _frozen(position))


def _at_or_after(position: dict, other: dict) -> bool:
    return all(all(b >= c for b, c in zip(position[layer], other[layer]))
               for layer in ("sensors", "readings", "alarms"))


@dataclass(frozen=True)
class Step:
    """What the stream changed between the positions ``start`` and ``end``, read at ``clock``."""

    start: dict
    end: dict
    changes: SensorChanges
    versions: dict  # the sensor layers' versions at ``end``
    clock: pd.Timestamp


NOTHING_NEW = "nothing new"
""":meth:`StreamSpool.changes_for`: the publisher is at work and has nothing newer than the city."""


class StreamSpool:
    """The steps of the stream in one folder: written by the publisher, read by every process of the machine."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.read_from = "store"  # where this process took the stream's last changes from ("spool" or "store")
        self._metas: dict[str, dict] = {}  # step folder name → its step.json (a step never changes once written)

    @classmethod
    def of(cls, store: Store) -> "StreamSpool":
        return cls(spool_folder(store))

    # --- the publisher ----------------------------------------------------------------------------------------

    def publish(self, step: Step) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns():020d}-{os.getpid()}"
        fresh = self.folder / f".{name}.new"
        fresh.mkdir()
        try:
            for layer, frame in step.changes.fresh.items():
                feather.write_feather(stored_table(encode_frame(layer, frame)), fresh / f"{layer}.arrow",
                                      compression="lz4")
            (fresh / "step.json").write_text(json.dumps({
                "format": FORMAT, "start": step.start, "end": step.end, "versions": step.versions,
                "clock": step.clock.isoformat(), "marks": step.changes.marks,
                "since": None if step.changes.since is None else step.changes.since.isoformat(),
                "readings_arrived": step.changes.readings_arrived, "layers": sorted(step.changes.fresh)}))
            fresh.rename(self.folder / name)
        except BaseException:
            shutil.rmtree(fresh, ignore_errors=True)
            raise
        return self.folder / name

    def beat(self) -> None:
        """Say that the publisher is at work (it writes a step only when the stream wrote something)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "heartbeat").touch()

    def prune(self) -> None:
        oldest = time.time_ns() - int(KEEP_SECONDS * 1e9)
        for path in self.folder.iterdir():
            name = path.name.lstrip(".").split("-")[0]
            if path.is_dir() and name.isdigit() and int(name) < oldest:
                shutil.rmtree(path, ignore_errors=True)

    # --- every process -----------------------------------------------------------------------------------------

    def publisher_at_work(self) -> bool:
        try:
            return time.time() - (self.folder / "heartbeat").stat().st_mtime < QUIET_SECONDS
        except OSError:
            return False

    def _steps(self) -> list[tuple[str, dict]]:
        try:
            names = sorted(path.name for path in self.folder.iterdir()
                           if path.is_dir() and not path.name.startswith("."))
        except OSError:
            return []
        steps = []
        for name in names:
            meta = self._metas.get(name)
            if meta is None:
                try:
                    meta = json.loads((self.folder / name / "step.json").read_text())
                except (OSError, ValueError):
                    continue  # removed meanwhile (pruned), or not ours
                if meta.get("format") != FORMAT:
                    continue
                for key in ("start", "end"):
                    meta[key] = {layer: tuple(mark) for layer, mark in meta[key].items()}
                self._metas[name] = meta
            steps.append((name, meta))
        self._metas = {name: meta for name, meta in steps}
        return steps

    def changes_for(self, city: City, versions: dict | None = None) -> Step | str | None:
        """The stream's changes since ``city``'s position (see :func:`city_position`), merged into one step;
        :data:`NOTHING_NEW` when the publisher is at work and has nothing newer; None when the city must read the
        store itself (no publisher, the city's position unknown or not in the chain of steps kept, a city without
        readings)."""
        here = city_position(city, versions)
        readings = city.layers.get("readings")
        if here is None or readings is None or not len(readings) or not self.publisher_at_work():
            return None
        steps = self._steps()
        onwards = [step for step in steps if _between(step[1]["start"], here, step[1]["end"])
                   and step[1]["end"] != here]
        if not onwards:
            # At the end of a step, or ahead of them all (this city read the store itself later): nothing to take
            # in yet. Behind every step kept, or beside a broken chain: the store, once.
            caught_up = not steps or any(meta["end"] == here for _, meta in steps) \
                or _at_or_after(here, steps[-1][1]["end"])
            return NOTHING_NEW if caught_up else None
        # From each step that takes the city further, the steps that follow it (one's end, the next one's start),
        # and of those chains the one that reaches furthest (two publishers on one store — two servers on one
        # machine — write two chains into the spool).
        by_start = {_frozen(meta["start"]): (name, meta) for name, meta in steps}
        chains = []
        for step in onwards:
            chain = [step]
            while (following := by_start.get(_frozen(chain[-1][1]["end"]))) is not None and len(chain) <= len(steps):
                chain.append(following)
            chains.append(chain)
        chain = max(chains, key=lambda chain: _reach(chain[-1][1]["end"]))
        try:
            return merged([self._read(name, meta) for name, meta in chain])
        except Exception:  # noqa: BLE001 — pruned while read, cut short, another release's: the store, this once
            return None

    def _read(self, name: str, meta: dict) -> Step:
        fresh = {layer: decode_frame(LAYERS[layer], read_stored(self.folder / name / f"{layer}.arrow"))
                 for layer in meta["layers"]}
        zone = city_timezone()
        since = None if meta["since"] is None else pd.Timestamp(meta["since"]).tz_convert(zone)
        changes = SensorChanges(fresh, {layer: tuple(mark) for layer, mark in meta["marks"].items()},
                                readings_arrived=meta["readings_arrived"], since=since)
        return Step(meta["start"], meta["end"], changes, dict(meta["versions"]),
                    pd.Timestamp(meta["clock"]).tz_convert(zone))


def merged(steps: list[Step]) -> Step:
    """Consecutive steps as one: each layer's rows of the later steps replace the earlier ones' (the newer read);
    the alarms are the last read's, whole."""
    if len(steps) == 1:
        return steps[0]
    fresh, marks, since, arrived = {}, {}, None, False
    for step in steps:
        for layer, frame in step.changes.fresh.items():
            fresh.setdefault(layer, []).append(frame)
        marks.update(step.changes.marks)
        if step.changes.since is not None:
            since = step.changes.since if since is None else min(since, step.changes.since)
        arrived = arrived or step.changes.readings_arrived
    keys = {"sensors": ["sensor_id"], "readings": ["sensor_id", "ts"]}
    joined = {}
    for layer, frames in fresh.items():
        if layer in keys:
            joined[layer] = (pd.concat(frames, ignore_index=True)
                             .drop_duplicates(keys[layer], keep="last").reset_index(drop=True))
        else:
            joined[layer] = frames[-1]
    changes = SensorChanges(joined, marks, readings_arrived=arrived, since=since)
    return Step(steps[0].start, steps[-1].end, changes, steps[-1].versions, steps[-1].clock)


def read_step(store: Store, start: dict | None) -> tuple[Step | None, dict]:
    """What the stream wrote since the position ``start``, read now: the step (None when nothing changed, or when
    ``start`` is None or something other than the stream wrote a sensor layer since — the chain starts again) and
    the position it ends at."""
    marks = stream_marks(store)
    # The sensors' and readings' versions as read with their marks; the alarms' read after them (alarms read later
    # than their version are at least as new: the next step reads them again).
    alarms = store.layer_versions().get("alarms", {}).get("version", 0)
    versions = {"sensors": marks["sensors"][0], "readings": marks["readings"][0], "alarms": int(alarms)}
    end = position_of(marks, versions)
    clock = pd.Timestamp.now(tz=city_timezone()).floor("s")
    if start is None or end == start:
        return None, end
    if not all(came_from_the_stream(layer, start[layer], end[layer]) for layer in ("sensors", "readings")):
        return None, end
    fresh = {}
    if end["sensors"] != start["sensors"]:
        fresh["sensors"] = sensors_reported_since(store, start["sensors"])
    if end["alarms"] != start["alarms"]:
        fresh["alarms"] = load_layer(store, "alarms")
    since = None
    if end["readings"] != start["readings"]:
        fresh["readings"] = hourly_readings_arrived(store, start["readings"][1])
        since = fresh["readings"]["ts"].min() if len(fresh["readings"]) else None
    moved = {layer: end[layer] for layer in ("sensors", "readings") if end[layer] != start[layer]}
    changes = SensorChanges(fresh, moved, readings_arrived="readings" in fresh, since=since)
    return Step(start, end, changes, versions, clock), end


def publish_every(store: Store, seconds: float, stop: threading.Event | None = None) -> None:
    """The publisher's loop (a thread of the jobs process): every ``seconds`` (or as long as the last read took, if
    longer) what the stream wrote since is read once and written to the spool for every process of the machine."""
    stop = stop or threading.Event()
    spool = StreamSpool.of(store)
    position = None
    while not stop.is_set():
        started = time.monotonic()
        try:
            step, position = read_step(store, position)
            if step is not None:
                spool.publish(step)
            spool.beat()
            spool.prune()
        except Exception as error:  # noqa: BLE001 — the processes read the store themselves until the next step
            print(f"citytwin: publishing the stream's changes failed: {error!r}", file=sys.stderr, flush=True)
            position = None
        stop.wait(max(seconds, time.monotonic() - started))
