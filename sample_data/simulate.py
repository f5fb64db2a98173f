"""A live sample city: the sample city's sensors report with diurnal patterns, and incidents can be played.

    python -m sample_data.simulate --database-url sqlite:///data/citytwin.sqlite              # in-process
    python -m sample_data.simulate --broker mqtt://127.0.0.1:1883 --rate 200                  # over MQTT
    python -m sample_data.simulate --incident pm25_episode:440306 --incident fire

Without ``--broker`` it writes straight into the store through the ingest's own batch writer
(:class:`layers.ingest.BatchWriter`): the same rows, arrival numbers, versions and sensor status as the MQTT path, and
no broker to run. With ``--broker`` it publishes our compact JSON (docs/ingest.md) for ``python -m layers.ingest``.

The measuring sensors (PM2.5, noise, water level, traffic flow) report in turn so that the whole city makes
``rate`` readings a second (each sensor every ``sensors / rate`` seconds, staggered); the others (smoke detectors,
manhole covers, streetlights, electrical monitors) send a heartbeat every :data:`HEARTBEAT_SECONDS`. Values follow
the sample generator's daily shapes (rush hours for PM2.5 and traffic, day and night for noise, a tide for water). A
measuring sensor raises its own threshold alarm when a reading crosses its kind's limit and clears it when it falls
back (as the generator's alarms do).

Incidents (``KIND[:place]``):

``pm25_episode[:district]``  PM2.5 over a district rises by 70 µg/m³ for :data:`INCIDENT_SECONDS` (default: the
                             district with the most PM2.5 monitors)
``fire[:building_id]``       a smoke detector in a high-rise above 100 m raises a critical alarm (default: the
                             tallest such building with a detector)
``storm[:district]``         the water gauges of a district rise by up to 2.2 m over half an hour and stay up
``hotspot[:grid_code]``      a burst of :data:`HOTSPOT_ORDERS` orders of one type in one grid cell, filed through the
                             work-order intake (default: the cell with the most orders, its commonest type)

Python API (what app.py or the engine calls)::

    simulator = Simulator(store, now=time.time(), rate=100)
    simulator.start_incident("fire")
    written = simulator.step(time.time())      # a StepResult: what this step wrote
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import signal
import sys
import threading
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import shapely

from layers.ingest import MEASURING_KINDS, Batch, BatchWriter
from layers.reference import READING_ALARM_LIMITS
from layers.city_settings import timezone as city_timezone
from layers.store import Store

log = logging.getLogger("citytwin.simulate")

HEARTBEAT_SECONDS = 300.0
INCIDENT_SECONDS = 3 * 3600.0
HOTSPOT_ORDERS = 12
STORM_RISE_M = 2.2
STORM_RISE_SECONDS = 1800.0
PM25_EPISODE_RISE = 70.0
MAX_CATCH_UP_SECONDS = 3600.0  # a step after a long pause writes at most the last hour, not a day of backlog
CLEAR_BELOW = 0.9  # a threshold alarm clears below 90 % of its limit: a value hovering at the limit does not flap
INCIDENT_KINDS = ("pm25_episode", "fire", "storm", "hotspot")


@dataclass
class Incident:
    kind: str
    place: str
    started_at: float
    ends_at: float
    detail: dict = field(default_factory=dict)


@dataclass
class StepResult:
    """What one step wrote (or published): counts, and the incidents' effects."""

    readings: int = 0
    heartbeats: int = 0
    alarms_raised: int = 0
    alarms_cleared: int = 0
    orders: list[str] = field(default_factory=list)
    batch: Batch | None = None


class Simulator:
    """The sample city's sensors, reporting from ``now`` on. ``publish`` (``topic, payload -> None``) sends over
    MQTT instead of writing to the store; orders always go through the store's work-order intake."""

    def __init__(self, store: Store, now: float | None = None, rate: float = 50.0, seed: int = 20231,
                 publish=None):
        if not rate > 0:
            raise ValueError(f"rate {rate!r}: readings per second must be more than 0")
        self.store = store
        self.rate = float(rate)
        self.rng = np.random.default_rng(seed)
        self.publish = publish
        self.writer = None if publish else BatchWriter(store, source="simulator")
        self.clock = time.time() if now is None else float(now)
        sensors = store.read_frame("sensors", ["sensor_id", "kind", "grid_code", "building_id", "status"])
        sensors = sensors[sensors["status"] != "fault"].sort_values("sensor_id").reset_index(drop=True)
        self.measuring = sensors[sensors["kind"].isin(MEASURING_KINDS)].reset_index(drop=True)
        self.quiet = sensors[~sensors["kind"].isin(MEASURING_KINDS)].reset_index(drop=True)
        if not len(self.measuring):
            raise ValueError(f"{store.url}: the city has no measuring sensors to simulate")
        self.kinds = self.measuring["kind"].to_numpy()
        self.districts = self.measuring["grid_code"].str[:6].to_numpy()
        # Each sensor's own level (a site differs from the average a little) and its place in the round.
        self.site_factor = self.rng.lognormal(0, 0.08, len(self.measuring))
        self.phase = self.rng.uniform(0, 1, len(self.measuring))
        self.heartbeat_phase = self.rng.uniform(0, 1, len(self.quiet))
        self.over_limit = np.zeros(len(self.measuring), dtype=bool)
        self.open_alarm: dict[int, str] = {}
        self.incidents: list[Incident] = []
        self._workorders = None
        self._lock = threading.Lock()  # a screen may start an incident while the background thread steps

    @property
    def interval(self) -> float:
        """Seconds between two readings of one sensor."""
        return len(self.measuring) / self.rate

    # --- incidents --------------------------------------------------------------------------------------------------

    def start_incident(self, kind: str, place: str | None = None, duration: float = INCIDENT_SECONDS) -> Incident:
        """Start an incident now (see the module's doc); returns it, with where it happens."""
        with self._lock:
            return self._start_incident(kind, place, duration)

    def _start_incident(self, kind: str, place: str | None, duration: float) -> Incident:
        if kind not in INCIDENT_KINDS:
            raise ValueError(f"unknown incident {kind!r}; incidents: {', '.join(INCIDENT_KINDS)}")
        start = self.clock
        if kind in ("pm25_episode", "storm"):
            sensor_kind = "pm25" if kind == "pm25_episode" else "water_level"
            of_kind = self.districts[self.kinds == sensor_kind]
            if not len(of_kind):
                raise ValueError(f"the city has no {sensor_kind} sensors for a {kind}")
            if place is None:
                values, counts = np.unique(of_kind, return_counts=True)
                place = str(values[np.argmax(counts)])
            elif place not in set(of_kind):
                raise ValueError(f"{kind}: district {place!r} has no {sensor_kind} sensors; districts with some: "
                                 f"{', '.join(sorted(set(of_kind)))}")
            incident = Incident(kind, place, start, start + duration)
        elif kind == "fire":
            building_id, sensor_id = self._fire_place(place)
            incident = Incident(kind, building_id, start, start + duration, {"sensor_id": sensor_id})
        else:
            incident = Incident(kind, place or "", start, start + duration)
        self.incidents.append(incident)
        log.info("incident %s at %s", kind, incident.place)
        return incident

    def _fire_place(self, building_id: str | None) -> tuple[str, str]:
        """The building above 100 m that burns and the smoke detector in it."""
        buildings = self.store.read_frame("buildings", ["building_id", "height_m", "high_rise_100m"])
        tall = buildings[buildings["high_rise_100m"].astype(bool)]
        detectors = self.quiet[(self.quiet["kind"] == "smoke") & self.quiet["building_id"].isin(tall["building_id"])]
        if building_id is None:
            if not len(detectors):
                raise ValueError("no smoke detector in a building above 100 m: no fire to play")
            heights = tall.set_index("building_id")["height_m"]
            building_id = max(detectors["building_id"], key=lambda b: heights[b])
        elif building_id not in set(tall["building_id"]):
            raise ValueError(f"fire: {building_id!r} is not a building above 100 m")
        here = detectors[detectors["building_id"] == building_id]
        if not len(here):
            raise ValueError(f"fire: building {building_id!r} has no smoke detector")
        return building_id, str(here["sensor_id"].iloc[0])

    # --- one step -----------------------------------------------------------------------------------------------

    def run_in_background(self, step_seconds: float = 1.0) -> tuple[threading.Event, threading.Thread]:
        """Step on the wall clock every ``step_seconds`` in a daemon thread (what ``make run`` needs: a living city
        without a broker). Returns (stop event, thread): ``stop.set()`` ends it after the current step. A failed
        step (the database busy) is logged and the next one catches up."""
        stop = threading.Event()

        def loop():
            while not stop.wait(step_seconds):
                try:
                    self.step()
                except Exception:
                    log.exception("simulator step failed; the next step catches up")

        thread = threading.Thread(target=loop, name="citytwin-simulator", daemon=True)
        thread.start()
        return stop, thread

    def step(self, now: float | None = None) -> StepResult:
        """Everything due between the last step and ``now`` (epoch seconds; default the wall clock): readings,
        heartbeats, threshold alarms, incidents' effects. Written in one batch (or published)."""
        with self._lock:
            return self._step(now)

    def _step(self, now: float | None) -> StepResult:
        now = time.time() if now is None else float(now)
        since = max(self.clock, now - MAX_CATCH_UP_SECONDS)
        self.clock = max(self.clock, now)
        result = StepResult()
        batch = Batch()
        if now > since:
            self._readings(since, now, batch, result)
            self._heartbeats(since, now, batch, result)
        for incident in list(self.incidents):
            self._play(incident, now, batch, result)
            if now >= incident.ends_at:
                self.incidents.remove(incident)
        result.batch = batch
        self._send(batch)
        return result

    def _due(self, phases: np.ndarray, interval: float, since: float, now: float):
        """(row, instant) of every report in (since, now] of sensors reporting every ``interval`` from ``phase``."""
        offset = phases * interval
        first = np.floor((since - offset) / interval) + 1
        last = np.floor((now - offset) / interval)
        counts = np.maximum(last - first + 1, 0).astype(int)
        rows = np.repeat(np.arange(len(phases)), counts)
        ks = np.concatenate([np.arange(f, f + c) for f, c in zip(first[counts > 0], counts[counts > 0])]) \
            if counts.any() else np.array([])
        # Whole seconds, rounded up: an instant stays inside (since, now], never on ``since`` (a reading already there).
        return rows, np.ceil(ks * interval + offset[rows]).astype(int) if len(rows) else np.array([], dtype=int)

    def _readings(self, since: float, now: float, batch: Batch, result: StepResult) -> None:
        rows, instants = self._due(self.phase, self.interval, since, now)
        if not len(rows):
            return
        values = self.values(rows, instants)
        sensor_ids = self.measuring["sensor_id"].to_numpy()
        batch.readings += list(zip(sensor_ids[rows].tolist(), instants.tolist(), values.tolist()))
        result.readings += len(rows)
        self._threshold_alarms(rows, instants, values, batch, result)

    def values(self, rows: np.ndarray, instants: np.ndarray) -> np.ndarray:
        """The readings of sensors ``rows`` at ``instants``: the generator's daily shapes, plus the incidents."""
        local = pd.to_datetime(instants, unit="s", utc=True).tz_convert(city_timezone())
        hour = (local.hour + local.minute / 60).to_numpy()
        day = instants / 86400.0
        kind = self.kinds[rows]
        noise = self.rng.normal(0, 1, len(rows))
        rush = np.exp(-((hour - 8.5) ** 2) / 3) + np.exp(-((hour - 18.5) ** 2) / 4)
        values = np.select(
            [kind == "pm25", kind == "noise", kind == "water_level", kind == "traffic_flow"],
            [28 + 10 * rush + 4 * noise + 8 * np.sin(day / 2.0),
             52 + 9 * np.clip(np.sin((hour - 6) / 24 * 2 * np.pi), 0, None) + 2 * noise,
             1.0 + 0.15 * np.sin(hour / 12.4 * 2 * np.pi) + 0.03 * noise,
             300 + 1600 * rush + 80 * noise])
        values = values * self.site_factor[rows]
        for incident in self.incidents:
            inside = self.districts[rows] == incident.place
            active = (instants >= incident.started_at) & (instants < incident.ends_at)
            if incident.kind == "pm25_episode":
                values = np.where(inside & active & (kind == "pm25"), values + PM25_EPISODE_RISE, values)
            elif incident.kind == "storm":
                risen = STORM_RISE_M * np.clip((instants - incident.started_at) / STORM_RISE_SECONDS, 0, 1)
                values = np.where(inside & active & (kind == "water_level"), values + risen, values)
        return np.maximum(values, 0).round(2)

    def _threshold_alarms(self, rows, instants, values, batch: Batch, result: StepResult) -> None:
        limits = np.array([READING_ALARM_LIMITS.get(k, math.inf) for k in self.kinds[rows]])
        sensor_ids = self.measuring["sensor_id"].to_numpy()
        for row, instant, value, limit in zip(rows.tolist(), instants.tolist(), values.tolist(), limits.tolist()):
            over = value > limit
            if over and not self.over_limit[row]:
                alarm_id = f"{sensor_ids[row]}@{instant}"
                self.open_alarm[row] = alarm_id
                batch.alarms.append(dict(alarm_id=alarm_id, sensor_id=sensor_ids[row], kind=self.kinds[row],
                                         severity="critical" if value > 1.5 * limit else "warning",
                                         raised_at=instant, cleared_at=None,
                                         message=f"{self.kinds[row]} {value:g} over the limit {limit:g}"))
                result.alarms_raised += 1
            elif value < CLEAR_BELOW * limit and self.over_limit[row] and row in self.open_alarm:
                self._clear(self.open_alarm.pop(row), sensor_ids[row], self.kinds[row], instant, batch, result)
            self.over_limit[row] = over or (self.over_limit[row] and value >= CLEAR_BELOW * limit)

    def _clear(self, alarm_id, sensor_id, kind, instant, batch: Batch, result: StepResult) -> None:
        raised_at = int(alarm_id.rsplit("@", 1)[1])
        batch.alarms.append(dict(alarm_id=alarm_id, sensor_id=sensor_id, kind=kind, severity="warning",
                                 raised_at=raised_at, cleared_at=max(instant, raised_at), message="cleared"))
        result.alarms_cleared += 1

    def _heartbeats(self, since: float, now: float, batch: Batch, result: StepResult) -> None:
        rows, instants = self._due(self.heartbeat_phase, HEARTBEAT_SECONDS, since, now)
        sensor_ids = self.quiet["sensor_id"].to_numpy()
        batch.statuses += [(sensor_ids[r], int(t), "online") for r, t in zip(rows.tolist(), instants.tolist())]
        result.heartbeats += len(rows)

    def _play(self, incident: Incident, now: float, batch: Batch, result: StepResult) -> None:
        if incident.kind == "fire":
            sensor_id = incident.detail["sensor_id"]
            raised_at = int(incident.started_at)
            if not incident.detail.get("raised"):
                incident.detail["raised"] = True
                batch.alarms.append(dict(alarm_id=f"{sensor_id}@{raised_at}", sensor_id=sensor_id, kind="smoke",
                                         severity="critical", raised_at=raised_at, cleared_at=None,
                                         message=f"Fire alarm: smoke detected in high-rise {incident.place}"))
                result.alarms_raised += 1
            if now >= incident.ends_at:
                self._clear(f"{sensor_id}@{raised_at}", sensor_id, "smoke", int(incident.ends_at), batch, result)
        elif incident.kind == "hotspot" and not incident.detail.get("filed"):
            incident.detail["filed"] = True
            result.orders += self._file_hotspot(incident)

    def _file_hotspot(self, incident: Incident) -> list[str]:
        from layers.load import load_layer
        from layers.workorders import WorkOrders

        orders = self.store.read_frame("orders", ["grid_code", "event_type"])
        if not incident.place:
            if not len(orders):
                raise ValueError("hotspot: the city has no orders to pick a cell from; name one (hotspot:<grid>)")
            incident.place = str(orders["grid_code"].value_counts().index[0])
        in_cell = orders.loc[orders["grid_code"] == incident.place, "event_type"]
        cell = load_layer(self.store, "units", where=lambda t: t.c.code == incident.place)
        if not len(cell) or cell["level"].iloc[0] != "grid":
            raise ValueError(f"hotspot: {incident.place!r} is not a grid cell")
        if self._workorders is None:
            self._workorders = WorkOrders(self.store)
        rules = self._workorders.responsibility_list()
        # The cell's commonest type (a hotspot is more of what a place already suffers), else the list's first.
        event_type = str(in_cell.value_counts().index[0]) if len(in_cell) else sorted(rules.rules)[0]
        incident.detail["event_type"] = event_type
        polygon = cell.geometry.iloc[0]
        channel = self._workorders.channels()[0]  # the reference list's first: the 12345 hotline
        filed = []
        for point in _points_inside(polygon, HOTSPOT_ORDERS, self.rng):
            order = self._workorders.file_request(event_type=event_type, lon=point.x, lat=point.y,
                                                  description="Simulated hotspot report", channel=channel,
                                                  actor="simulator", at=pd.Timestamp(self.clock, unit="s", tz="UTC"))
            filed.append(order.order_id)
        return filed

    def _send(self, batch: Batch) -> None:
        if self.publish is None:
            if batch.readings or batch.statuses or batch.alarms:
                self.writer.write(batch)
            return
        for sensor_id, ts, value in batch.readings:
            self.publish(f"citytwin/{sensor_id}/reading", json.dumps({"ts": ts, "value": value}))
        for sensor_id, ts, status in batch.statuses:
            self.publish(f"citytwin/{sensor_id}/status", json.dumps({"ts": ts, "status": status}))
        for alarm in batch.alarms:
            body = {"id": alarm["alarm_id"], "raised_at": alarm["raised_at"], "severity": alarm["severity"],
                    "kind": alarm["kind"], "message": alarm["message"]}
            if alarm["cleared_at"] is not None:
                body["cleared_at"] = alarm["cleared_at"]
            self.publish(f"citytwin/{alarm['sensor_id']}/alarm", json.dumps(body))


def _points_inside(polygon, count: int, rng: np.random.Generator) -> list:
    minx, miny, maxx, maxy = polygon.bounds
    points = []
    while len(points) < count:
        candidates = shapely.points(rng.uniform(minx, maxx, count * 4), rng.uniform(miny, maxy, count * 4))
        points += [p for p in candidates if polygon.contains(p)][:count - len(points)]
    return points


def mqtt_publisher(broker: str, client_id: str = "citytwin-simulator"):
    """A QoS 1 publish function on a connected paho client (and the client, to close)."""
    from urllib.parse import urlparse

    import paho.mqtt.client as mqtt

    parsed = urlparse(broker)
    if parsed.scheme not in ("mqtt", "tcp") or not parsed.hostname:
        raise ValueError(f"broker {broker!r}: expected mqtt://host:port")
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False,
                         protocol=mqtt.MQTTv311)
    # No client-side window: paho scans its in-flight list on every PUBACK when one is set (quadratic at high rates).
    client.max_inflight_messages_set(0)
    client.connect(parsed.hostname, parsed.port or 1883, keepalive=30)
    client.loop_start()
    return (lambda topic, payload: client.publish(topic, payload, qos=1)), client


def main(argv: list[str] | None = None) -> int:
    from layers.store import default_database_url

    parser = argparse.ArgumentParser(prog="python -m sample_data.simulate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=None, help="the city to simulate (its sensors layer)")
    parser.add_argument("--broker", default=None, help="mqtt://host:port: publish there instead of writing in-process")
    parser.add_argument("--rate", type=float, default=50.0, help="readings per second, all sensors together")
    parser.add_argument("--incident", action="append", default=[], metavar="KIND[:place]",
                        help=f"play an incident now: {', '.join(INCIDENT_KINDS)}")
    parser.add_argument("--step", type=float, default=1.0, help="seconds between two steps")
    parser.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    store = Store(args.database_url or default_database_url())
    if not store.is_built():
        print(f"the database {store.url} has no city: run `make sample` first", file=sys.stderr)
        return 2
    publish, client = mqtt_publisher(args.broker) if args.broker else (None, None)
    try:
        simulator = Simulator(store, rate=args.rate, publish=publish)
        for spec in args.incident:
            kind, _, place = spec.partition(":")
            simulator.start_incident(kind, place or None)
    except ValueError as error:
        print(f"simulate: {error}", file=sys.stderr)
        return 2
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    started = time.monotonic()
    totals = StepResult()
    try:
        while not stopping and (args.duration is None or time.monotonic() - started < args.duration):
            result = simulator.step()
            totals.readings += result.readings
            totals.alarms_raised += result.alarms_raised
            totals.orders += result.orders
            time.sleep(max(0.0, args.step - (time.monotonic() - started) % args.step))
    except KeyboardInterrupt:
        pass
    finally:
        if client is not None:
            client.disconnect()
            client.loop_stop()
    print(f"simulated {totals.readings:,} readings, {totals.alarms_raised} alarms, {len(totals.orders)} orders")
    return 0


if __name__ == "__main__":
    sys.exit(main())
