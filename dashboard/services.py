"""The one bridge from the dashboard to ``layers`` and ``metrics``, memoised on the layer versions.

Pages call :func:`get` for the configured :class:`Services`. Everything a page shows comes from here as plain data
(tables, GeoJSON of a handful of admin units); no city-scale geometry ever goes to the browser from here: a view
shows the children of one unit, simplified as a coverage so that shared edges stay shared.
"""
from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from layers.city import City, load_city, with_orders_read_again
from dashboard.maps.sources import order_cells, sensor_states
from layers.specs import CITY_TIMEZONE, LAYERS, LEVELS, METRIC_CRS
from layers.store import Store
from layers.workorders import WorkOrders
from metrics.engine import compare, rank_among_siblings, series
from metrics.hotspots import detect_hotspots
from metrics.score import explain_score, vital_scores
from metrics.registry import INDICATORS
from metrics.spec import WINDOWS, Window, named_window

# Simplification tolerance (degrees) by the level of the units drawn: about 80 m for districts down to 5 m for grids.
SIMPLIFY = {"city": 0.001, "district": 0.0008, "street": 0.0003, "community": 0.00012, "grid": 0.00005}
# How often the loaded city checks the store's layer versions. CITYTWIN_VERSION_CHECK_SECONDS overrides it. Above 0,
# a change is read in a background thread while requests go on with the city as it was (seconds at the city scale:
# with requests arriving all day, nobody should wait for them); 0 checks on every request and reads the change before
# answering (browser tests, an operator who wants an action on the KPIs at once).
VERSION_CHECK_SECONDS = float(os.environ.get("CITYTWIN_VERSION_CHECK_SECONDS", 30))


@dataclass
class Generation:
    """One loaded city and everything computed from it. A refresh builds a new one and swaps it in whole; a view
    (``unit_view``) takes one generation for all it shows, and results are written into the generation they were
    computed from, so a swap never leaves an old figure in the new generation's memos."""

    city: City
    tables: dict = field(default_factory=dict)
    geojson: dict = field(default_factory=dict)
    hotspots: dict = field(default_factory=dict)
    series: dict = field(default_factory=dict)
    memo: dict = field(default_factory=dict)


def escalation_minutes(environ=None) -> float:
    """How often the supervision sweep runs: ``CITYTWIN_ESCALATION_MINUTES`` (default 10; 0 turns it off)."""
    text = (os.environ if environ is None else environ).get("CITYTWIN_ESCALATION_MINUTES", "10")
    try:
        minutes = float(text)
    except ValueError:
        raise SystemExit(f"error: CITYTWIN_ESCALATION_MINUTES={text!r} is not a number of minutes") from None
    if minutes < 0:
        raise SystemExit(f"error: CITYTWIN_ESCALATION_MINUTES={text!r} is negative; 0 turns the sweep off")
    return minutes


def alert_seconds(environ=None) -> float:
    """How often the alert rules are evaluated: ``CITYTWIN_ALERT_SECONDS`` (default 15; 0 turns it off)."""
    text = (os.environ if environ is None else environ).get("CITYTWIN_ALERT_SECONDS", "15")
    try:
        seconds = float(text)
    except ValueError:
        raise SystemExit(f"error: CITYTWIN_ALERT_SECONDS={text!r} is not a number of seconds") from None
    if seconds < 0 or seconds != seconds or seconds == float("inf"):
        raise SystemExit(f"error: CITYTWIN_ALERT_SECONDS={text!r} must be a number of seconds, 0 or more; "
                         "0 turns the evaluation off")
    return seconds


@dataclass(frozen=True)
class UnitDirectory:
    """Every administrative unit's code, level, names and parent (no geometry)."""

    version: int
    units: pd.DataFrame  # indexed by code

    @property
    def city(self) -> dict:
        return self.units[self.units["level"] == "city"].iloc[0].to_dict()

    def ancestor(self, codes: pd.Series, level: str) -> pd.Series:
        """The unit at ``level`` above (or at) each code; None where there is none."""
        found = pd.Series(np.where(self.units.reindex(codes)["level"].to_numpy() == level, codes, None),
                          index=codes.index, dtype=object)
        current = codes.astype(object)
        for _ in range(len(LEVELS)):
            current = self.units["parent_code"].reindex(current).set_axis(codes.index)
            at_level = self.units["level"].reindex(current).set_axis(codes.index).to_numpy() == level
            found = found.where(~at_level, current)
        return found

    def lineage(self, code: str | None) -> list[dict]:
        """The units from the city down to ``code`` (code, level, name, name_zh); empty for an unknown code."""
        chain = []
        while code is not None and code in self.units.index and len(chain) <= len(LEVELS):
            unit = self.units.loc[code]
            chain.append({k: unit[k] for k in ("code", "level", "name", "name_zh")})
            code = unit["parent_code"]
        return chain[::-1]

    def of_level(self, level: str) -> pd.DataFrame:
        return self.units[self.units["level"] == level].sort_values("code")


@dataclass(frozen=True)
class UnitView:
    code: str
    level: str
    name: str
    name_zh: str
    lineage: list[dict]          # [{code, level, name, name_zh}] from the city down to this unit
    child_level: str | None
    kpis: pd.DataFrame           # one row per indicator for this unit: value, previous, change, state, …
    children: pd.DataFrame       # one row per child unit for the selected indicator: code, name, value, state
    children_geojson: dict       # FeatureCollection of the children (simplified), properties: code, name, …
    bounds: tuple[float, float, float, float]
    as_of: pd.Timestamp
    score: float                 # composite vital-sign score, 0–100 (NaN without any judged indicator)
    score_explanation: pd.DataFrame  # what pulls the score down, costliest first (metrics.score.explain_score)
    sparklines: dict             # headline indicator id → its values over the window's steps, oldest first


class Services:
    def __init__(self, store: Store, progress: bool = False):
        self.store = store
        self.progress = progress
        self._gen: Generation | None = None
        self._checked_at = 0.0
        self._refreshing: threading.Thread | None = None
        self._lock = threading.Lock()
        self._work_orders: WorkOrders | None = None
        self._directory: UnitDirectory | None = None
        self._open_orders: tuple | None = None
        self._log_mark = 0  # the newest transition-log row the loaded city has seen

    # --- data ---------------------------------------------------------------------------------------------------

    def city(self) -> City:
        """The loaded city. Every :data:`VERSION_CHECK_SECONDS` the store's layer versions are compared with it; a
        change is read in the background (or at once when the interval is 0) and swapped in when ready."""
        return self._current().city

    def _current(self) -> Generation:
        with self._lock:
            now = time.monotonic()
            if self._gen is None:
                self._log_mark = self._work_orders_unlocked().last_transition()
                self._gen = Generation(load_city(self.store, progress=self.progress))
                self._checked_at = now
            elif now - self._checked_at >= VERSION_CHECK_SECONDS and self._refreshing is None:
                self._checked_at = now
                versions = {k: v["version"] for k, v in self.store.layer_versions().items()}
                if versions != self._gen.city.versions:
                    if VERSION_CHECK_SECONDS > 0:
                        self._refreshing = threading.Thread(target=self._refresh, args=(self._gen, versions),
                                                            daemon=True, name="refresh-city")
                        self._refreshing.start()
                    else:
                        self._gen = self._next_generation(self._gen, self._reloaded(self._gen.city, versions))
            return self._gen

    def _refresh(self, old: Generation, versions: dict[str, int]) -> None:
        """The background refresh: the new city, then the windows' tables and sparklines that were in use, so the
        first request after the swap does not compute them either."""
        try:
            new = self._next_generation(old, self._reloaded(old.city, versions))
            for window in list(old.tables):
                new.tables[window] = window_table(new.city, window)
            for window in list(old.series):
                new.series[window] = window_series(new.city, window)
            with self._lock:
                self._gen = new
        except Exception as error:  # noqa: BLE001 — the old city goes on being served; the next check tries again
            print(f"citytwin: reading the store's changes failed, still serving the city as of "
                  f"{old.city.as_of}: {error!r}", file=sys.stderr, flush=True)
        finally:
            with self._lock:
                self._refreshing = None

    @staticmethod
    def _next_generation(old: Generation, city: City) -> Generation:
        """A generation for ``city``; the units' simplified GeoJSON carries over while the units are the same."""
        same_units = city.versions.get("units") == old.city.versions.get("units")
        return Generation(city, geojson=old.geojson if same_units else {})

    def wait_for_refresh(self, timeout: float | None = None) -> None:
        """Block until a background refresh under way has been swapped in (benchmarks, tests)."""
        thread = self._refreshing
        if thread is not None:
            thread.join(timeout)

    def _reloaded(self, city: City, versions: dict[str, int]) -> City:
        """``city`` after the store changed. When only work-order actions changed it (the orders' version moved
        by exactly the number of new rows in the transition log), only the orders they touched are read again:
        about a second at the city scale instead of 50 (every order read again). One refresh runs at a time."""
        changed = {k for k in versions.keys() | city.versions.keys() if versions.get(k) != city.versions.get(k)}
        if changed == {"orders"} and "orders" in city.layers:
            order_ids, mark, steps = self._work_orders_unlocked().changed_since(self._log_mark)
            if steps == versions["orders"] - city.versions.get("orders", 0):
                self._log_mark = mark
                return with_orders_read_again(city, self.store, order_ids, versions)
        self._log_mark = self._work_orders_unlocked().last_transition()
        return load_city(self.store)

    def work_orders(self) -> WorkOrders:
        """The work-order service over this store (reads and writes go straight to the store, not the cache)."""
        with self._lock:
            return self._work_orders_unlocked()

    def _work_orders_unlocked(self) -> WorkOrders:
        if self._work_orders is None:
            self._work_orders = WorkOrders(self.store)
        return self._work_orders

    def alerts(self):
        """The alert book over this store (layers.alerts.AlertBook), filing its work orders through the same
        work-order service as the screens."""
        from layers.alerts import AlertBook
        with self._lock:
            if getattr(self, "_alerts", None) is None:
                self._alerts = AlertBook(self.store, self._work_orders_unlocked())
            return self._alerts

    def evaluate_alerts(self, now: pd.Timestamp | None = None) -> list:
        """One evaluation of the alert rules against the store and the loaded city (metrics.alert_runner)."""
        from metrics.alert_runner import evaluate
        return evaluate(self.store, now, city=self.city(), table_of=self.table, book=self.alerts())

    def directory(self) -> UnitDirectory:
        """Names and parents of every unit, read again only when the units layer changes. The work-order screens
        name places with it: an action on an order bumps the orders' version, which makes :meth:`city` reload the
        whole city (seconds at the city scale), and those screens must not wait for that."""
        version = self.store.layer_version("units")
        with self._lock:
            if self._directory is None or self._directory.version != version:
                units = self.store.read_frame("units", ["code", "level", "name", "name_zh", "parent_code"])
                self._directory = UnitDirectory(version, units.set_index("code", drop=False).rename_axis(None))
            return self._directory

    def open_orders(self, fresh: bool = False) -> tuple[pd.DataFrame, pd.Timestamp]:
        """Every open order (the supervision board's clocks run on them) with its district, and when they were read.

        At the city scale that is some 330,000 rows and 2 s of reading, so they are read again only when the orders
        changed and the last read is older than the version check interval (30 s; 0 in tests), or when ``fresh``
        (right after the escalation sweep). The cards themselves are computed at the moment of each request.
        """
        version = self.store.layer_version("orders")
        with self._lock:
            cached = self._open_orders
        now = time.monotonic()
        if cached is not None and not fresh and (cached[0] == version or now - cached[1] < VERSION_CHECK_SECONDS):
            return cached[2], cached[3]
        read_at = pd.Timestamp.now(tz=CITY_TIMEZONE)
        orders = self.work_orders().open_orders_frame()
        orders = orders.assign(district=self.directory().ancestor(orders["grid_code"], "district").to_numpy())
        with self._lock:
            self._open_orders = (version, now, orders, read_at)
        return orders, read_at

    def table(self, window: str) -> pd.DataFrame:
        """Every indicator, every unit, for a named window and the one before it."""
        return self._table(self._current(), window)

    @staticmethod
    def _table(gen: Generation, window: str) -> pd.DataFrame:
        return remembered(gen.tables, window, lambda: window_table(gen.city, window))

    def hotspots(self, window: str) -> pd.DataFrame:
        """Recurring hotspots of the window (metrics.hotspots), with the names of their type and place."""
        gen = self._current()
        city = gen.city
        if window not in gen.hotspots:
            found = detect_hotspots(city, named_window(window, city.as_of))
            event_types = city["event_types"].set_index("code") if "event_types" in city.layers else None
            names = event_types["name"] if event_types is not None else pd.Series(dtype=object)
            found = found.assign(
                event_name=found["event_type"].map(names).fillna(found["event_type"]),
                place=found["grid_code"].map(city.units["name"]),
                district=found["grid_code"].map(city.hierarchy["district"]).map(city.units["name"]))
            gen.hotspots[window] = found
        return gen.hotspots[window]

    def series(self, window: str) -> pd.DataFrame:
        """The headline indicators over the window's steps (hours of today, days of 7 and 30 days), every unit,
        indexed by (code, indicator) with the values in step order."""
        return self._series(self._current(), window)

    @staticmethod
    def _series(gen: Generation, window: str) -> pd.DataFrame:
        return remembered(gen.series, window, lambda: window_series(gen.city, window))

    def memo(self, key, compute):
        """``compute()``, remembered under ``key`` until the city is reloaded (map sources, tile indexes, …)."""
        # A new generation, with an empty memo, once the store changed.
        return remembered(self._current().memo, key, compute)

    def warm(self, windows=("7d",)) -> None:
        for window in windows:
            self.table(window)
            self.series(window)

    # --- views --------------------------------------------------------------------------------------------------

    def resolve_unit(self, code: str | None) -> str:
        """The unit asked for, or the city when the code is missing or unknown."""
        return resolved_unit(self.city(), code)

    def unit_view(self, code: str | None, indicator_id: str, window: str) -> UnitView:
        gen = self._current()  # one generation for the whole view, even if a refresh swaps in meanwhile
        city = gen.city
        code = resolved_unit(city, code)
        unit = city.units.loc[code]
        table = self._table(gen, window)
        rows = table.loc[code].reset_index(drop=True)
        kpis = rows.set_index("indicator").reindex(list(INDICATORS))
        level_index = LEVELS.index(unit["level"])
        child_level = LEVELS[level_index + 1] if level_index + 1 < len(LEVELS) else None
        children_units = city.children(code)
        keys = [(child, indicator_id) for child in children_units.index]
        values = table.reindex(keys).reset_index(drop=True).assign(code=pd.Series(children_units.index,
                                                                                    dtype=object))
        children = (children_units[["code", "name", "name_zh"]].reset_index(drop=True)
                    .merge(values[["code", "value", "previous", "change", "state"]], on="code", how="left"))
        children["state"] = children["state"].fillna("no_data")
        lineage = [dict(code=c, level=city.units.at[c, "level"], name=city.units.at[c, "name"],
                        name_zh=city.units.at[c, "name_zh"]) for c in city.lineage(code)]
        shown = children_units if len(children_units) else city.units.loc[[code]]
        return UnitView(
            code=code, level=unit["level"], name=unit["name"], name_zh=unit["name_zh"], lineage=lineage,
            child_level=child_level, kpis=kpis, children=children,
            children_geojson=self._geojson_of(gen, code),
            bounds=tuple(shown.total_bounds), as_of=city.as_of,
            score=float(vital_scores(rows)["score"].iloc[0]),
            score_explanation=explain_score(rows, code),
            sparklines=self._series(gen, window).loc[code].to_dict())


    def base_geojson(self) -> dict:
        """The base map's land: the city's top-level units (its districts), simplified."""
        return self._children_geojson(self.resolve_unit(None))

    def sensor_states(self) -> pd.DataFrame:
        """Every sensor with its state at the data's now (dashboard.maps.sources.sensor_states)."""
        return self.memo("sensor_states", lambda: sensor_states(self.city()))

    def order_cells(self) -> np.ndarray:
        """The H3 cell of every order (dashboard.maps.sources.order_cells): 2.4 s at the city scale, once."""
        return self.memo("order_cells", lambda: order_cells(self.city()))

    def building_card(self, building_id: str | None) -> BuildingCard | None:
        if not building_id or "buildings" not in self.city().layers:
            return None
        states = self.sensor_states()
        latest = self.memo("latest_readings", lambda: latest_readings(self.city()))
        return self.memo(("building_card", building_id),
                         lambda: building_card(self.city(), building_id, states, latest))

    def grid_buildings(self, code: str) -> pd.DataFrame:
        """The buildings of a grid cell, those with open alarms first, then the tallest."""
        city = self.city()
        buildings = city["buildings"]
        by_cell = self.memo("buildings_by_grid", lambda: buildings.groupby("grid_code", sort=False).indices)
        rows = buildings.iloc[by_cell.get(code, [])].drop(columns="geometry")
        states = self.sensor_states()
        alarmed = states[states["state"].isin(["warning", "critical"])]["building_id"]
        rows = rows.assign(alarm=rows["building_id"].isin(set(alarmed)))
        return rows.sort_values(["alarm", "height_m"], ascending=[False, False])

    def playback_period(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        """The day that playback replays: the 24 hours up to the data's now."""
        end = self.city().as_of + pd.Timedelta(microseconds=1)
        return end - pd.Timedelta(hours=PLAYBACK_HOURS), end

    def playback_kpis(self, code: str | None, indicator_id: str, hour: int) -> pd.DataFrame:
        """The unit's headline KPIs (and the selected indicator) for the replayed day up to ``hour`` hours in,
        each against the same length of time before; one row per indicator like :attr:`UnitView.kpis`."""
        code = self.resolve_unit(code)
        table = self.playback_table(int(min(max(hour, 1), PLAYBACK_HOURS)), indicator_id)
        return table.loc[code].reset_index(drop=True).set_index("indicator").reindex(list(INDICATORS))

    def playback_table(self, hour: int, indicator_id: str | None = None) -> pd.DataFrame:
        """The headline indicators (and one more) of every unit for the replayed day's first ``hour`` hours. Every
        level at once: the grid sums cost the same for one level or five, so an hour is computed once for all."""
        headline = {i for i, ind in INDICATORS.items() if ind.headline}
        ids = tuple(sorted(headline | ({indicator_id} - {None})))

        def compute():
            start, _ = self.playback_period()
            window = Window(start, start + pd.Timedelta(hours=hour), f"first {hour} h")
            table = rank_among_siblings(compare(self.city(), window, list(ids)), self.city().units)
            return table.set_index(["code", "indicator"], drop=False).sort_index()

        return self.memo(("playback", hour, ids), compute)

    def warm_playback(self) -> None:
        """The replayed day's 24 hours of headline figures, ahead of anyone pressing play (about 20 s of
        background work at the city scale, 1 s a hour; an indicator off the headline is computed when asked)."""
        for hour in range(1, PLAYBACK_HOURS + 1):
            self.playback_table(hour)

    def layer_freshness(self) -> dict[str, pd.Timestamp]:
        """The newest record of each stored layer (its time column's latest value, else when it was written)."""
        city = self.city()
        return self.memo("freshness", lambda: layer_freshness(city, self.store.layer_versions()))

    def _children_geojson(self, code: str) -> dict:
        return self._geojson_of(self._current(), code)

    @staticmethod
    def _geojson_of(gen: Generation, code: str) -> dict:
        return remembered(gen.geojson, code, lambda: children_geojson(gen.city, code))


def remembered(memo: dict, key, compute):
    """``memo[key]``, computed by ``compute()`` the first time."""
    if key not in memo:
        memo[key] = compute()
    return memo[key]


def resolved_unit(city: City, code: str | None) -> str:
    """``code`` if the city has that unit, else the city's own code."""
    units = city.units
    if code and code in units.index:
        return code
    return units.index[units["level"] == "city"][0]


def window_table(city: City, window: str) -> pd.DataFrame:
    """Every indicator of every unit for a named window and the one before it, indexed by (code, indicator): a view
    reads one unit's rows, not a scan of 800,000."""
    if window not in WINDOWS:
        raise ValueError(f"unknown window {window!r}")
    table = compare(city, named_window(window, city.as_of))
    return rank_among_siblings(table, city.units).set_index(["code", "indicator"], drop=False).sort_index()


def window_series(city: City, window: str) -> pd.DataFrame:
    """The headline indicators over a named window's steps (hours of today, days of 7 and 30 days), every unit,
    indexed by (code, indicator) with the values in step order."""
    named = named_window(window, city.as_of)
    steps = max(1, int(np.ceil(named.days * 24))) if window == "today" else int(round(named.days))
    headline = [i for i, ind in INDICATORS.items() if ind.headline]
    points = series(city, named, headline, steps)
    return points.sort_values("step").groupby(["code", "indicator"], sort=True)["value"].agg(list)


def layer_freshness(city: City, versions: dict[str, dict]) -> dict[str, pd.Timestamp]:
    freshness = {}
    for layer_id, version in versions.items():
        spec = LAYERS.get(layer_id)
        frame = city.layers.get(layer_id)
        if spec is not None and spec.time_column and frame is not None and len(frame):
            freshness[layer_id] = frame[spec.time_column].max()
        else:
            freshness[layer_id] = pd.Timestamp(version["written_at"], unit="s", tz="UTC").tz_convert(CITY_TIMEZONE)
    return freshness


def children_geojson(city: City, code: str) -> dict:
    """The children of a unit (or the unit itself, for a grid cell) as simplified GeoJSON."""
    children = city.children(code)
    if not len(children):
        children = city.units.loc[[code]]
    level = children["level"].iloc[0]
    geometries = children.geometry.to_numpy()
    try:
        # Simplify siblings together so that their shared edges stay shared (no slivers, no overlaps).
        simplified = shapely.coverage_simplify(geometries, SIMPLIFY[level])
    except Exception:  # an invalid coverage (e.g. imported boundaries that overlap): simplify one by one
        simplified = shapely.simplify(geometries, SIMPLIFY[level], preserve_topology=True)
    simplified = shapely.set_precision(simplified, 1e-5)
    features = []
    for row, geometry in zip(children.itertuples(), simplified):
        point = geometry.representative_point() if not geometry.is_empty else None
        features.append({
            "type": "Feature",
            "geometry": shapely.geometry.mapping(geometry),
            "properties": {"code": row.code, "name": row.name, "name_zh": row.name_zh, "level": row.level,
                           "label_point": [round(point.x, 5), round(point.y, 5)] if point else None},
        })
    return {"type": "FeatureCollection", "features": features}


@dataclass(frozen=True)
class BuildingCard:
    building: dict               # the building's row: id, use, height, floors, year, residents, high-rise flag
    grid_code: str
    lineage: list[dict]          # the grid cell's lineage, city first
    bounds: tuple[float, float, float, float]
    sensors: pd.DataFrame        # its sensors: kind, status, state, open alarm, last reading and its time
    fire: dict                   # fire-IoT status: detectors, online, in alarm, state (high-rises have detectors)
    open_orders: pd.DataFrame    # open orders within ORDER_RADIUS_M of the footprint, newest first
    as_of: pd.Timestamp


ORDER_RADIUS_M = 50.0
PLAYBACK_HOURS = 24


def latest_readings(city: City) -> pd.DataFrame:
    """Each sensor's last reading (value, ts), indexed by sensor id."""
    if "readings" not in city.layers or not len(city["readings"]):
        return pd.DataFrame({"value": pd.Series(dtype=float), "ts": pd.Series(dtype="datetime64[ns, UTC]")})
    readings = city["readings"]
    last = readings["ts"].groupby(readings["sensor_id"]).idxmax()
    return readings.loc[last.to_numpy(), ["sensor_id", "value", "ts"]].set_index("sensor_id")


def building_card(city: City, building_id: str, sensor_states: pd.DataFrame,
                  latest: pd.DataFrame | None = None) -> BuildingCard | None:
    """What the building card shows, or None for an unknown building."""
    buildings = city["buildings"]
    match = np.flatnonzero(buildings["building_id"].to_numpy() == building_id)
    if not len(match):
        return None
    row = buildings.iloc[match[0]]
    sensors = sensor_states[sensor_states["building_id"] == building_id].copy()
    if latest is None:
        latest = latest_readings(city)
    latest = latest[latest.index.isin(sensors["sensor_id"])]
    if len(latest):  # alarm-only kinds (smoke, …) have sensors but no readings
        sensors["last_value"] = sensors["sensor_id"].map(latest["value"])
        sensors["last_at"] = sensors["sensor_id"].map(latest["ts"])
    else:
        sensors["last_value"] = np.nan
        sensors["last_at"] = pd.NaT
    smoke = sensors[sensors["kind"] == "smoke"]
    in_alarm = int(smoke["state"].isin(["warning", "critical"]).sum())
    offline = int(smoke["status"].isin(["offline", "fault"]).sum())
    fire_state = ("no_data" if not len(smoke) else "critical" if in_alarm else "watch" if offline else "good")
    fire = {"detectors": int(len(smoke)), "online": int(len(smoke) - offline), "in_alarm": in_alarm,
            "state": fire_state, "high_rise": bool(row["high_rise_100m"])}
    open_orders = pd.DataFrame(columns=["order_id", "event_type", "status", "received_at", "deadline_at"])
    if "orders" in city.layers:
        orders = city["orders"]
        cell = row["grid_index"] if "grid_index" in row else city.hierarchy.index.get_loc(row["grid_code"])
        in_cell = orders["grid_index"].to_numpy() == cell  # integers: a string compare of 3 M orders is 0.3 s
        near = orders[in_cell]
        near = near[near["status"] != "closed"]
        if len(near):
            footprint = gpd.GeoSeries([row.geometry], crs="EPSG:4326").to_crs(METRIC_CRS).iloc[0]
            points = gpd.GeoSeries(gpd.points_from_xy(near["lon"], near["lat"]), crs="EPSG:4326").to_crs(METRIC_CRS)
            distance = points.distance(footprint).to_numpy()
            open_orders = (near[distance <= ORDER_RADIUS_M].assign(distance_m=distance[distance <= ORDER_RADIUS_M])
                           .sort_values("received_at", ascending=False))
    lineage = [dict(code=c, level=city.units.at[c, "level"], name=city.units.at[c, "name"],
                    name_zh=city.units.at[c, "name_zh"]) for c in city.lineage(row["grid_code"])]
    building = {k: row[k] for k in ("building_id", "use", "height_m", "floors", "year_built", "residents",
                                    "high_rise_100m")}
    return BuildingCard(building=building, grid_code=row["grid_code"], lineage=lineage,
                        bounds=tuple(row.geometry.bounds), sensors=sensors, fire=fire, open_orders=open_orders,
                        as_of=city.as_of)


_services: Services | None = None


def configure(database_url: str | None = None, progress: bool = False) -> Services:
    global _services
    _services = Services(Store(database_url), progress=progress)
    return _services


def get() -> Services:
    if _services is None:
        return configure()
    return _services
