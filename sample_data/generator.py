"""The sample city: a deterministic, seeded generator of Shenzhen-like data on the real district boundaries.

Everything below the districts is synthetic and says so in its names. Levels are nested exactly: each parent is cut
into Voronoi cells of well-spread seeds (a few Lloyd iterations), and every child is a cell intersected with its
parent, so children cover their parent with no gap or overlap. Buildings, sensors, readings, alarms and work orders
are then placed in grid cells, denser and taller in the core (Futian, Luohu, Nanshan), with daily cycles, a few
incidents and recurring hotspots whose ground truth is stored in ``planted_hotspots``. Emergency incidents,
enterprises under work-safety supervision, grid workers and their patrols, video cameras and road segments follow
(see "emergencies, enterprises, grid management, cameras, roads" below for their calibration).

Calibration (../shared/CONTEXT.md): 74 streets with Shenzhen's real count per district, about 650 communities and a
few thousand grid cells; 640,000 buildings and about 100,000 orders a day at the ``city`` scale; on-time completion
and satisfaction about 99%; average handling about 1.24 working days; 380,000 video feeds (131,000 in Bao'an).

>>> city = generate("test", seed=7)           # doctest: +SKIP
>>> sorted(city)                               # doctest: +SKIP
['alarms', 'buildings', 'cameras', 'channels', 'enterprises', 'event_types', 'grid_workers', 'incidents', 'orders',
 'patrols', 'planted_hotspots', 'readings', 'road_segments', 'sensors', 'units']
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from tqdm import tqdm

from layers.geometry import normalise_polygonal, polygonal_parts
from layers.specs import CITY_TIMEZONE, CRS, METRIC_CRS, ORDER_STAGES, STATUS_AFTER_STAGE
from layers import reference
from sample_data.citizen_text import citizen_requests

DISTRICTS_FILE = Path(__file__).resolve().parent / "shenzhen" / "districts.geojson"
CITY_CODE = "440300"

# Shenzhen's real number of streets (街道) per district on today's map; Guangming's streets are counted in Bao'an
# and Dapeng's in Longgang, as the shipped 8-district boundaries include them there. Sum: 74.
STREETS_PER_DISTRICT = {
    "440303": 10,  # Luohu
    "440304": 10,  # Futian
    "440305": 8,   # Nanshan
    "440306": 16,  # Bao'an (10) + Guangming (6)
    "440307": 14,  # Longgang (11) + Dapeng (3)
    "440308": 4,   # Yantian
    "440309": 6,   # Longhua
    "440310": 6,   # Pingshan
}

# Median share of its time limit an order takes to handle, by district (others 0.40). With a spread (sigma) of 0.35
# the share of orders over their limit is about 0.4% at 0.40, 1.3% at 0.46 and 2.4% at 0.50.
HANDLING_MEDIAN = {"440304": 0.46, "440306": 0.50, "440307": 0.43, "440309": 0.38}

# The data end at this instant (local time) unless told otherwise, so the same seed gives the same city.
DEFAULT_END = pd.Timestamp("2026-11-20 16:00", tz=CITY_TIMEZONE)


@dataclass(frozen=True)
class Scale:
    name: str
    communities: int
    grids: int
    buildings: int
    sensors: int
    order_days: int
    orders_per_day: int
    reading_days: int
    hotspots: int
    # The safety, grid-management, camera and road layers (see "emergencies, enterprises, …" below). At the city
    # scale they are Shenzhen-sized; the smaller scales keep the city's ratio to buildings (1/16 and 1/160), except
    # that the test city gets a few more incidents than its share so that its figures are not all empty.
    incidents_per_day: int = 0
    enterprises: int = 0
    cameras: int = 0
    road_segments: int = 0
    patrol_days: int = 0


SCALES = {
    "test": Scale("test", communities=160, grids=480, buildings=4_000, sensors=600, order_days=7,
                  orders_per_day=600, reading_days=2, hotspots=4, incidents_per_day=12, enterprises=2_250,
                  cameras=2_375, road_segments=170, patrol_days=2),
    "demo": Scale("demo", communities=650, grids=3_200, buildings=40_000, sensors=4_000, order_days=30,
                  orders_per_day=4_000, reading_days=7, hotspots=8, incidents_per_day=32, enterprises=22_500,
                  cameras=23_750, road_segments=1_700, patrol_days=7),
    "city": Scale("city", communities=650, grids=3_200, buildings=640_000, sensors=30_000, order_days=30,
                  orders_per_day=100_000, reading_days=7, hotspots=12, incidents_per_day=500,
                  enterprises=360_000, cameras=380_000, road_segments=27_000, patrol_days=7),
}


def generate(scale: str | Scale = "demo", seed: int = 20231, end: pd.Timestamp = DEFAULT_END,
             progress: bool = False) -> dict[str, pd.DataFrame]:
    """Generate every layer of the sample city; returns layer id → (Geo)DataFrame in the registry's schema."""
    scale = SCALES[scale] if isinstance(scale, str) else scale
    rng = np.random.default_rng(seed)
    steps = tqdm(total=8, desc=f"sample city ({scale.name})", disable=not progress, unit="step")

    def step(label):
        steps.set_postfix_str(label)
        steps.update(1)

    units = build_units(scale, rng)
    step("units")
    layers = generate_layers(units, scale, rng, seed, end, step)
    steps.close()
    return layers


def generate_layers(units: gpd.GeoDataFrame, scale: Scale, rng: np.random.Generator, seed: int, end: pd.Timestamp,
                    step=lambda label: None) -> dict[str, pd.DataFrame]:
    """Every layer of a city whose units are given (Shenzhen's, or one city of the province sample)."""
    buildings = build_buildings(units, scale, rng)
    step("buildings")
    sensors = build_sensors(units, buildings, scale, rng, end)
    step("sensors")
    readings = build_readings(sensors, scale, rng, end)
    step("readings")
    alarms = build_alarms(sensors, readings, scale, rng, end)
    step("alarms")
    event_types, channels = build_reference()
    orders, hotspots = build_orders(units, buildings, event_types, scale, rng, end)
    step("orders")
    safety = build_safety_layers(units, buildings, scale, seed, end)
    step("incidents, enterprises, grid patrols, cameras, roads")
    return {
        "units": units, "buildings": buildings, "sensors": sensors, "readings": readings, "alarms": alarms,
        "event_types": event_types, "channels": channels, "orders": orders, "planted_hotspots": hotspots,
        **safety,
    }


# --- administrative units ---------------------------------------------------------------------------------------

def load_districts() -> gpd.GeoDataFrame:
    districts = gpd.read_file(DISTRICTS_FILE)
    assert districts.crs is not None and districts.crs.to_epsg() == 4326, "districts.geojson must be EPSG:4326"
    return districts


def build_units(scale: Scale, rng: np.random.Generator) -> gpd.GeoDataFrame:
    districts = load_districts()
    rows = [dict(code=CITY_CODE, level="city", parent_code=None, name="Shenzhen", name_zh="深圳市",
                 geometry=shapely.union_all(districts.geometry.to_numpy()))]
    rows += [dict(code=d.code, level="district", parent_code=CITY_CODE, name=d.name, name_zh=d.name_zh,
                  geometry=d.geometry) for d in districts.itertuples()]

    streets = _subdivide(rows[1:], "street", STREETS_PER_DISTRICT, rng)
    community_counts = _allocate(streets, scale.communities, minimum=2)
    communities = _subdivide(streets, "community", community_counts, rng)
    grid_counts = _allocate(communities, scale.grids, minimum=2)
    grids = _subdivide(communities, "grid", grid_counts, rng)
    frame = pd.DataFrame(rows + streets + communities + grids)
    return gpd.GeoDataFrame(frame, geometry="geometry", crs=CRS)


def _allocate(parents: list[dict], total: int, minimum: int) -> dict[str, int]:
    """Split ``total`` children among parents by area, weighted towards the dense core (largest remainder)."""
    weights = np.array([_metric_area(p["geometry"]) * (2.5 if p["code"][:6] in reference.CORE_DISTRICTS else 1.0)
                        for p in parents])
    spare = total - minimum * len(parents)
    share = weights / weights.sum() * max(spare, 0)
    counts = np.floor(share).astype(int)
    remainder = max(spare, 0) - counts.sum()
    counts[np.argsort(-(share - counts))[:remainder]] += 1
    return {p["code"]: int(c) + minimum for p, c in zip(parents, counts)}


_DEGREE_M = 111_320.0
_COS_LAT = np.cos(np.radians(22.6))


def _metric_area(geometry) -> float:
    """Area in m², by a local equirectangular scale: exact enough to weigh units within one city."""
    return geometry.area * _DEGREE_M * _DEGREE_M * _COS_LAT


LEVEL_NAMES = {"street": ("Street", "街道"), "community": ("Community", "社区"), "grid": ("Grid", "网格")}
CODE_DIGITS = {"street": 3, "community": 3, "grid": 2}


def _subdivide(parents: list[dict], level: str, counts: dict[str, int], rng) -> list[dict]:
    children = []
    suffix_en, suffix_zh = LEVEL_NAMES[level]
    for parent in parents:
        parts = partition(parent["geometry"], counts[parent["code"]], rng)
        # Stable codes: number the children north-west first, as the area is read on a map.
        parts.sort(key=lambda g: (-round(g.centroid.y, 3), g.centroid.x))
        base_en = parent["name"] if level == "street" else parent["name"].rsplit(" ", 1)[0]
        base_zh = parent["name_zh"].removesuffix("区") if level == "street" else parent["name_zh"][:-2]
        for number, geometry in enumerate(parts, start=1):
            code = f"{parent['code']}{number:0{CODE_DIGITS[level]}d}"
            if level == "street":
                name, name_zh = f"{base_en} {number:02d} {suffix_en}", f"{base_zh}第{number}{suffix_zh}"
            else:
                name = f"{parent['name']} · {suffix_en} {number}"
                name_zh = f"{parent['name_zh']}{number}号{suffix_zh}"
            children.append(dict(code=code, level=level, parent_code=parent["code"], name=name, name_zh=name_zh,
                                 geometry=geometry))
    return children


def partition(polygon, count: int, rng: np.random.Generator, lloyd_iterations: int = 6) -> list:
    """Cut a (multi)polygon into ``count`` polygonal pieces that cover it exactly, with no overlap.

    Seeds are spread by Lloyd's algorithm on random points inside the polygon, then the Voronoi cells of the seeds
    are intersected with the polygon. Pieces that the cut left in several parts stay one MultiPolygon.
    """
    if count <= 1:
        return [polygon]
    points = sample_points(polygon, count * 60, rng)
    centers = points[rng.choice(len(points), count, replace=False)]
    scale = np.array([_COS_LAT, 1.0])  # compare distances in metres, not degrees
    for _ in range(lloyd_iterations):
        labels = (((points[:, None, :] - centers[None, :, :]) * scale) ** 2).sum(-1).argmin(1)
        for k in range(count):
            members = points[labels == k]
            if len(members):
                centers[k] = members.mean(0)
    envelope = shapely.box(*polygon.bounds).buffer(0.05)
    cells = shapely.voronoi_polygons(shapely.multipoints(centers), extend_to=envelope)
    pieces = []
    for cell in cells.geoms:
        parts = polygonal_parts(shapely.intersection(cell, polygon))
        if parts:
            pieces.append(normalise_polygonal(parts))
    return pieces


def sample_points(polygon, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` uniform random points inside a polygon (rejection sampling in its bounding box)."""
    minx, miny, maxx, maxy = polygon.bounds
    shapely.prepare(polygon)
    found = []
    need = count
    while need > 0:
        batch = max(64, int(need * 2.5))
        xy = np.column_stack([rng.uniform(minx, maxx, batch), rng.uniform(miny, maxy, batch)])
        inside = xy[shapely.contains_xy(polygon, xy[:, 0], xy[:, 1])]
        found.append(inside[:need])
        need -= len(found[-1])
    return np.concatenate(found)


def grids_of(units: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    grids = units[units["level"] == "grid"].reset_index(drop=True)
    grids["district_code"] = grids["code"].str[:6]
    grids["core"] = grids["district_code"].isin(reference.CORE_DISTRICTS)
    grids["area_m2"] = grids.geometry.to_crs(METRIC_CRS).area
    return grids


# --- buildings --------------------------------------------------------------------------------------------------

def build_buildings(units: gpd.GeoDataFrame, scale: Scale, rng: np.random.Generator) -> gpd.GeoDataFrame:
    grids = grids_of(units)
    # Density: the core is 4x denser; each grid has its own character (parks, villages, industrial estates).
    density = np.where(grids["core"], 4.0, 1.0) * rng.lognormal(0.0, 0.6, len(grids))
    weights = grids["area_m2"].to_numpy() * density
    counts = _multinomial_counts(scale.buildings, weights, rng)

    centers, grid_index, spacing = [], [], []
    for i, (geometry, area, n) in enumerate(zip(grids.geometry, grids["area_m2"], counts)):
        if n == 0:
            continue
        xy, step_m = lattice_points(geometry, int(n), area, rng)
        centers.append(xy)
        grid_index.append(np.full(len(xy), i))
        spacing.append(np.full(len(xy), step_m))
    xy = np.concatenate(centers)
    grid_index = np.concatenate(grid_index)
    spacing = np.concatenate(spacing)
    n = len(xy)
    core = grids["core"].to_numpy()[grid_index]

    uses = np.array([u[0] for u in reference.BUILDING_USES])
    p_core = np.array([u[3] for u in reference.BUILDING_USES])
    p_rest = np.array([u[4] for u in reference.BUILDING_USES])
    use = np.where(core, rng.choice(uses, n, p=p_core / p_core.sum()), rng.choice(uses, n, p=p_rest / p_rest.sum()))

    # Footprints: rectangles no larger than 70% of the lattice step, so neighbours never overlap.
    side = np.minimum(spacing * 0.7, np.where(use == "industrial", 70.0, 38.0))
    width = side * rng.uniform(0.55, 1.0, n)
    depth = side * rng.uniform(0.55, 1.0, n)
    angle = rng.uniform(0, np.pi / 2, n)
    footprints = rotated_rectangles(xy, width, depth, angle)

    height = np.where(core, rng.lognormal(np.log(24.0), 0.62, n), rng.lognormal(np.log(13.0), 0.55, n))
    height = np.where(use == "industrial", np.minimum(height, 30.0), height)
    height = np.clip(height, 3.0, 599.0).round(1)
    floors = np.maximum(1, np.round(height / 3.1)).astype(int)
    year = np.clip(np.round(np.where(core, rng.normal(2002, 10, n), rng.normal(2006, 9, n))), 1979, 2025).astype(int)

    footprint_m2 = width * depth
    living = np.select([use == "residential", use == "mixed"], [1.0, 0.5], 0.0)
    residents = footprint_m2 * floors * living / 30.0
    # Shenzhen: about 17.8 million residents in 640,000 buildings; keep that ratio at every scale.
    residents *= (17_800_000 * n / 640_000) / max(residents.sum(), 1.0)
    frame = pd.DataFrame({
        "building_id": [f"B{int(i):07d}" for i in range(1, n + 1)],
        "grid_code": grids["code"].to_numpy()[grid_index],
        "height_m": height,
        "floors": floors,
        "use": use,
        "year_built": year,
        "residents": np.round(residents).astype(int),
        "high_rise_100m": height >= 100.0,
    })
    return gpd.GeoDataFrame(frame, geometry=footprints, crs=CRS)


def _multinomial_counts(total: int, weights: np.ndarray, rng) -> np.ndarray:
    return rng.multinomial(total, weights / weights.sum())


def lattice_points(polygon, count: int, area_m2: float, rng) -> tuple[np.ndarray, float]:
    """About ``count`` points on a jittered square lattice inside the polygon, and the lattice step in metres."""
    step_m = max(12.0, np.sqrt(area_m2 / count) * 0.92)
    minx, miny, maxx, maxy = polygon.bounds
    dx, dy = step_m / (_DEGREE_M * _COS_LAT), step_m / _DEGREE_M
    gx, gy = np.meshgrid(np.arange(minx + dx / 2, maxx, dx), np.arange(miny + dy / 2, maxy, dy))
    xy = np.column_stack([gx.ravel(), gy.ravel()])
    xy += rng.uniform(-0.1, 0.1, xy.shape) * np.array([dx, dy])
    inside = xy[shapely.contains_xy(polygon, xy[:, 0], xy[:, 1])]
    if len(inside) > count:
        inside = inside[rng.choice(len(inside), count, replace=False)]
    return inside, step_m


def rotated_rectangles(center_xy: np.ndarray, width_m, depth_m, angle) -> np.ndarray:
    """Rectangles (width × depth metres, rotated by angle) around lon/lat centres, as shapely polygons."""
    corners = np.array([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5], [-0.5, -0.5]])
    local = corners[None, :, :] * np.stack([width_m, depth_m], axis=1)[:, None, :]
    cos, sin = np.cos(angle)[:, None], np.sin(angle)[:, None]
    east = local[..., 0] * cos - local[..., 1] * sin
    north = local[..., 0] * sin + local[..., 1] * cos
    lon = center_xy[:, 0:1] + east / (_DEGREE_M * _COS_LAT)
    lat = center_xy[:, 1:2] + north / _DEGREE_M
    return shapely.polygons(np.stack([lon, lat], axis=-1))


# --- sensors, readings, alarms ----------------------------------------------------------------------------------

def build_sensors(units, buildings, scale: Scale, rng, end: pd.Timestamp) -> gpd.GeoDataFrame:
    grids = grids_of(units)
    per_grid_buildings = buildings.groupby("grid_code").size().reindex(grids["code"]).fillna(0).to_numpy()
    centroids = shapely.centroid(buildings.geometry.to_numpy())
    building_xy = np.column_stack([shapely.get_x(centroids), shapely.get_y(centroids)])
    frames = []
    shares = np.array([k[5] for k in reference.SENSOR_KINDS])
    counts = np.round(shares / shares.sum() * scale.sensors).astype(int)
    for (kind, *_rest, located, _share, _measures), count in zip(reference.SENSOR_KINDS, counts):
        if located == "building":
            if kind == "smoke":  # fire IoT in high-rises (over 27 m, China's fire code), the tallest first
                pool = np.flatnonzero(buildings["height_m"].to_numpy() >= 27.0)
            else:
                pool = np.flatnonzero(buildings["use"].isin(["residential", "mixed", "industrial"]).to_numpy())
            chosen = rng.choice(pool, min(count, len(pool)), replace=len(pool) < count)
            frames.append(pd.DataFrame({
                "kind": kind, "building_id": buildings["building_id"].to_numpy()[chosen],
                "grid_code": buildings["grid_code"].to_numpy()[chosen],
                "lon": building_xy[chosen, 0], "lat": building_xy[chosen, 1]}))
        else:
            weights = per_grid_buildings + 1.0
            grid_idx = rng.choice(len(grids), count, p=weights / weights.sum())
            xy = _points_in_grids(grids, grid_idx, rng)
            frames.append(pd.DataFrame({
                "kind": kind, "building_id": None, "grid_code": grids["code"].to_numpy()[grid_idx],
                "lon": xy[:, 0], "lat": xy[:, 1]}))
    sensors = pd.concat(frames, ignore_index=True)
    n = len(sensors)
    sensors.insert(0, "sensor_id", [f"S{i:06d}" for i in range(1, n + 1)])
    sensors["status"] = rng.choice(["online", "offline", "fault"], n, p=[0.962, 0.028, 0.010])
    installed = end - pd.to_timedelta(rng.integers(60, 2_000, n), unit="D")
    sensors["installed_at"] = installed
    offline_for = pd.to_timedelta(rng.integers(2, 96, n), unit="h")
    sensors["last_seen_at"] = np.where(sensors["status"] == "online", end, end - offline_for)
    sensors["last_seen_at"] = pd.to_datetime(sensors["last_seen_at"]).dt.tz_convert(CITY_TIMEZONE) \
        if pd.api.types.is_datetime64_any_dtype(sensors["last_seen_at"]) else \
        pd.Series([pd.Timestamp(t) for t in sensors["last_seen_at"]]).dt.tz_convert(CITY_TIMEZONE)
    return gpd.GeoDataFrame(sensors, geometry=gpd.points_from_xy(sensors["lon"], sensors["lat"]), crs=CRS)


def _points_in_grids(grids: gpd.GeoDataFrame, grid_idx: np.ndarray, rng, pool_size: int = 256) -> np.ndarray:
    """A random point inside the chosen grid cell for each index (drawn from a pool of points per cell)."""
    out = np.empty((len(grid_idx), 2))
    order = np.argsort(grid_idx, kind="stable")
    sorted_idx = grid_idx[order]
    starts = np.flatnonzero(np.r_[True, sorted_idx[1:] != sorted_idx[:-1]])
    ends = np.r_[starts[1:], len(sorted_idx)]
    geometries = grids.geometry.to_numpy()
    for s, e in zip(starts, ends):
        pool = sample_points(geometries[sorted_idx[s]], min(pool_size, e - s), rng)
        out[order[s:e]] = pool[rng.integers(0, len(pool), e - s)]
    return out


def _hour_of_day(times: pd.DatetimeIndex | np.ndarray) -> np.ndarray:
    return pd.DatetimeIndex(times).hour.to_numpy()


def build_readings(sensors, scale: Scale, rng, end: pd.Timestamp) -> pd.DataFrame:
    measuring = {k[0] for k in reference.SENSOR_KINDS if k[6]}
    chosen = sensors[sensors["kind"].isin(measuring) & (sensors["status"] != "fault")].reset_index(drop=True)
    hours = pd.date_range(end=end.floor("h"), periods=scale.reading_days * 24, freq="h")
    hour = hours.hour.to_numpy()[None, :]
    day = np.arange(len(hours))[None, :] / 24.0
    n = len(chosen)
    kind = chosen["kind"].to_numpy()[:, None]
    district = chosen["grid_code"].str[:6].to_numpy()[:, None]
    noise = rng.normal(0, 1, (n, len(hours)))
    rush = np.exp(-((hour - 8.5) ** 2) / 3) + np.exp(-((hour - 18.5) ** 2) / 4)
    values = np.select(
        [kind == "pm25", kind == "noise", kind == "water_level", kind == "traffic_flow"],
        [
            28 + 10 * rush + 6 * noise + 8 * np.sin(day / 2.0),
            52 + 9 * np.clip(np.sin((hour - 6) / 24 * 2 * np.pi), 0, None) + 3 * noise,
            1.0 + 0.15 * np.sin(hour / 12.4 * 2 * np.pi) + 0.05 * noise,
            300 + 1600 * rush + 120 * noise,
        ],
    )
    # Incidents: a PM2.5 episode over one district for a day, and a rainstorm that raises water levels.
    if len(hours) >= 36:
        episode = (district == "440306") & (kind == "pm25") & (day >= day.max() - 1.6) & (day < day.max() - 0.6)
        values = np.where(episode, values + 70, values)
        storm = (kind == "water_level") & np.isin(district, ["440307", "440310"]) & \
            (day >= day.max() - 0.6) & (day < day.max() - 0.3)
        values = np.where(storm, values + 1.9 + 0.3 * np.abs(noise), values)
    # The sensor's own site differs from the average a little.
    values = values * rng.lognormal(0, 0.08, (n, 1))
    values = np.maximum(values, 0).round(2)
    offline_since = chosen["last_seen_at"].to_numpy()
    observed = hours.to_numpy()[None, :] <= offline_since[:, None]
    ii, jj = np.nonzero(observed)
    return pd.DataFrame({
        "sensor_id": chosen["sensor_id"].to_numpy()[ii],
        "ts": hours[jj],
        "value": values[ii, jj],
    })


def build_alarms(sensors, readings, scale: Scale, rng, end: pd.Timestamp) -> pd.DataFrame:
    frames = []
    # From readings: one alarm per run of consecutive hours over the kind's limit.
    kinds = sensors.set_index("sensor_id")["kind"]
    r = readings.assign(kind=readings["sensor_id"].map(kinds))
    r["limit"] = r["kind"].map(reference.READING_ALARM_LIMITS)
    r = r.sort_values(["sensor_id", "ts"])
    over = (r["value"] > r["limit"]).to_numpy()
    new_run = over & ~np.r_[False, over[:-1] & (r["sensor_id"].to_numpy()[1:] == r["sensor_id"].to_numpy()[:-1])]
    run_id = np.cumsum(new_run)
    runs = r[over].assign(run=run_id[over]).groupby("run").agg(
        sensor_id=("sensor_id", "first"), kind=("kind", "first"), raised_at=("ts", "min"), last=("ts", "max"),
        peak=("value", "max"), limit=("limit", "first"))
    if len(runs):
        still = runs["last"] >= end.floor("h")
        runs["cleared_at"] = (runs["last"] + pd.Timedelta(hours=1)).where(~still, pd.NaT)
        runs["severity"] = np.where(runs["peak"] > runs["limit"] * 1.5, "critical", "warning")
        runs["message"] = [f"{k} {p:g} over limit {lim:g}" for k, p, lim in
                           zip(runs["kind"], runs["peak"], runs["limit"])]
        frames.append(runs[["sensor_id", "kind", "severity", "raised_at", "cleared_at", "message"]])
    # State sensors: rare events (smoke, displaced manhole cover, dark streetlight, electrical overload).
    rates_per_day = {"smoke": 0.002, "manhole_cover": 0.004, "streetlight": 0.01, "electrical_safety": 0.004}
    messages = {"smoke": "smoke detected", "manhole_cover": "cover displaced", "streetlight": "lamp failure",
                "electrical_safety": "overload / leakage current"}
    days = scale.reading_days
    for kind, rate in rates_per_day.items():
        ids = sensors.loc[sensors["kind"] == kind, "sensor_id"].to_numpy()
        events = rng.poisson(rate * days, len(ids))
        sensor_ids = np.repeat(ids, events)
        raised = end - pd.to_timedelta(rng.uniform(0, days * 24, len(sensor_ids)), unit="h")
        duration = pd.to_timedelta(rng.exponential(3 if kind == "smoke" else 14, len(sensor_ids)), unit="h")
        cleared = pd.Series(raised + duration)
        cleared = cleared.where(cleared < end, pd.NaT)
        frames.append(pd.DataFrame({
            "sensor_id": sensor_ids, "kind": kind,
            "severity": np.where(kind == "smoke", "critical", "warning"),
            "raised_at": raised, "cleared_at": cleared.to_numpy(), "message": messages[kind]}))
    alarms = pd.concat(frames, ignore_index=True).sort_values("raised_at", kind="stable").reset_index(drop=True)
    alarms.insert(0, "alarm_id", [f"A{i:07d}" for i in range(1, len(alarms) + 1)])
    alarms["raised_at"] = pd.to_datetime(alarms["raised_at"], utc=True).dt.tz_convert(CITY_TIMEZONE)
    alarms["cleared_at"] = pd.to_datetime(alarms["cleared_at"], utc=True).dt.tz_convert(CITY_TIMEZONE)
    return alarms


# --- work orders ------------------------------------------------------------------------------------------------

def build_reference() -> tuple[pd.DataFrame, pd.DataFrame]:
    event_types = pd.DataFrame(
        [(code, category, name, name_zh, reference.DEPARTMENTS[dept][0], limit)
         for code, category, name, name_zh, dept, limit, _w, _n in reference.EVENT_TYPES],
        columns=["code", "category", "name", "name_zh", "department", "time_limit_hours"])
    channels = pd.DataFrame([c[:3] for c in reference.CHANNELS], columns=["code", "name", "name_zh"])
    return event_types, channels


# Hourly profile of daytime requests (06:00–22:00), peaking mid-morning and mid-afternoon.
_DAY_PROFILE = np.array([0, 0, 0, 0, 0, 0, 1, 3, 6, 9, 10, 9, 6, 6, 8, 9, 9, 8, 6, 5, 4, 3, 0, 0], dtype=float)
_NIGHT_PROFILE = np.array([5, 3, 2, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 6, 7], dtype=float)


def _hours(values) -> np.ndarray:
    return (np.asarray(values, dtype=float) * 3.6e12).astype("timedelta64[ns]")


def _local(utc: np.ndarray) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(utc).tz_localize("UTC").tz_convert(CITY_TIMEZONE)


def build_orders(units, buildings, event_types, scale: Scale, rng, end: pd.Timestamp,
                 known_until: pd.Timestamp | None = None):
    """Orders received up to ``end``; their later stages are known up to ``known_until`` (default ``end``: a
    month of a year's history is generated with the year's end there, so its orders go on after the month)."""
    grids = grids_of(units)
    people = buildings.groupby("grid_code")["residents"].sum().reindex(grids["code"]).fillna(0).to_numpy()
    places = buildings.groupby("grid_code").size().reindex(grids["code"]).fillna(0).to_numpy()
    grid_weight = people + 40 * places + 50

    types = reference.EVENT_TYPES
    type_weight = np.array([t[6] for t in types])
    night_share = np.array([t[7] for t in types])
    limits = np.array([t[5] for t in types], dtype=float)
    departments = np.array([reference.DEPARTMENTS[t[4]][0] for t in types])
    type_codes = np.array([t[0] for t in types])

    start_day = (end - pd.Timedelta(days=scale.order_days)).normalize()
    day_starts = pd.date_range(start_day, periods=scale.order_days + 1, freq="D")
    per_day = np.array([scale.orders_per_day * (0.8 if d.day_of_week >= 5 else 1.07) for d in day_starts])
    per_day = rng.poisson(per_day * rng.lognormal(0, 0.05, len(per_day)))
    n = int(per_day.sum())
    day_index = np.repeat(np.arange(len(day_starts)), per_day)
    type_index = rng.choice(len(types), n, p=type_weight / type_weight.sum())
    at_night = rng.random(n) < night_share[type_index]
    hour = np.where(at_night, rng.choice(24, n, p=_NIGHT_PROFILE / _NIGHT_PROFILE.sum()),
                    rng.choice(24, n, p=_DAY_PROFILE / _DAY_PROFILE.sum()))
    offset_s = hour * 3600 + rng.integers(0, 3600, n)
    grid_index = rng.choice(len(grids), n, p=grid_weight / grid_weight.sum())

    # Recurring hotspots: the same event type at the same place in the same hours, night after night.
    hotspot_rows = []
    extra = []
    hotspot_types = ["night_construction_noise", "business_noise", "illegal_street_vending", "garbage_overflow",
                     "illegal_parking", "waterlogging", "e_bike_indoor_charging", "cooking_fumes"]
    busy = np.argsort(-grid_weight)[: max(10, len(grids) // 4)]
    for k in range(scale.hotspots):
        code = hotspot_types[k % len(hotspot_types)]
        t = int(np.flatnonzero(type_codes == code)[0])
        g = int(rng.choice(busy))
        first_hour = int(rng.choice([21, 22, 23] if "noise" in code else [8, 11, 17, 19]))
        per_night = max(3, int(scale.orders_per_day * 0.0006))
        days = np.arange(len(day_starts))
        count = per_night * len(days)
        extra.append(pd.DataFrame({
            "day": np.repeat(days, per_night), "type": t, "grid": g,
            "offset": (first_hour * 3600 + rng.integers(0, 3 * 3600, count)) % 86400}))
        hotspot_rows.append((f"H{k + 1:02d}", code, grids["code"][g], first_hour, (first_hour + 3) % 24, count))
    planted_of = np.full(n, -1)  # which hotspot planted each order (-1: none)
    if extra:
        planted = pd.concat(extra, ignore_index=True)
        planted_of = np.r_[planted_of, np.repeat(np.arange(len(extra)), [len(e) for e in extra])]
        day_index = np.r_[day_index, planted["day"].to_numpy()]
        type_index = np.r_[type_index, planted["type"].to_numpy()]
        grid_index = np.r_[grid_index, planted["grid"].to_numpy()]
        offset_s = np.r_[offset_s, planted["offset"].to_numpy()]
        n = len(day_index)

    received = day_starts[day_index] + pd.to_timedelta(offset_s, unit="s")
    keep = received <= end
    order = np.argsort(received[keep].asi8, kind="stable")
    idx = np.flatnonzero(keep)[order]
    received = received[idx]
    type_index, grid_index = type_index[idx], grid_index[idx]
    n = len(idx)
    # The ground truth counts the planted orders that were kept, not those that would fall after the end.
    kept_planted = np.bincount(planted_of[idx][planted_of[idx] >= 0], minlength=len(hotspot_rows))
    hotspot_rows = [row[:-1] + (int(kept),) for row, kept in zip(hotspot_rows, kept_planted)]

    # Stage times are computed on plain UTC datetime64 arrays: millions of tz-aware objects would be slow.
    hours = _hours
    start = received.tz_convert("UTC").tz_localize(None).to_numpy()
    end_utc = np.datetime64((end if known_until is None else known_until).tz_convert("UTC").tz_localize(None))
    limit_h = limits[type_index]
    dispatched = start + hours(rng.exponential(0.35, n))
    # A few orders wait over a day for their first response (a backlog after a storm of requests).
    slow = rng.random(n) < 0.004
    dispatched = np.where(slow, start + hours(rng.uniform(20, 40, n)), dispatched)
    # Handling takes a fraction of the time limit; about 1% of orders overrun it (on-time ≈ 99%), more in the
    # districts whose median is set higher (Futian's reported on-time rate is 98.82%).
    district = grids["district_code"].to_numpy()[grid_index]
    median = np.array([HANDLING_MEDIAN.get(d, 0.40) for d in district])
    fraction = rng.lognormal(np.log(median), 0.35, n)
    handling = hours(np.maximum(fraction * limit_h, 0.2))
    handled = start + handling
    # An order is handled after it is dispatched: after a slow dispatch, handling starts then.
    handled = np.where(handled > dispatched, handled, dispatched + handling)
    feedback = handled + hours(rng.exponential(0.8, n))
    # The reply is checked (回访) before the citizen is asked to evaluate; an order nobody evaluates closes three
    # days after that check.
    checked = feedback + hours(rng.exponential(3.0, n))
    evaluates = rng.random(n) < 0.78
    evaluated = np.where(evaluates, checked + hours(rng.exponential(10.0, n)), np.datetime64("NaT"))
    satisfied = rng.random(n) < 0.993
    deadline = start + hours(limit_h)
    # The unit accepts (签收) soon after dispatch: a tenth of the time to handling, between a minute and two hours.
    # Derived, not drawn, so that adding the stage left every other draw of the city as it was.
    accepted = dispatched + np.clip((handled - dispatched) // 10, np.timedelta64(60, "s"),
                                    np.timedelta64(2 * 3600, "s")).astype("timedelta64[ns]")
    # Closed when evaluated, else three days after the check.
    closed = np.where(evaluates, evaluated, checked + hours(72))

    stage_names = ["received_at", "dispatched_at", "accepted_at", "handled_at", "feedback_at"]
    stages = np.stack([start, dispatched, accepted, handled, feedback])
    # What has not happened by the end of the data is not known yet, nor is anything after it.
    reached = np.logical_and.accumulate(~np.isnat(stages) & (stages <= end_utc), axis=0)
    stages = np.where(reached, stages, np.datetime64("NaT"))
    replied = reached[-1]
    is_evaluated = replied & evaluates & (evaluated <= end_utc)
    is_closed = replied & (closed <= end_utc)
    evaluated = np.where(is_evaluated, evaluated, np.datetime64("NaT"))
    closed = np.where(is_closed, closed, np.datetime64("NaT"))
    status = np.array(list(ORDER_STAGES[:len(stage_names)]))[reached.sum(axis=0) - 1]
    status = np.where(is_closed, STATUS_AFTER_STAGE["closed"], status)
    # Supervision (督办): the hourly sweep escalates an order that is still unhandled an hour past its deadline.
    escalated = deadline + hours(1)
    handled_known = reached[3]
    is_escalated = (escalated <= end_utc) & ~(handled_known & (stages[3] <= escalated))
    supervised = np.where(is_escalated, escalated, np.datetime64("NaT"))
    # "Reopen when unsatisfied": an unsatisfied evaluation sent the order back once before it closed.
    satisfied_known = pd.array(np.where(is_evaluated, satisfied, None), dtype="boolean")
    reopen = (is_evaluated & ~satisfied).astype(int) + (is_evaluated & (rng.random(n) < 0.004)).astype(int)
    on_time = pd.array(np.where(handled_known, stages[3] <= deadline, np.where(deadline < end_utc, False, None)),
                       dtype="boolean")
    # Dispatched by version 1 of the responsibility list (the one seeded from the reference when the city is built).
    rules_version = pd.array(np.where(reached[1], 1, None), dtype="Int64")

    points = _points_in_grids(grids, grid_index, rng)
    # Hotspot orders come from the same spot, not anywhere in the cell.
    for h, (code, grid_code) in enumerate(zip([r[1] for r in hotspot_rows], [r[2] for r in hotspot_rows])):
        mask = (type_codes[type_index] == code) & (grids["code"].to_numpy()[grid_index] == grid_code)
        if mask.any():
            anchor = points[np.flatnonzero(mask)[0]]
            points[mask] = anchor + rng.normal(0, 0.0004, (mask.sum(), 2))

    local_day = received.year * 10000 + received.month * 100 + received.day
    orders = pd.DataFrame({
        "order_id": [f"SZ{d}{i:07d}" for d, i in zip(local_day.tolist(), range(1, n + 1))],
        "event_type": type_codes[type_index],
        "channel": rng.choice([c[0] for c in reference.CHANNELS], n,
                              p=np.array([c[3] for c in reference.CHANNELS]) / sum(c[3] for c in reference.CHANNELS)),
        "department": departments[type_index],
        "grid_code": grids["code"].to_numpy()[grid_index],
        "status": status,
        **{name: _local(stages[i]) for i, name in enumerate(stage_names)},
        "evaluated_at": _local(evaluated),
        "closed_at": _local(closed),
        "supervised_at": _local(supervised),
        "deadline_at": _local(deadline),
        "satisfied": satisfied_known,
        "reopen_count": reopen,
        "on_time": on_time,
        "lon": points[:, 0].round(6),
        "lat": points[:, 1].round(6),
        # What the citizen said, by event type, in Chinese or English (sample_data/citizen_text.py). From a stream
        # of its own, so that the text left every other draw of the city as it was.
        "description": citizen_requests(type_codes[type_index],
                                        np.random.default_rng(rng.bit_generator.seed_seq.spawn(1)[0])),
        "address": None,
        "version": 1,
        "rules_version": rules_version,
    })
    hotspots = pd.DataFrame(hotspot_rows, columns=["hotspot_id", "event_type", "grid_code", "start_hour",
                                                   "end_hour", "orders"])
    return orders, hotspots


# --- emergencies, enterprises, grid management, cameras, roads ------------------------------------------------------
#
# Calibration at the city scale (../shared/CONTEXT.md where it has a figure; otherwise an assumption, said so):
# - cameras: the 380,000 video feeds connected to the city center. Bao'an reports 131,000 cameras (视频监控13.1万路)
#   of its own: it gets that share (34.5 %), and within each district cameras follow residents and buildings.
#   Longhua runs "AI grid worker" video apps: its share of AI-enabled cameras is highest (45 %), the core's 35 %,
#   elsewhere 22 % (assumed); 2–3.5 % are offline.
# - enterprises: 3.6 million legal entities city-wide; the work-safety register holds those with premises to
#   inspect, assumed one in ten (360,000). Risk classes follow the industry: about 1 % are major hazard
#   installations, about 9 % under key supervision (assumed). Major hazards are inspected every 90 days and key
#   ones every 180 (4 % and 5 % are overdue); ordinary ones by random spot checks, 15 % never.
# - grid workers: one full-time worker per grid cell, plus assistants in populous cells, one per about 2,000
#   residents (the national guideline is a grid of 300–500 households with one full-time worker). A few posts
#   (4 %) are vacant or on leave for the whole period: their cells go unpatrolled.
# - patrols: 2–4 a day per worker on duty (90 % of weekdays, 60 % of weekend days), between 08:00 and 20:00, for
#   the last ``patrol_days`` days.
# - incidents: about 500 emergencies a day city-wide go through the command center's emergency linkage (an
#   assumption; a few per district per day at the demo scale). First responders arrive mostly 8–15 minutes after the
#   report, with a tail (traffic, hillside villages, a wrong address).
# - roads: 27,000 segments, about 8,000 km (an assumption close to Shenzhen's network), of which about 2,000 km of
#   arterials: room for the 520 km of the 574 green-wave corridors. Midpoints only (the store has no line
#   geometry yet).
#
# Each of these layers draws from its own random stream (seed, layer), so that adding them left the draws of the
# older layers untouched, and one of them can be rebuilt alone.

_SAFETY_STREAMS = {"incidents": 1, "enterprises": 2, "grid_workers": 3, "patrols": 4, "cameras": 5,
                   "road_segments": 6, "roads": 7}


def build_safety_layers(units, buildings, scale: Scale, seed: int, end: pd.Timestamp) -> dict[str, pd.DataFrame]:
    """The incidents, enterprises, grid workers and their patrols, cameras and road segments of the sample city."""
    def stream(layer_id):
        return np.random.default_rng([seed, _SAFETY_STREAMS[layer_id]])

    grid_workers = build_grid_workers(units, buildings, scale, stream("grid_workers"))
    return {
        "incidents": build_incidents(units, buildings, scale, stream("incidents"), end),
        "enterprises": build_enterprises(units, buildings, scale, stream("enterprises"), end),
        "grid_workers": grid_workers,
        "patrols": build_patrols(grid_workers, scale, stream("patrols"), end),
        "cameras": build_cameras(units, buildings, scale, stream("cameras"), end),
        "road_segments": build_road_segments(units, buildings, scale, stream("road_segments")),
        "roads": build_roads(units, stream("roads")),
    }


def _per_grid(grids: gpd.GeoDataFrame, buildings: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Residents and buildings of each grid cell (in the order of ``grids``)."""
    by_grid = buildings.groupby("grid_code")
    people = by_grid["residents"].sum().reindex(grids["code"]).fillna(0).to_numpy(dtype=float)
    places = by_grid.size().reindex(grids["code"]).fillna(0).to_numpy(dtype=float)
    return people, places


def _minutes(values) -> np.ndarray:
    return (np.asarray(values, dtype=float) * 6e10).astype("timedelta64[ns]")


def _utc(instant: pd.Timestamp) -> np.datetime64:
    return np.datetime64(instant.tz_convert("UTC").tz_localize(None), "ns")


def _ids(prefix: str, count: int, digits: int) -> list[str]:
    return [f"{prefix}{i:0{digits}d}" for i in range(1, count + 1)]


# Incidents by hour of the day: fewest before dawn, most from the morning to the evening rush.
_INCIDENT_PROFILE = np.array([3, 2, 2, 1.5, 1.5, 2, 3, 5, 7, 7, 7, 7, 6, 6, 7, 7, 7, 8, 8, 7, 6, 5, 4, 3.5])
# Median minutes from dispatch to arrival by district: stations are nearer in the dense core, farther in the east.
_TRAVEL_MEDIAN_MINUTES = {"440303": 8.0, "440304": 8.0, "440305": 8.5, "440306": 9.5, "440307": 10.0,
                          "440308": 9.5, "440309": 9.0, "440310": 10.5}
_ARRIVAL_TAIL_SHARE = 0.06    # incidents whose responders are held up, by about 10 minutes more on average
_FLOOD_PRONE = {"440307": 4.0, "440310": 4.0}  # floods follow the rain into the low-lying east


def build_incidents(units, buildings, scale: Scale, rng, end: pd.Timestamp) -> gpd.GeoDataFrame:
    grids = grids_of(units)
    people, places = _per_grid(grids, buildings)
    weight = people + 40 * places + 50
    kinds = reference.INCIDENT_KINDS
    codes = np.array([k[0] for k in kinds])
    shares = np.array([k[3] for k in kinds])
    on_scene_median = np.array([k[4] for k in kinds])

    day_starts = pd.date_range((end - pd.Timedelta(days=scale.order_days)).normalize(),
                               periods=scale.order_days + 1, freq="D")
    per_day = rng.poisson(scale.incidents_per_day * rng.lognormal(0, 0.15, len(day_starts)))
    n = int(per_day.sum())
    day_index = np.repeat(np.arange(len(day_starts)), per_day)
    hour = rng.choice(24, n, p=_INCIDENT_PROFILE / _INCIDENT_PROFILE.sum())
    offset = (hour * 3600 + rng.integers(0, 3600, n)).astype("timedelta64[s]")
    end_utc = _utc(end)
    reported = day_starts.tz_convert("UTC").tz_localize(None).to_numpy()[day_index] + offset
    reported = np.sort(reported[reported <= end_utc])
    n = len(reported)

    kind_index = rng.choice(len(kinds), n, p=shares / shares.sum())
    grid_index = rng.choice(len(grids), n, p=weight / weight.sum())
    district_of_grid = grids["district_code"].to_numpy()
    flood = codes[kind_index] == "flooding"
    flood_weight = weight * np.array([_FLOOD_PRONE.get(d, 1.0) for d in district_of_grid])
    grid_index[flood] = rng.choice(len(grids), int(flood.sum()), p=flood_weight / flood_weight.sum())
    severities = reference.INCIDENT_SEVERITIES
    severity_share = np.array([s[3] for s in severities])
    severity = rng.choice([s[0] for s in severities], n, p=severity_share / severity_share.sum())

    district = district_of_grid[grid_index]
    dispatched = reported + _minutes(0.3 + rng.exponential(1.0, n))
    median = np.array([_TRAVEL_MEDIAN_MINUTES.get(d, 9.5) for d in district])
    travel = rng.lognormal(np.log(median), 0.25, n)
    travel += np.where(rng.random(n) < _ARRIVAL_TAIL_SHARE, rng.exponential(10.0, n), 0.0)
    arrived = dispatched + _minutes(travel)
    resolved = arrived + _minutes(rng.lognormal(np.log(on_scene_median[kind_index]), 0.6, n))
    # What has not happened by the end of the data is not known yet.
    stages = np.stack([reported, dispatched, arrived, resolved])
    reached = np.logical_and.accumulate(stages <= end_utc, axis=0)
    stages = np.where(reached, stages, np.datetime64("NaT"))

    points = _points_in_grids(grids, grid_index, rng)
    local = _local(reported)
    local_day = local.year * 10000 + local.month * 100 + local.day
    frame = pd.DataFrame({
        "incident_id": [f"EV{d}{i:06d}" for d, i in zip(local_day.tolist(), range(1, n + 1))],
        "kind": codes[kind_index],
        "severity": severity,
        "grid_code": grids["code"].to_numpy()[grid_index],
        "reported_at": local,
        "dispatched_at": _local(stages[1]).floor("s"),
        "arrived_at": _local(stages[2]).floor("s"),
        "resolved_at": _local(stages[3]).floor("s"),
        "lon": points[:, 0].round(6),
        "lat": points[:, 1].round(6),
    })
    return gpd.GeoDataFrame(frame, geometry=gpd.points_from_xy(frame["lon"], frame["lat"]), crs=CRS)


# Where enterprises have their premises: weight of a building by its use (times the square root of its floors).
_ENTERPRISE_SITE_WEIGHT = {"industrial": 6.0, "office": 5.0, "commercial": 4.0, "mixed": 2.0, "residential": 0.3,
                           "public": 0.1}
# Which industry mix a site has (columns of reference.INDUSTRIES): industrial, office, shops and housing.
_ENTERPRISE_SITE_MIX = {"industrial": 0, "office": 1, "public": 1, "commercial": 2, "mixed": 2, "residential": 2}
_OVERDUE_SHARE = {"major_hazard": 0.04, "key": 0.05}
_NEVER_INSPECTED_SHARE = 0.15  # of ordinary enterprises
_OPEN_HAZARDS_MEAN = {"major_hazard": 0.45, "key": 0.30, "ordinary": 0.08}


def build_enterprises(units, buildings, scale: Scale, rng, end: pd.Timestamp) -> gpd.GeoDataFrame:
    n = scale.enterprises
    use = buildings["use"].to_numpy()
    weight = pd.Series(use).map(_ENTERPRISE_SITE_WEIGHT).fillna(0.1).to_numpy() * np.sqrt(buildings["floors"])
    site = rng.choice(len(buildings), n, p=weight / weight.sum())
    mix = pd.Series(use[site]).map(_ENTERPRISE_SITE_MIX).fillna(2).to_numpy(dtype=int)

    industries = reference.INDUSTRIES
    shares = np.array([i[3:6] for i in industries], dtype=float)
    industry_index = np.empty(n, dtype=int)
    for column in range(shares.shape[1]):
        chosen = mix == column
        p = shares[:, column] / shares[:, column].sum()
        industry_index[chosen] = rng.choice(len(industries), int(chosen.sum()), p=p)
    p_major = np.array([i[6] for i in industries])[industry_index]
    p_key = np.array([i[7] for i in industries])[industry_index]
    draw = rng.random(n)
    risk = np.where(draw < p_major, "major_hazard", np.where(draw < p_major + p_key, "key", "ordinary"))
    major, key = risk == "major_hazard", risk == "key"

    median_staff = np.array([i[8] for i in industries], dtype=float)[industry_index] * np.where(major, 3.0, 1.0)
    employees = np.maximum(1, np.round(rng.lognormal(np.log(median_staff), 1.0))).astype(int)

    interval = np.select([major, key], [reference.INSPECTION_INTERVAL_DAYS["major_hazard"],
                                        reference.INSPECTION_INTERVAL_DAYS["key"]], 0).astype(float)
    overdue = (major & (rng.random(n) < _OVERDUE_SHARE["major_hazard"])) | \
        (key & (rng.random(n) < _OVERDUE_SHARE["key"]))
    supervised = major | key
    days_since = np.where(supervised,
                          np.where(overdue, interval + 1 + rng.exponential(60.0, n), rng.uniform(0, interval)),
                          rng.uniform(0, 3 * 365, n))
    never = ~supervised & (rng.random(n) < _NEVER_INSPECTED_SHARE)
    inspected = _utc(end) - (days_since * 86400).astype("timedelta64[s]")
    inspected = np.where(never, np.datetime64("NaT"), inspected)
    hazard_mean = pd.Series(risk).map(_OPEN_HAZARDS_MEAN).to_numpy() * np.where(overdue, 2.5, 1.0)

    # Premises are buildings: several enterprises may share one (an office tower, an industrial estate).
    centroids = shapely.centroid(buildings.geometry.to_numpy()[site])
    frame = pd.DataFrame({
        "enterprise_id": _ids("E", n, 7),
        "grid_code": buildings["grid_code"].to_numpy()[site],
        "industry": np.array([i[0] for i in industries])[industry_index],
        "employees": employees,
        "risk_class": risk,
        "last_inspected_at": _local(inspected),
        "open_hazards": rng.poisson(hazard_mean),
        "lon": shapely.get_x(centroids).round(6),
        "lat": shapely.get_y(centroids).round(6),
    })
    return gpd.GeoDataFrame(frame, geometry=gpd.points_from_xy(frame["lon"], frame["lat"]), crs=CRS)


RESIDENTS_PER_ASSISTANT = 2_000
_VACANT_POST_SHARE = 0.04
_ON_DUTY = {"weekday": 0.90, "weekend": 0.60}


def build_grid_workers(units, buildings, scale: Scale, rng) -> pd.DataFrame:
    grids = grids_of(units)
    people, _places = _per_grid(grids, buildings)
    # Streets staff their cells unevenly: some have more assistants than their residents call for, some fewer.
    staffing = rng.lognormal(0, 0.35, len(grids))
    count = 1 + rng.poisson(people / RESIDENTS_PER_ASSISTANT * staffing)
    grid_index = np.repeat(np.arange(len(grids)), count)
    first = np.r_[True, grid_index[1:] != grid_index[:-1]]
    return pd.DataFrame({
        "worker_id": _ids("W", len(grid_index), 6),
        "grid_code": grids["code"].to_numpy()[grid_index],
        "post": np.where(first, reference.GRID_WORKER_POSTS[0][0], reference.GRID_WORKER_POSTS[1][0]),
    })


def build_patrols(grid_workers: pd.DataFrame, scale: Scale, rng, end: pd.Timestamp) -> pd.DataFrame:
    days = pd.date_range((end - pd.Timedelta(days=scale.patrol_days)).normalize(), end.normalize(), freq="D")
    workers, n_days = len(grid_workers), len(days)
    duty = np.where(days.day_of_week >= 5, _ON_DUTY["weekend"], _ON_DUTY["weekday"])
    on_duty = (rng.random((workers, n_days)) < duty[None, :]) & \
        (rng.random(workers) >= _VACANT_POST_SHARE)[:, None]
    per_day = np.where(on_duty, rng.integers(2, 5, (workers, n_days)), 0)
    worker, day = np.nonzero(per_day)
    count = per_day[worker, day]
    total = int(count.sum())
    j = np.arange(total) - np.repeat(np.cumsum(count) - count, count)  # the patrol's number in its day, from 0
    worker, day, k = np.repeat(worker, count), np.repeat(day, count), np.repeat(count, count)
    # The working day 08:00–20:00 is cut into one slot per patrol, so a worker's patrols never overlap.
    slot = 720.0 / k
    duration = rng.uniform(30.0, np.minimum(100.0, 0.8 * slot))
    start_minute = 480.0 + j * slot + rng.random(total) * (slot - duration)
    started = days.tz_convert("UTC").tz_localize(None).to_numpy()[day] + _minutes(start_minute)
    ended = started + _minutes(duration)
    end_utc = _utc(end)
    keep = started <= end_utc
    order = np.argsort(started[keep], kind="stable")
    index = np.flatnonzero(keep)[order]
    started, ended, worker = started[index], ended[index], worker[index]
    ended = np.where(ended <= end_utc, ended, np.datetime64("NaT"))  # still under way at the end of the data

    # How many issues a patrol finds depends on its cell (a market street, a village of rented rooms, a park).
    cells, cell_of_worker = np.unique(grid_workers["grid_code"].to_numpy(), return_inverse=True)
    issue_rate = 0.3 * rng.lognormal(0, 0.6, len(cells))
    return pd.DataFrame({
        "patrol_id": _ids("P", len(index), 8),
        "worker_id": grid_workers["worker_id"].to_numpy()[worker],
        "grid_code": grid_workers["grid_code"].to_numpy()[worker],
        "started_at": _local(started).floor("s"),
        "ended_at": _local(ended).floor("s"),
        "issues_found": rng.poisson(issue_rate[cell_of_worker[worker]]),
    })


BAOAN = "440306"
BAOAN_CAMERA_SHARE = 131_000 / 380_000
_AI_CAMERA_SHARE = {"440309": 0.45, "core": 0.35, "other": 0.22}
_CAMERA_OFFLINE_SHARE = {"core": 0.02, "other": 0.035}


def build_cameras(units, buildings, scale: Scale, rng, end: pd.Timestamp) -> gpd.GeoDataFrame:
    grids = grids_of(units)
    people, places = _per_grid(grids, buildings)
    weight = people + 60 * places + 200  # streets and squares have cameras, not only homes
    # Bao'an's own count fixes its share (131,000 of the 380,000 feeds); the other districts share the rest.
    in_baoan = (grids["district_code"] == BAOAN).to_numpy()
    if in_baoan.any() and (~in_baoan).any():
        p = np.where(in_baoan, BAOAN_CAMERA_SHARE * weight / weight[in_baoan].sum(),
                     (1 - BAOAN_CAMERA_SHARE) * weight / weight[~in_baoan].sum())
    else:  # a city without Bao'an (the province sample's other cities): by weight alone
        p = weight
    n = scale.cameras
    grid_index = rng.choice(len(grids), n, p=p / p.sum())
    district = grids["district_code"].to_numpy()[grid_index]
    core = grids["core"].to_numpy()[grid_index]
    ai_share = np.where(district == "440309", _AI_CAMERA_SHARE["440309"],
                        np.where(core, _AI_CAMERA_SHARE["core"], _AI_CAMERA_SHARE["other"]))
    offline = rng.random(n) < np.where(core, _CAMERA_OFFLINE_SHARE["core"], _CAMERA_OFFLINE_SHARE["other"])
    # Online cameras reported in the last minutes; offline ones went dark between 75 minutes and 10 days ago.
    silent_minutes = np.where(offline, rng.uniform(75, 10 * 24 * 60, n), rng.uniform(0, 5, n))
    points = _points_in_grids(grids, grid_index, rng)
    frame = pd.DataFrame({
        "camera_id": _ids("CAM", n, 7),
        "grid_code": grids["code"].to_numpy()[grid_index],
        "ai_enabled": rng.random(n) < ai_share,
        "status": np.where(offline, "offline", "online"),
        "last_seen_at": _local(_utc(end) - _minutes(silent_minutes)).floor("s"),
        "lon": points[:, 0].round(6),
        "lat": points[:, 1].round(6),
    })
    return gpd.GeoDataFrame(frame, geometry=gpd.points_from_xy(frame["lon"], frame["lat"]), crs=CRS)


_POOR_ROAD_SHARE = 0.04        # of segments, before the class factor and the old-neighbourhood factor
_FAIR_ROAD_SHARE = 0.22
_OLD_NEIGHBOURHOOD_YEAR = 1998  # cells whose buildings' median year is earlier have worn pavements (×1.8)


def build_road_segments(units, buildings, scale: Scale, rng) -> gpd.GeoDataFrame:
    grids = grids_of(units)
    _people, places = _per_grid(grids, buildings)
    weight = places + 25 * grids["area_m2"].to_numpy() / 1e6 + 1  # roads serve buildings and cross open land
    n = scale.road_segments
    classes = reference.ROAD_CLASSES
    class_share = np.array([c[3] for c in classes])
    class_index = rng.choice(len(classes), n, p=class_share / class_share.sum())
    grid_index = rng.choice(len(grids), n, p=weight / weight.sum())
    length = np.clip(rng.lognormal(np.log(np.array([c[4] for c in classes])[class_index]), 0.45), 30, 4_000)

    year = buildings.groupby("grid_code")["year_built"].median().reindex(grids["code"]).fillna(2005).to_numpy()
    old = year[grid_index] < _OLD_NEIGHBOURHOOD_YEAR
    p_poor = _POOR_ROAD_SHARE * np.array([c[5] for c in classes])[class_index] * np.where(old, 1.8, 1.0)
    draw = rng.random(n)
    condition = np.where(draw < p_poor, "poor", np.where(draw < p_poor + _FAIR_ROAD_SHARE, "fair", "good"))
    core = grids["core"].to_numpy()[grid_index]
    congestion = np.array([c[6] for c in classes])[class_index] + np.where(core, 1.3, 0.0) + rng.normal(0, 1.4, n)
    points = _points_in_grids(grids, grid_index, rng)
    frame = pd.DataFrame({
        "segment_id": _ids("R", n, 6),
        "grid_code": grids["code"].to_numpy()[grid_index],
        "road_class": np.array([c[0] for c in classes])[class_index],
        "length_m": length.round(1),
        "condition": condition,
        "congestion_index": np.clip(congestion, 1.0, 10.0).round(1),
        "lon": points[:, 0].round(6),
        "lat": points[:, 1].round(6),
    })
    return gpd.GeoDataFrame(frame, geometry=gpd.points_from_xy(frame["lon"], frame["lat"]), crs=CRS)


# --- road network (the base map's roads) -------------------------------------------------------------------------
# A schematic network, not surveyed roads: expressways join neighbouring districts' centres, arterials neighbouring
# streets' and secondary roads neighbouring communities' (neighbours by Delaunay triangulation), each kept only
# where it runs over land, and bent a little at its middle so that the map does not read as a ruled grid.

ROAD_LEVELS = {"expressway": "district", "arterial": "street", "secondary": "community"}
_MAX_ROAD_KM = {"expressway": 40.0, "arterial": 9.0, "secondary": 3.0}


def build_roads(units: gpd.GeoDataFrame, rng: np.random.Generator) -> gpd.GeoDataFrame:
    from scipy.spatial import Delaunay

    city = units[units["level"] == "city"].geometry.iloc[0]
    land = shapely.prepared.prep(city.buffer(0.002))
    rows = []
    for road_class, level in ROAD_LEVELS.items():
        points = units[units["level"] == level].geometry.representative_point()
        xy = np.column_stack([points.x.to_numpy(), points.y.to_numpy()])
        if len(xy) < 3:
            continue
        triangles = Delaunay(xy).simplices
        edges = {tuple(sorted(e)) for t in triangles for e in ((t[0], t[1]), (t[1], t[2]), (t[0], t[2]))}
        for a, b in sorted(edges):
            start, end = xy[a], xy[b]
            km = np.hypot(*(end - start) * [102.0, 111.0])  # degrees to km at Shenzhen's latitude
            if km > _MAX_ROAD_KM[road_class]:
                continue
            middle = (start + end) / 2 + rng.normal(0, 0.06, 2) * (end - start)[::-1] * [1, -1]
            line = shapely.LineString([start, middle, end])
            if land.contains(line):
                rows.append((road_class, line))
    frame = pd.DataFrame({"road_id": _ids("RD", len(rows), 5), "road_class": [r[0] for r in rows]})
    return gpd.GeoDataFrame(frame, geometry=[r[1] for r in rows], crs=CRS)
