"""The layer registry: every layer citytwin stores is declared here once.

A :class:`LayerSpec` says what a layer is (id, title, geometry), which columns it must have and of which kind, which
column carries its time, and how it is stored. The store builds its tables from these specs, the loader checks every
frame it returns against them, and the importer and the dashboard read titles and columns from here, so a new layer
is one more entry in :data:`LAYERS`.

Column kinds (portable across SQLite and PostgreSQL):

``str``      text
``int``      64-bit integer; nullable (pandas ``Int64``) where the spec says so
``float``    double
``bool``     stored as 0/1, nullable booleans come back as pandas ``boolean``
``time``     an instant, stored as UTC epoch seconds (an indexed integer is fast and identical on both back ends);
             loaded as a tz-aware timestamp in the city's time zone
``polygon``  the layer's geometry, stored as a geometry column (PostGIS) or WKB (SQLite)

Point layers keep ``lon``/``lat`` float columns instead of a geometry column: millions of orders as two doubles are
cheaper to store, index and load than WKB, and the loader builds the point geometry from them — except for a layer
whose spec says ``point_geometry=False`` (the orders, enterprises and cameras): it loads as a plain frame with
lon/lat alone, and whatever needs its points makes them where it uses them (:func:`layers.load.with_points`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

CITY_TIMEZONE = "Asia/Shanghai"
CRS = "EPSG:4326"
# Local metric CRS for areas and distances in Shenzhen (UTM zone 49N).
METRIC_CRS = "EPSG:32649"

LEVELS = ("city", "district", "street", "community", "grid")
"""The administrative hierarchy of a city, from the top. Each unit's parent is on the level before it."""
PROVINCE = "province"
ALL_LEVELS = (PROVINCE, *LEVELS)
"""The levels a store may hold: a province store (``make sample SCALE=province``) has one unit of level
``province`` above its cities (each city's parent); a single-city store has none, its city has no parent, and
nothing about it changes. The province is optional above the city rather than a level every store must have,
so that every city already imported, and every city to come, keeps its five levels as they are."""


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # str | int | float | bool | time | polygon | line
    nullable: bool = False
    description: str = ""
    default: object = None  # the value rows stored before the column existed get (see Store.create_schema)


@dataclass(frozen=True)
class LayerSpec:
    """One stored layer: its table, columns and geometry."""

    id: str
    title: str
    title_zh: str
    geometry: str  # "polygon" | "line" | "point" | "none"
    columns: tuple[Column, ...]
    key: str
    time_column: str | None = None
    description: str = ""
    indexes: tuple[str, ...] = field(default_factory=tuple)
    unique_key: bool = False  # the key is unique (a unique index): rows are addressed by it, not just grouped
    # A point layer loads as a GeoDataFrame of shapely points made from lon/lat; False: as a plain frame with lon/lat
    # alone, for a layer of millions of rows that nothing reads as shapes (the orders).
    point_geometry: bool = True

    @property
    def has_geometry(self) -> bool:
        """Whether the layer loads as a GeoDataFrame (polygons, lines, or points the spec asks to be built)."""
        return self.geometry in ("polygon", "line") or (self.geometry == "point" and self.point_geometry)

    @property
    def table(self) -> str:
        return self.id

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"layer {self.id!r} has no column {name!r}")


def _cols(*specs: tuple) -> tuple[Column, ...]:
    return tuple(Column(*s) for s in specs)


UNITS = LayerSpec(
    id="units",
    title="Administrative units",
    title_zh="行政区划与网格",
    geometry="polygon",
    key="code",
    description="City, districts, streets, communities and grid cells; each nested exactly in its parent.",
    columns=_cols(
        ("code", "str"),
        ("level", "str"),
        ("parent_code", "str", True),
        ("name", "str"),
        ("name_zh", "str"),
        ("geometry", "polygon"),
    ),
    indexes=("level", "parent_code"),
)

BUILDINGS = LayerSpec(
    id="buildings",
    title="Buildings",
    title_zh="建筑",
    geometry="polygon",
    key="building_id",
    description="Building footprints with height, use, age and residents.",
    columns=_cols(
        ("building_id", "str"),
        ("grid_code", "str"),
        ("height_m", "float"),
        ("floors", "int"),
        ("use", "str"),
        ("year_built", "int", True),
        ("residents", "int", True, "people living in it; empty: unknown (an import without the figure), never 0"),
        ("high_rise_100m", "bool"),
        ("geometry", "polygon"),
    ),
    indexes=("grid_code",),
)

SENSORS = LayerSpec(
    id="sensors",
    title="IoT sensors",
    title_zh="物联感知设备",
    geometry="point",
    key="sensor_id",
    description="Sensors located in a building or a grid cell, with their current status.",
    columns=_cols(
        ("sensor_id", "str"),
        ("kind", "str"),
        ("grid_code", "str"),
        ("building_id", "str", True),
        ("status", "str"),
        ("installed_at", "time"),
        ("last_seen_at", "time"),
        ("lon", "float"),
        ("lat", "float"),
    ),
    indexes=("grid_code", "kind"),
)

READINGS = LayerSpec(
    id="readings",
    title="Sensor readings",
    title_zh="感知读数",
    geometry="none",
    key="sensor_id",
    time_column="ts",
    description="Hourly readings of the measuring sensors (PM2.5, noise, water level, traffic flow).",
    columns=_cols(("sensor_id", "str"), ("ts", "time"), ("value", "float")),
    indexes=("sensor_id", "ts"),
)

ALARMS = LayerSpec(
    id="alarms",
    title="Sensor alarms",
    title_zh="感知告警",
    geometry="none",
    key="alarm_id",
    time_column="raised_at",
    description="Alarms raised by sensors; an alarm with no clear time is still active.",
    columns=_cols(
        ("alarm_id", "str"),
        ("sensor_id", "str"),
        ("kind", "str"),
        ("severity", "str"),
        ("raised_at", "time"),
        ("cleared_at", "time", True),
        ("message", "str"),
    ),
    indexes=("sensor_id", "raised_at"),
)

EVENT_TYPES = LayerSpec(
    id="event_types",
    title="Responsibility list",
    title_zh="职责清单",
    geometry="none",
    key="code",
    description="Event types with their category, responsible department and time limit.",
    columns=_cols(
        ("code", "str"),
        ("category", "str"),
        ("name", "str"),
        ("name_zh", "str"),
        ("department", "str"),
        ("time_limit_hours", "int"),
    ),
)

CHANNELS = LayerSpec(
    id="channels",
    title="Intake channels",
    title_zh="受理渠道",
    geometry="none",
    key="code",
    columns=_cols(("code", "str"), ("name", "str"), ("name_zh", "str")),
)

ORDER_STAGES = ("received", "dispatched", "accepted", "handled", "feedback", "evaluated", "closed")
"""The stages of a work order, in order (受理 → 分拨 → 签收 → 处置 → 反馈 → 评价 → 办结), each with its ``<stage>_at``
column. ``evaluated`` may be skipped (an order nobody evaluates is closed after a wait) and a cancelled order is
closed without being handled. Supervision (督办) is not a stage every order passes: ``supervised_at`` marks the
escalation of an order to supervision (an overdue order, a red card), whatever stage it was in then. The lifecycle
and its allowed transitions are declared in :mod:`layers.lifecycle`."""

STATUS_AFTER_STAGE = {stage: stage for stage in ORDER_STAGES}
"""An order's status names the last stage it reached (the importer derives a missing status from the stage times;
``cancelled`` is the one status that is not a stage: see :data:`layers.lifecycle.STATUSES`)."""

ORDERS = LayerSpec(
    id="orders",
    title="Work orders",
    title_zh="民意诉求工单",
    geometry="point",
    key="order_id",
    unique_key=True,
    # No shapely point per order: at the city scale (3 M orders) building them took about 4 s of every start and
    # 0.65 GB, and nothing reads them — the maps draw orders from lon/lat (dashboard/maps/sources.py), the building
    # card measures distances from lon/lat, the history's GeoParquet makes its points from lon/lat.
    point_geometry=False,
    time_column="received_at",
    description="Citizen requests followed from intake to evaluation. Stage times hold the last time the order "
                "entered the stage (a reopen clears handled/feedback until they happen again).",
    columns=_cols(
        ("order_id", "str"),
        ("event_type", "str"),
        ("channel", "str"),
        ("department", "str"),
        ("grid_code", "str"),
        ("status", "str", False, "received | dispatched | accepted | handled | feedback | evaluated | closed | "
                                 "cancelled (layers.lifecycle.STATUSES)"),
        *((f"{stage}_at", "time", stage != "received") for stage in ORDER_STAGES),
        ("supervised_at", "time", True, "first escalation to supervision (督办); empty: never escalated"),
        ("deadline_at", "time"),
        ("satisfied", "bool", True),
        ("reopen_count", "int"),
        ("on_time", "bool", True),
        ("lon", "float"),
        ("lat", "float"),
        ("description", "str", True, "the citizen's words (at most 4,000 characters; shown as text, never HTML)"),
        ("address", "str", True, "the place as the citizen described it"),
        ("version", "int", False, "optimistic-concurrency version: +1 on every action (layers.workorders)", 1),
        ("rules_version", "int", True, "version of the responsibility list the order was dispatched under; "
                                       "empty: not dispatched by this system"),
    ),
    indexes=("grid_code", "received_at", "event_type", "status", "department", "deadline_at"),
)

PLANTED_HOTSPOTS = LayerSpec(
    id="planted_hotspots",
    title="Planted hotspots (sample city only)",
    title_zh="样例热点",
    geometry="none",
    key="hotspot_id",
    description="Ground truth of the recurring hotspots the generator planted, for testing hotspot detection.",
    columns=_cols(
        ("hotspot_id", "str"),
        ("event_type", "str"),
        ("grid_code", "str"),
        ("start_hour", "int"),
        ("end_hour", "int"),
        ("orders", "int"),
    ),
)

INCIDENTS = LayerSpec(
    id="incidents",
    title="Emergency incidents",
    title_zh="突发事件",
    geometry="point",
    key="incident_id",
    time_column="reported_at",
    description="Emergencies (fires, accidents, floods, gas leaks, …) from report to resolution. What had not "
                "happened by the end of the data is empty: not yet dispatched, arrived or resolved.",
    columns=_cols(
        ("incident_id", "str"),
        ("kind", "str"),
        ("severity", "str", False, "general | relatively_major | major | especially_major (levels IV–I)"),
        ("grid_code", "str"),
        ("reported_at", "time"),
        ("dispatched_at", "time", True),
        ("arrived_at", "time", True, "first responders on scene"),
        ("resolved_at", "time", True),
        ("lon", "float"),
        ("lat", "float"),
    ),
    indexes=("grid_code", "reported_at"),
)

ENTERPRISES = LayerSpec(
    id="enterprises",
    title="Enterprises under work-safety supervision",
    title_zh="安全生产监管企业",
    geometry="point",
    key="enterprise_id",
    point_geometry=False,  # 360,000 at the city scale, drawn from lon/lat, never read as shapes (see ORDERS)
    description="Enterprises on the work-safety register, at their premises, with their risk class, last "
                "inspection and open hazards (a current snapshot).",
    columns=_cols(
        ("enterprise_id", "str"),
        ("grid_code", "str"),
        ("industry", "str"),
        ("employees", "int"),
        ("risk_class", "str", False, "major_hazard | key | ordinary"),
        ("last_inspected_at", "time", True, "empty: never inspected"),
        ("open_hazards", "int", False, "hazards found and not yet fixed"),
        ("lon", "float"),
        ("lat", "float"),
    ),
    indexes=("grid_code", "risk_class"),
)

GRID_WORKERS = LayerSpec(
    id="grid_workers",
    title="Grid workers",
    title_zh="网格员",
    geometry="none",
    key="worker_id",
    description="The grid workers assigned to each grid cell (a current snapshot).",
    columns=_cols(
        ("worker_id", "str"),
        ("grid_code", "str"),
        ("post", "str", False, "full_time | assistant"),
    ),
    indexes=("grid_code",),
)

PATROLS = LayerSpec(
    id="patrols",
    title="Grid patrols",
    title_zh="网格巡查",
    geometry="none",
    key="patrol_id",
    time_column="started_at",
    description="Patrols of grid workers through their cell, with the issues they found; a patrol still under "
                "way at the end of the data has no end time.",
    columns=_cols(
        ("patrol_id", "str"),
        ("worker_id", "str"),
        ("grid_code", "str"),
        ("started_at", "time"),
        ("ended_at", "time", True),
        ("issues_found", "int"),
    ),
    indexes=("grid_code", "started_at"),
)

CAMERAS = LayerSpec(
    id="cameras",
    title="Video cameras",
    title_zh="视频监控",
    geometry="point",
    key="camera_id",
    point_geometry=False,  # 380,000 at the city scale, drawn from lon/lat, never read as shapes (see ORDERS)
    description="Public video cameras connected to the command center, with AI video analysis or not, and their "
                "current status.",
    columns=_cols(
        ("camera_id", "str"),
        ("grid_code", "str"),
        ("ai_enabled", "bool"),
        ("status", "str", False, "online | offline"),
        ("last_seen_at", "time"),
        ("lon", "float"),
        ("lat", "float"),
    ),
    indexes=("grid_code",),
)

ROAD_SEGMENTS = LayerSpec(
    id="road_segments",
    title="Road segments",
    title_zh="道路路段",
    geometry="point",
    key="segment_id",
    description="Road segments with class, length, pavement condition and current congestion. Stored as the "
                "segment's midpoint (lon/lat): the store has no line geometry yet.",
    columns=_cols(
        ("segment_id", "str"),
        ("grid_code", "str"),
        ("road_class", "str", False, "expressway | arterial | secondary | branch"),
        ("length_m", "float"),
        ("condition", "str", False, "good | fair | poor"),
        ("congestion_index", "float", False, "current value, 1 (free flow) to 10 (gridlock)"),
        ("lon", "float", False, "midpoint of the segment"),
        ("lat", "float", False, "midpoint of the segment"),
    ),
    indexes=("grid_code",),
)

ROADS = LayerSpec(
    id="roads",
    title="Road network",
    title_zh="路网",
    geometry="line",
    key="road_id",
    description="The road network for the base map: expressways, arterials and secondary roads as lines.",
    columns=_cols(
        ("road_id", "str"),
        ("road_class", "str", False, "expressway | arterial | secondary"),
        ("geometry", "line"),
    ),
)

LAYERS: dict[str, LayerSpec] = {
    spec.id: spec
    for spec in (UNITS, BUILDINGS, SENSORS, READINGS, ALARMS, EVENT_TYPES, CHANNELS, ORDERS, PLANTED_HOTSPOTS,
                 INCIDENTS, ENTERPRISES, GRID_WORKERS, PATROLS, CAMERAS, ROAD_SEGMENTS, ROADS)
}


def layer(layer_id: str) -> LayerSpec:
    try:
        return LAYERS[layer_id]
    except KeyError:
        raise KeyError(f"unknown layer {layer_id!r}; known layers: {', '.join(LAYERS)}") from None
