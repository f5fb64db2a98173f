"""What the map layers draw, prepared from a loaded :class:`~layers.city.City` as small, view-sized data.

Pure functions of the city and the view; :class:`dashboard.services.Services` memoises them on the city's version.
Nothing here returns city-scale geometry: buildings go out as vector tiles (``dashboard/maps/tiles.py``), orders as
H3 counts or, for one unit, as binary columns, sensors as clusters until a unit is small enough to show them one by
one.
"""
from __future__ import annotations

from dataclasses import dataclass
from html import escape

import h3
import h3.api.numpy_int as h3_int
import numpy as np
import pandas as pd
import shapely
import shapely.geometry

from dashboard.theme import PALETTE, STATE_COLORS, rgba
from metrics.spec import STATE_RANK
from layers.city import City
from layers.reference import BUILDING_USES, SENSOR_KINDS

# H3 resolution of order bins by the level whose children the map shows (cells of ~5 km² at the city, ~0.1 km² in
# a street, ~0.015 km² in a community or grid cell).
HEX_RESOLUTION = {"province": 6, "city": 7, "district": 8, "street": 9, "community": 10, "grid": 10}
BASE_HEX_RESOLUTION = 10
SENSOR_CLUSTER_RESOLUTION = {"province": 5, "city": 6, "district": 7, "street": 8}
"""Sensors are drawn one by one from the community level down; above it, in H3 clusters of this resolution."""
RANKED_STATES = {rank: state for state, rank in STATE_RANK.items() if state not in ("no_data",)}

USE_COLORS = {
    "residential": "#4f8fc0", "commercial": "#d9a441", "office": "#8f7ad6", "industrial": "#8a8f98",
    "public": "#4fb58f", "mixed": "#c77a9b",
}
USE_NAMES = {code: (en, zh) for code, en, zh, *_ in BUILDING_USES}
SENSOR_KIND_NAMES = {code: (en, zh) for code, en, zh, *_ in SENSOR_KINDS}


def unit_grid_mask(city: City, code: str, frame: pd.DataFrame) -> np.ndarray:
    """Rows of a layer (with ``grid_index``) that lie in a unit."""
    level = city.units.at[code, "level"]
    if level == city.hierarchy.columns[0]:  # the top unit (the city, or a province store's province) holds all
        return np.ones(len(frame), dtype=bool)
    grids = city.hierarchy.index[city.hierarchy[level] == code]
    wanted = np.zeros(len(city.hierarchy) + 1, dtype=bool)
    wanted[city.hierarchy.index.get_indexer(grids)] = True
    index = frame["grid_index"].to_numpy()
    return wanted[np.where(index >= 0, index, len(city.hierarchy))]


# --- sensors ----------------------------------------------------------------------------------------------------------

def sensor_states(city: City) -> pd.DataFrame:
    """Every sensor with its state at the data's "now": critical/warning while an alarm of that severity is open,
    watch when offline or faulty, good otherwise; and the open alarm's message."""
    sensors = city["sensors"]
    alarms = city["alarms"] if "alarms" in city.layers else pd.DataFrame(columns=["sensor_id", "severity"])
    now = city.sensors_as_of
    open_alarms = alarms[(alarms["raised_at"] <= now)
                         & (alarms["cleared_at"].isna() | (alarms["cleared_at"] > now))]
    worst = (open_alarms.assign(rank=open_alarms["severity"].map(STATE_RANK).fillna(3))
             .sort_values("rank").groupby("sensor_id").last())
    state = pd.Series("good", index=sensors.index)
    state[sensors["status"].isin(["offline", "fault"]).to_numpy()] = "watch"
    alarm_rank = sensors["sensor_id"].map(worst["rank"])
    state[alarm_rank.notna().to_numpy()] = alarm_rank.dropna().map(RANKED_STATES).to_numpy()
    return sensors.assign(state=state.to_numpy(),
                          alarm=sensors["sensor_id"].map(worst["message"]).fillna("").to_numpy())


def sensor_points(city: City, states: pd.DataFrame, code: str) -> list[dict]:
    rows = states[unit_grid_mask(city, code, states)]
    return [{"position": [round(r.lon, 6), round(r.lat, 6)], "fill": rgba(STATE_COLORS[r.state], 230),
             "radius": 6 if r.state == "good" else 9, "sensor_id": r.sensor_id, "kind": r.kind, "state": r.state,
             "tip_name": escape(SENSOR_KIND_NAMES.get(r.kind, (r.kind, r.kind))[0]),
             "tip_name_zh": escape(str(r.sensor_id)),
             "tip_value": escape(f"{r.state}{' · ' + r.alarm if r.alarm else ''}")}
            for r in rows.itertuples()]


def sensor_clusters(city: City, states: pd.DataFrame, code: str, resolution: int) -> list[dict]:
    """Sensors of a unit binned into H3 cells; each cluster shows its count and the worst state inside."""
    rows = states[unit_grid_mask(city, code, states)]
    if not len(rows):
        return []
    cells = _cells(rows["lat"].to_numpy(), rows["lon"].to_numpy(), resolution)
    grouped = (rows.assign(cell=cells, rank=rows["state"].map(STATE_RANK))
               .groupby("cell").agg(count=("sensor_id", "size"), rank=("rank", "max"),
                                   alarms=("rank", lambda r: int((r >= 3).sum()))))
    clusters = []
    for cell, row in grouped.iterrows():
        lat, lon = h3_int.cell_to_latlng(int(cell))
        state = RANKED_STATES[int(row["rank"])]
        clusters.append({"position": [round(lon, 6), round(lat, 6)], "count": int(row["count"]),
                         "fill": rgba(STATE_COLORS[state], 220), "state": state,
                         "radius": float(8 + 4 * np.log2(row["count"] + 1)),
                         "label": str(int(row["count"])),
                         "tip_name": f"{int(row['count'])} sensors", "tip_name_zh": f"{int(row['count'])} 个传感器",
                         "tip_value": f"worst: {state} · {int(row['alarms'])} in alarm"})
    return clusters


# --- orders -----------------------------------------------------------------------------------------------------------

def _cells(lat: np.ndarray, lon: np.ndarray, resolution: int) -> np.ndarray:
    convert = h3_int.latlng_to_cell
    return np.fromiter((convert(a, b, resolution) for a, b in zip(lat.tolist(), lon.tolist())),
                       dtype=np.uint64, count=len(lat))


def order_cells(city: City) -> np.ndarray:
    """The H3 cell (resolution 10) of every order; coarser bins are their parents (one pass of h3 per order)."""
    orders = city["orders"]
    return _cells(orders["lat"].to_numpy(), orders["lon"].to_numpy(), BASE_HEX_RESOLUTION)


def order_hexes(city: City, base_cells: np.ndarray, code: str, start, end, resolution: int) -> pd.DataFrame:
    """Orders received in [start, end) in a unit, counted per H3 cell: columns hex (string id), count, lon, lat."""
    orders = city["orders"]
    received = orders["received_at"]
    mask = unit_grid_mask(city, code, orders) & (received >= start).to_numpy() & (received < end).to_numpy()
    cells, counts = np.unique(base_cells[mask], return_counts=True)
    if resolution != BASE_HEX_RESOLUTION and len(cells):
        parents = np.array([h3_int.cell_to_parent(int(c), resolution) for c in cells], dtype=np.uint64)
        frame = pd.DataFrame({"cell": parents, "count": counts}).groupby("cell", as_index=False)["count"].sum()
        cells, counts = frame["cell"].to_numpy(), frame["count"].to_numpy()
    centres = [h3_int.cell_to_latlng(int(c)) for c in cells]
    return pd.DataFrame({"hex": [h3.int_to_str(int(c)) for c in cells], "count": counts.astype(int),
                         "lat": [c[0] for c in centres], "lon": [c[1] for c in centres]})


@dataclass(frozen=True)
class OrderPoints:
    """Orders of a unit as columns (seconds since ``origin`` for the GPU time filter)."""
    lon: np.ndarray
    lat: np.ndarray
    seconds: np.ndarray
    open: np.ndarray
    origin: pd.Timestamp


def order_points(city: City, code: str, start, end) -> OrderPoints:
    orders = city["orders"]
    received = orders["received_at"]
    mask = unit_grid_mask(city, code, orders) & (received >= start).to_numpy() & (received < end).to_numpy()
    rows = orders[mask]
    seconds = (rows["received_at"] - start).dt.total_seconds().to_numpy(np.float32)
    return OrderPoints(lon=rows["lon"].to_numpy(np.float32), lat=rows["lat"].to_numpy(np.float32), seconds=seconds,
                       open=(rows["status"] != "closed").to_numpy(), origin=start)


# --- buildings --------------------------------------------------------------------------------------------------------

BUILDING_COLOR_MODES = ("use", "state", "alarms")


def building_colors(city: City, mode: str, grid_states: pd.Series | None = None,
                    states: pd.DataFrame | None = None) -> np.ndarray:
    """An (n, 3) uint8 colour per building: by use, by the state of its grid cell for the selected indicator, or
    red/amber where a sensor in the building has an open alarm."""
    buildings = city["buildings"]
    if mode == "use":
        return _lookup_colors(buildings["use"], {use: rgba(color)[:3] for use, color in USE_COLORS.items()},
                              rgba(PALETTE["muted"])[:3])
    if mode == "state":
        # Through the grid cells (thousands), not the buildings (hundreds of thousands): one state per cell.
        cell_states = pd.Series(city.hierarchy.index).map(grid_states).fillna("no_data")
        cell_colors = _lookup_colors(cell_states, {s: rgba(c)[:3] for s, c in STATE_COLORS.items()},
                                     rgba(STATE_COLORS["no_data"])[:3])
        # grid_index is -1 for a building outside every grid cell: it takes the extra "no data" row.
        cell_colors = np.vstack([cell_colors, np.array(rgba(STATE_COLORS["no_data"])[:3], dtype=np.uint8)])
        index = buildings["grid_index"].to_numpy()
        return cell_colors[np.where(index >= 0, index, len(cell_states))]
    if mode == "alarms":
        by_building = states[states["building_id"].notna() & (states["building_id"] != "")]
        worst = by_building.assign(rank=by_building["state"].map(STATE_RANK)).groupby("building_id")["rank"].max()
        rank = buildings["building_id"].map(worst).fillna(0).to_numpy()
        colors = np.tile(np.array(rgba("#3a4a5e")[:3], dtype=np.uint8), (len(buildings), 1))
        for state in ("watch", "warning", "critical"):
            colors[rank == STATE_RANK[state]] = rgba(STATE_COLORS[state])[:3]
        return colors
    raise ValueError(f"unknown building colour mode {mode!r}; expected one of {', '.join(BUILDING_COLOR_MODES)}")


def _lookup_colors(values: pd.Series, palette: dict, default) -> np.ndarray:
    """(n, 3) uint8 colours of categorical values, through their codes (a Python loop over 640 k buildings took
    0.2–0.6 s)."""
    categories = list(palette)
    codes = pd.Categorical(values, categories=categories).codes  # -1 where a value is not in the palette
    table = np.array([palette[c] for c in categories] + [default], dtype=np.uint8)
    return table[np.where(codes >= 0, codes, len(categories))]


def alarm_points(city: City, code: str, start, end) -> OrderPoints:
    """Sensor alarms raised in [start, end) in a unit, at their sensor's place (``open``: still open at the end)."""
    if "alarms" not in city.layers or "sensors" not in city.layers:
        empty = np.array([], dtype=np.float32)
        return OrderPoints(empty, empty, empty, np.array([], dtype=bool), start)
    alarms = city["alarms"]
    raised = alarms["raised_at"]
    mask = unit_grid_mask(city, code, alarms) & (raised >= start).to_numpy() & (raised < end).to_numpy()
    rows = alarms[mask].merge(city["sensors"][["sensor_id", "lon", "lat"]], on="sensor_id", how="inner")
    seconds = (rows["raised_at"] - start).dt.total_seconds().to_numpy(np.float32)
    return OrderPoints(lon=rows["lon"].to_numpy(np.float32), lat=rows["lat"].to_numpy(np.float32), seconds=seconds,
                       open=(rows["cleared_at"].isna() | (rows["cleared_at"] > end)).to_numpy(), origin=start)


# --- base map roads -----------------------------------------------------------------------------------------------

ROAD_WIDTH_PX = {"expressway": 2.5, "arterial": 1.5, "secondary": 0.8}
DETAILED_ROAD_LEVELS = {"street", "community", "grid"}
"""Secondary roads are drawn from the street level down; above it they would be a mesh, not a map."""


def roads_geojson(city: City, level: str, bounds) -> dict:
    """The roads worth drawing for a view: main roads everywhere, secondary ones in a street and below, within the
    view's bounds (a little widened)."""
    roads = city["roads"]
    if level not in DETAILED_ROAD_LEVELS:
        roads = roads[roads["road_class"] != "secondary"]
    minx, miny, maxx, maxy = bounds
    pad = max(maxx - minx, maxy - miny) * 0.5
    roads = roads.cx[minx - pad:maxx + pad, miny - pad:maxy + pad]
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": shapely.geometry.mapping(shapely.set_precision(g, 1e-5)),
         "properties": {"width": ROAD_WIDTH_PX.get(c, 1.0)}}
        for c, g in zip(roads["road_class"], roads.geometry)]}
