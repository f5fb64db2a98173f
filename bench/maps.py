"""City-scale benchmark of the map: the server time and bytes of every map interaction and of a building tile,
against the budgets of issue 4 (a map interaction under 300 ms and 2 MB on the wire; a tile under 50 ms).

    .venv/bin/python bench/maps.py                                   # data/bench-city.sqlite (build: bench/run.py)
    .venv/bin/python bench/maps.py --repeat 7 --no-profile
    (bench/run.py --scale city runs it too, after its own figures)

Everything goes through the app's real endpoints with Flask's test client, in process, so a time is the server's
alone and the bytes are the response body as Dash (or the tile route) sends it, uncompressed. A row shows the first
call (cold: whatever the interaction memoises is computed then, in the order below, which is a user's session on a
freshly started server) and the median of ``--repeat`` warm calls after it. The verdict judges the warm median and
the bytes; "first NO" says the cold call was over the time budget. Order of the session:

1. pages (the layout callback, as when the URL changes): city, Futian, a street, a community, a grid cell and a
   building in it, with the default layers; layer toggles (``restyle_map``) one layer at a time at the city and in
   Futian, so that each layer's first computation shows on its toggle; the same pages with every layer on; another
   window; the buildings' colouring; map clicks (``navigate``); playback (``control_playback``'s first play, which
   ships the day's points as binary, and ``follow_play_head`` entering a new hour: the first time for five hours,
   then again);
2. building tiles: ``BuildingTiles.build`` on every building; ``building_properties`` per colouring (first call);
   encode time and bytes of the densest tile at z14, z15 and z16 and of the median one, per colouring; the route
   ``/tiles/buildings/{z}/{x}/{y}.pbf`` cold, uncached and cached, and a revalidation (304);
3. the uncached compute time of each memoised map source, to say where a cold call's time goes.

Then the table, a Markdown copy for the README, and for each interaction over budget a cProfile of one warm call and
the bytes of each map layer in its response.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import statistics
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dashboard import ids  # noqa: E402
from dashboard.maps import routes, sources  # noqa: E402
from dashboard.maps.registry import DEFAULT_LAYERS, MAP_LAYERS  # noqa: E402
from dashboard.maps.tiles import INDEX_ZOOM, MIN_ZOOM, BuildingTiles  # noqa: E402
from signin import signed_in_client  # noqa: E402
from timing import median_seconds  # noqa: E402  (bench/ is on the path as the script's folder)

os.environ.setdefault("CITYTWIN_ESCALATION_MINUTES", "0")  # a bench never writes to the city it measures

DEFAULT_DATABASE = ROOT / "data" / "bench-city.sqlite"
INTERACTION_MS, INTERACTION_BYTES, TILE_MS = 300, 2_000_000, 50
FUTIAN = "440304"
ALL_LAYERS = ",".join(MAP_LAYERS)
TILE_ZOOMS = (14, 15, 16)
COLORS = sources.BUILDING_COLOR_MODES
INDICATOR, WINDOW = "on_time_rate", "7d"


@dataclass
class Row:
    section: str
    name: str
    median: float | None  # seconds, warm
    first: float | None = None  # seconds, the cold call
    size: int | None = None  # bytes
    budget_ms: float | None = None
    budget_bytes: int | None = None
    profile: object = None  # a warm call to profile when over budget
    body: object = None  # the parsed response, for the bytes of each layer
    error: str | None = None  # the call failed: what the server said

    @property
    def within(self) -> bool | None:
        """The warm median (the cold call where only that is measured) and the bytes against the budgets."""
        if self.budget_ms is None or self.error:
            return None
        seconds = self.median if self.median is not None else self.first
        return (seconds * 1000 <= self.budget_ms
                and (self.budget_bytes is None or self.size is None or self.size <= self.budget_bytes))

    @property
    def verdict(self) -> str:
        if self.error:
            return "FAILED"
        if self.within is None:
            return "—"
        if self.median is None:
            return ("yes" if self.within else "NO") + " (cold)"
        cold_over = self.first is not None and self.first * 1000 > self.budget_ms
        return ("yes" if self.within else "NO") + (" (first NO)" if cold_over else "")


def ms(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds * 1000:,.0f}" if seconds >= 0.01 else f"{seconds * 1000:.1f}"


def first_and_median(func, repeat: int) -> tuple[float, float, object]:
    """The first call's time (cold), the median of ``repeat`` calls after it (warm) and the last result."""
    started = time.perf_counter()
    func()
    first = time.perf_counter() - started
    median, result = median_seconds(func, repeat)
    return first, median, result


# --- Dash requests -------------------------------------------------------------------------------------------------

class Callbacks:
    """Builds ``/_dash-update-component`` bodies from the app's own ``/_dash-dependencies``, as the renderer does
    (so the outputs of ``allow_duplicate`` callbacks carry their hash)."""

    def __init__(self, client):
        self.client = client
        self.dependencies = client.get("/_dash-dependencies").get_json()

    def body(self, output: str, inputs: dict, state: dict, changed: str) -> dict:
        dependency = next(d for d in self.dependencies if output in d["output"] and not d.get("clientside_function"))
        outputs = []
        for part in dependency["output"].strip(".").split("..."):
            component, _, prop = part.partition(".")
            outputs.append({"id": component, "property": prop})
        return {
            "output": dependency["output"],
            "outputs": outputs if len(outputs) > 1 else outputs[0],
            "inputs": [dict(i, value=inputs.get(f"{i['id']}.{i['property']}")) for i in dependency["inputs"]],
            "state": [dict(s, value=state.get(f"{s['id']}.{s['property']}")) for s in dependency["state"]],
            "changedPropIds": [changed],
        }

    def post(self, body: dict) -> tuple[int, dict]:
        response = self.client.post("/_dash-update-component", data=json.dumps(body), content_type="application/json")
        if response.status_code not in (200, 204):
            raise RuntimeError(f"callback {body['output']} failed with {response.status_code}: "
                               f"{response.data[:300]!r}")
        return len(response.data), (response.get_json() if response.status_code == 200 else {})

    def restyle(self, layers, color: str, search: str) -> dict:
        return self.body(f"{ids.LAYER_LEGENDS}.children", {f"{ids.LAYER_TOGGLES}.value": list(layers),
                                                           f"{ids.BUILDING_COLOR}.value": color},
                         {f"{ids.URL}.search": search}, f"{ids.LAYER_TOGGLES}.value")

    def play(self, search: str, clicks: int = 1) -> dict:
        return self.body(f"{ids.MAP}.timeFilter", {f"{ids.PLAY}.n_clicks": clicks, f"{ids.PLAY_SCRUB}.data": 24,
                                                   f"{ids.PLAY_SPEED}.value": "normal"},
                         {f"{ids.MAP}.currentTime": None, f"{ids.URL}.search": search,
                          f"{ids.LAYER_TOGGLES}.value": list(DEFAULT_LAYERS), f"{ids.BUILDING_COLOR}.value": "use"},
                         f"{ids.PLAY}.n_clicks")

    def play_head(self, hour: int, search: str) -> dict:
        """The play head entering ``hour``: the browser sets the clock itself and sends only the new hour."""
        return self.body(f"{ids.KPI_PANEL}.children", {f"{ids.PLAY_HOUR}.data": hour},
                         {f"{ids.URL}.search": search}, f"{ids.PLAY_HOUR}.data")

    def click(self, properties: dict, search: str) -> dict:
        return self.body(f"{ids.URL}.search", {f"{ids.MAP}.clickInfo": {"picked": True, "properties": properties},
                                               f"{ids.INDICATOR}.value": INDICATOR, f"{ids.WINDOW}.value": WINDOW},
                         {f"{ids.URL}.search": search, f"{ids.LAYER_TOGGLES}.value": list(DEFAULT_LAYERS),
                          f"{ids.BUILDING_COLOR}.value": "use"}, f"{ids.MAP}.clickInfo")


def page_body(search: str) -> dict:
    from capture import pages_request  # the browser's own body (bench/capture.py), the URL changed
    return pages_request(search)


def layer_sizes(body) -> dict[str, int]:
    """Bytes of each deck.gl layer (by id) anywhere in a callback's response, largest first."""
    from capture import json_objects
    sizes: dict[str, int] = {}
    for node in json_objects(body):
        if isinstance(node.get("layers"), list):
            for layer in node["layers"]:
                if isinstance(layer, dict) and "id" in layer:
                    sizes[layer["id"]] = sizes.get(layer["id"], 0) + len(json.dumps(layer))
    return dict(sorted(sizes.items(), key=lambda kv: -kv[1]))


# --- the benchmark -------------------------------------------------------------------------------------------------

def interactions(app, repeat: int, add) -> str:
    """Every map interaction; returns the building of the drill path."""
    from dashboard import services
    service = services.get()
    city = service.city()
    client = signed_in_client(app)
    callbacks = Callbacks(client)

    def measure(name: str, body: dict, section: str = "interaction") -> dict:
        try:
            first, median, (size, parsed) = first_and_median(lambda: callbacks.post(body), repeat)
        except RuntimeError as error:  # one broken interaction must not hide the figures of the others
            add(Row(section, name, None, error=str(error).splitlines()[0][:160]))
            return {}
        add(Row(section, name, median, first, size, INTERACTION_MS, INTERACTION_BYTES,
                profile=lambda: callbacks.post(body), body=parsed))
        return parsed

    street = sorted(city.children(FUTIAN).index)[0]
    community = sorted(city.children(street).index)[0]
    grid = sorted(city.children(community).index)[0]
    building = grid_building(service, grid)
    units = [("city", ""), ("Futian (district)", f"?unit={FUTIAN}"), (f"street {street}", f"?unit={street}"),
             (f"community {community}", f"?unit={community}"), (f"grid {grid}", f"?unit={grid}"),
             (f"building {building}", f"?building={building}")]
    print(f"  drill path: {FUTIAN} → {street} → {community} → {grid} → {building}", flush=True)

    for label, search in units:
        measure(f"page: {label}, default layers", page_body(search))
    for building_id in FAILING_CARDS[:1]:
        measure(f"page: building {building_id} (its card fails)", page_body(f"?building={building_id}"))
    for label, search in units[:2]:
        for layer_id in MAP_LAYERS:
            if layer_id in DEFAULT_LAYERS:
                continue
            measure(f"toggle {layer_id} on: {label}", callbacks.restyle([*DEFAULT_LAYERS, layer_id], "use", search))
        measure(f"toggle buildings off: {label}", callbacks.restyle(["units"], "use", search))
    for label, search in units:
        joiner = "&" if search else "?"
        measure(f"page: {label}, all layers", page_body(f"{search}{joiner}layers={ALL_LAYERS}"))
    for window in ("today", "30d"):
        measure(f"page: city, window {window}", page_body(f"?window={window}"))
    measure("page: city, indicator resolution_rate", page_body("?indicator=resolution_rate"))
    for color in COLORS[1:]:
        for label, search in units[:2] + units[4:5]:
            measure(f"colour buildings by {color}: {label}", callbacks.restyle(DEFAULT_LAYERS, color, search))
    measure("click a district (→ URL)", callbacks.click({"code": FUTIAN}, ""))
    measure("click a building (→ URL)", callbacks.click({"building_id": building}, f"?unit={grid}"))

    for label, search in units[:2] + units[4:5]:
        measure(f"playback, first play: {label}", callbacks.play(search))
    for label, search in units[:2]:
        # Entering an hour: after the background warm-up (app.warm_in_background) its KPIs are ready; the raw cost of
        # one hour is the "compute playback KPIs" row below.
        cold = []
        for hour in range(2, 2 + max(repeat, 5)):
            started = time.perf_counter()
            size, parsed = callbacks.post(callbacks.play_head(hour, search))
            cold.append(time.perf_counter() - started)
        body = callbacks.play_head(2, search)
        unseen = iter(range(2 + max(repeat, 5), 25))  # the profile, if over budget, enters an hour not seen yet
        add(Row("interaction", f"play head enters a new hour ({max(repeat, 5)} hours, after the warm-up): {label}",
                statistics.median(cold), cold[0], size, INTERACTION_MS, INTERACTION_BYTES, body=parsed,
                profile=lambda search=search, unseen=unseen: callbacks.post(
                    callbacks.play_head(next(unseen), search))))
        measure(f"play head enters an hour seen before: {label}", body)
    return building


def grid_building(service, grid: str) -> str:
    """The first building of the grid cell's list (alarms first, then the tallest) whose card can be drawn; the
    ones before it whose card fails are reported, and the page of the first one is measured anyway."""
    from dashboard import services
    city = service.city()
    states = sources.sensor_states(city)
    listed = service.grid_buildings(grid)["building_id"].tolist()
    for building_id in listed:
        try:
            services.building_card(city, building_id, states)
            return building_id
        except Exception as error:  # noqa: BLE001 (a product bug to report, not to stop on)
            print(f"  building_card({building_id}) fails: {type(error).__name__}: {error}", flush=True)
            FAILING_CARDS.append(building_id)
    return listed[0]


FAILING_CARDS: list[str] = []


def tile_runs(index: BuildingTiles, z: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every non-empty tile at zoom z: x, y and its building count."""
    codes, counts = np.unique(index.keys >> np.uint64(2 * (INDEX_ZOOM - z)), return_counts=True)

    def compact(v):  # the inverse of tiles._spread_bits
        v = v & np.uint64(0x55555555)
        v = (v | (v >> np.uint64(1))) & np.uint64(0x33333333)
        v = (v | (v >> np.uint64(2))) & np.uint64(0x0F0F0F0F)
        v = (v | (v >> np.uint64(4))) & np.uint64(0x00FF00FF)
        v = (v | (v >> np.uint64(8))) & np.uint64(0x0000FFFF)
        return v.astype(np.int64)
    return compact(codes), compact(codes >> np.uint64(1)), counts


def tiles(app, repeat: int, add) -> None:
    from dashboard import services
    service = services.get()
    city = service.city()
    client = signed_in_client(app)
    buildings = city["buildings"]

    def url(z, x, y, color):
        return f"/tiles/buildings/{z}/{x}/{y}.pbf?color={color}&indicator={INDICATOR}&window={WINDOW}"

    def get(path, headers=None):
        response = client.get(path, headers=headers or {})
        if response.status_code not in (200, 304):
            raise RuntimeError(f"GET {path} failed with {response.status_code}: {response.data[:200]!r}")
        return response

    # The index is built here to find the tiles (and timed); the route's first tile builds its own, memoised.
    started = time.perf_counter()
    build_first = BuildingTiles.build(buildings)
    build_once = time.perf_counter() - started
    x, y, counts = tile_runs(build_first, 16)
    densest16 = (16, int(x[counts.argmax()]), int(y[counts.argmax()]))
    started = time.perf_counter()
    response = get(url(*densest16, "use"))
    add(Row("tile", "route, first tile after start (builds index + colours by use)", None,
            time.perf_counter() - started, len(response.data), TILE_MS))
    first_route = {}
    for color in COLORS[1:]:
        started = time.perf_counter()
        response = get(url(*densest16, color))
        first_route[color] = time.perf_counter() - started
        add(Row("tile", f"route, first {color} tile (computes the colouring)", None, first_route[color],
                len(response.data), TILE_MS))

    seconds, index = median_seconds(lambda: BuildingTiles.build(buildings), max(2, repeat // 2))
    add(Row("tile", f"BuildingTiles.build, {len(buildings):,} buildings ({len(index.xs):,} vertices)", seconds,
            build_once, None))

    properties = {}
    for color in COLORS:
        first, median, properties[color] = first_and_median(
            lambda: routes.building_properties(service.generation(), color, INDICATOR, WINDOW), max(2, repeat // 2))
        add(Row("tile", f"building_properties, color={color}", median, first, None))

    for z in TILE_ZOOMS:
        x, y, counts = tile_runs(index, z)
        order = np.argsort(counts, kind="stable")
        for kind, pick in (("densest", order[-1]), ("median", order[len(order) // 2])):
            tile = (z, int(x[pick]), int(y[pick]))
            for color in COLORS:
                first, median, data = first_and_median(lambda: index.encode(*tile, properties[color]), repeat)
                add(Row("tile", f"encode z{z} {kind} ({counts[pick]:,} buildings), {color}", median, first,
                        len(data), TILE_MS, profile=lambda: index.encode(*tile, properties[color])))

    x, y, counts = tile_runs(index, MIN_ZOOM)
    densest = (MIN_ZOOM, int(x[counts.argmax()]), int(y[counts.argmax()]))
    for color in COLORS:
        def uncached(color=color):
            routes._cache._tiles.clear()  # the index and colouring stay memoised; the tile is cut again
            return get(url(*densest, color))
        first, median, response = first_and_median(uncached, repeat)
        add(Row("tile", f"route, densest z{MIN_ZOOM} tile (the coarsest served), not cached, {color}", median,
                first, len(response.data), TILE_MS, profile=uncached))
    get(url(*densest, "use"))
    first, median, response = first_and_median(lambda: get(url(*densest, "use")), repeat)
    add(Row("tile", f"route, densest z{MIN_ZOOM} tile, cached", median, None, len(response.data), TILE_MS))
    etag = response.headers["ETag"]
    first, median, response = first_and_median(lambda: get(url(*densest, "use"), {"If-None-Match": etag}), repeat)
    add(Row("tile", f"route, revalidation ({response.status_code})", median, None, len(response.data), TILE_MS))


def source_costs(add, building: str) -> None:
    """The uncached compute of each memoised map source (what a cold interaction pays), one run each."""
    from dashboard import services
    from dashboard.components.playback import playback_layers
    from metrics.engine import compare, rank_among_siblings
    from metrics.registry import INDICATORS
    from metrics.spec import Window, named_window
    service = services.get()
    city = service.city()
    window = named_window(WINDOW, city.as_of)
    city_code = service.resolve_unit(None)
    start, _ = service.playback_period()
    headline = sorted({i for i, ind in INDICATORS.items() if ind.headline} | {INDICATOR})
    grid = services.building_card(city, building, sources.sensor_states(city)).grid_code
    states = sources.sensor_states(city)
    cells = service.order_cells()
    cases = [
        ("sensor_states (every sensor)", lambda: sources.sensor_states(city)),
        ("order_cells (H3 res 10 of every order)", lambda: sources.order_cells(city)),
        ("order_hexes: city, res 7",
         lambda: sources.order_hexes(city, cells, city_code, window.start, window.end, 7)),
        ("order_hexes: Futian, res 8", lambda: sources.order_hexes(city, cells, FUTIAN, window.start, window.end, 8)),
        ("order_points: city, 7 days", lambda: sources.order_points(city, city_code, window.start, window.end)),
        ("order_points: Futian, 7 days", lambda: sources.order_points(city, FUTIAN, window.start, window.end)),
        ("sensor_clusters: city, res 6", lambda: sources.sensor_clusters(city, states, city_code, 6)),
        ("detect_hotspots 7d (Services.hotspots)", lambda: _uncached_hotspots(service)),
        ("children_geojson: city", lambda: services.children_geojson(city, city_code)),
        ("children_geojson: Futian", lambda: services.children_geojson(city, FUTIAN)),
        (f"building_card {building}", lambda: services.building_card(city, building, states)),
        ("grid_buildings (scan of every building)", lambda: service.grid_buildings(grid)),
        ("playback_layers: city (day's orders + alarms)", lambda: playback_layers(city, city_code, start)),
        ("playback_layers: Futian", lambda: playback_layers(city, FUTIAN, start)),
        ("playback KPIs, first 5 h, every district", lambda: rank_among_siblings(
            compare(city, Window(start, start + pd.Timedelta(hours=5), "first 5 h"), headline, ["district"]),
            city.units)),
    ]
    for name, compute in cases:
        started = time.perf_counter()
        compute()
        add(Row("source", f"compute {name}", None, time.perf_counter() - started, None))


def _uncached_hotspots(service):
    hotspots = service._current().hotspots
    saved = hotspots.pop(WINDOW, None)
    try:
        return service.hotspots(WINDOW)
    finally:
        if saved is not None:
            hotspots[WINDOW] = saved


def print_table(rows: list[Row]) -> None:
    print()
    print(f"{'interaction':<78} {'first ms':>9} {'median ms':>10} {'bytes':>12}  within budget")
    for row in rows:
        print(f"{row.name:<78} {ms(row.first):>9} {ms(row.median):>10} "
              f"{'' if row.size is None else f'{row.size:,}':>12}  {row.verdict}")
        if row.error:
            print(f"    {row.error}")
    print("\nMarkdown (README):\n")
    print("| interaction | first ms | median ms | bytes | within budget |")
    print("|---|---:|---:|---:|---|")
    for row in rows:
        print(f"| {row.name} | {ms(row.first)} | {ms(row.median)} | "
              f"{'' if row.size is None else f'{row.size:,}'} | {row.verdict} |")


def profile_over_budget(rows: list[Row]) -> None:
    """For each row over budget: the bytes of each map layer in its response, and a cProfile of one warm call
    (of one more cold call for the play head's new hour); a cold tile's time is in the compute rows above."""
    over = [r for r in rows if r.within is False]
    if not over:
        return
    print(f"\n{len(over)} over budget. Where the time and the bytes go:")
    for row in over:
        print(f"\n=== {row.name}: {ms(row.median if row.median is not None else row.first)} ms "
              f"(budget {row.budget_ms:.0f}), "
              f"{'' if row.size is None else f'{row.size:,} B'}")
        if row.body:
            sizes = layer_sizes(row.body)
            if sizes:
                print("  bytes per map layer: " + ", ".join(f"{k} {v:,}" for k, v in list(sizes.items())[:8]))
        if row.profile is not None and (row.median or 0) * 1000 > row.budget_ms:
            profiler = cProfile.Profile()
            profiler.enable()
            row.profile()
            profiler.disable()
            out = io.StringIO()
            stats = pstats.Stats(profiler, stream=out)
            stats.sort_stats("tottime").print_stats(10)
            stats.sort_stats("cumulative").print_stats(f"{ROOT}/(dashboard|layers|metrics)", 12)
            print("\n".join(line for line in out.getvalue().splitlines()
                            if line.strip() and not line.startswith(("   Ordered", "   List reduced"))))


def run(app, repeat: int = 5, profile: bool = True) -> list[Row]:
    """Measure everything (``app`` freshly created, nothing of the map computed yet); print as it goes."""
    rows: list[Row] = []
    repeat = max(repeat, 5)

    def add(row: Row) -> None:
        rows.append(row)
        print(f"{row.name:<78} first {ms(row.first):>7} ms  median {ms(row.median):>7} ms  "
              f"{'' if row.size is None else f'{row.size:>11,} B'}  {row.verdict}", flush=True)

    # create_app warms the other windows in a thread; measuring beside it would time the GIL, not the map.
    for thread in threading.enumerate():
        if thread.name == "warm-windows":
            started = time.perf_counter()
            thread.join()
            print(f"  (waited {time.perf_counter() - started:.1f} s for the app's window warm-up)", flush=True)
    building = interactions(app, repeat, add)
    tiles(app, repeat, add)
    source_costs(add, building)
    print_table(rows)
    if profile:
        profile_over_budget(rows)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=f"sqlite:///{DEFAULT_DATABASE}")
    parser.add_argument("--repeat", type=int, default=5, help="warm runs per median (at least 5)")
    parser.add_argument("--no-profile", action="store_true", help="skip the profiles of what is over budget")
    args = parser.parse_args(argv)
    from app import create_app
    started = time.perf_counter()
    app = create_app(args.database_url)
    print(f"citytwin map bench — {args.database_url}; app start {time.perf_counter() - started:.1f} s", flush=True)
    from capture import captured_for
    captured_for(app)
    run(app, args.repeat, profile=not args.no_profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
