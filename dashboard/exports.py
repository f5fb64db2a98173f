"""Exports of the current view, served by the app: the KPI table as CSV and the 3D scene as one offline HTML file.

    GET /export/kpis.csv?unit=440304&window=7d
    GET /export/scene.html?unit=440304&indicator=on_time_rate&window=7d

A missing parameter means what it means on the map page (the city, on-time completion, the last 7 days); an unknown
one is refused with a 400 naming it. The PNG of the screen is made in the browser (assets/exports.js).

The scene is a pydeck deck rendered with ``offline=True``, which inlines the deck.gl bundle that pydeck ships. That is
not enough on its own: pydeck 0.9.3's page template still links mapbox-gl.js, two bootstrapcdn style sheets, the
MapLibre style sheet and the deck.gl widgets style sheet from CDNs whatever ``offline`` says. With no base map and
no widgets none of them is needed, so :func:`scene_html` removes those tags and refuses to return a page that
still loads anything from the network.
"""
from __future__ import annotations

import csv
import html
import io
import math
import re

import flask
import pydeck

from dashboard import auth, services
from dashboard.maps.deck import fit_view
from dashboard.theme import PALETTE, STATE_COLORS, STATE_LABELS, rgba
from metrics.registry import INDICATORS, TOPICS
from metrics.spec import DEFAULT_WINDOW, WINDOWS

DEFAULT_INDICATOR = "on_time_rate"
CSV_COLUMNS = ["unit_code", "unit_name", "unit_name_zh", "indicator", "name_en", "name_zh", "topic", "value",
               "display", "unit", "state", "previous", "change", "rank", "siblings", "window", "as_of"]
# Spreadsheets run a cell that starts with one of these as a formula; imported names are data, never formulas.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
EXTERNAL_TAG = re.compile(r"""<(?:script|link)\b[^>]*\b(?:src|href)\s*=\s*["']?(?:https?:)?//[^>]*>(?:</script>)?""",
                          re.IGNORECASE)
SCENE_SIZE = (1600, 900)     # the camera is fitted for a laptop-sized window
SCENE_PITCH = 50


class ExportError(ValueError):
    """A request for an export that names something unknown."""


def export_view(args) -> dict:
    """The unit, indicator and window of an export request (defaults as on the map page; unknown ones refused)."""
    service = services.get()
    unit = args.get("unit") or auth.scope_unit()  # without a unit: the asker's area (the city for most)
    if unit is not None and unit not in service.city().units.index:
        raise ExportError(f"unknown unit {unit!r}")
    indicator = args.get("indicator") or DEFAULT_INDICATOR
    if indicator not in INDICATORS:
        raise ExportError(f"unknown indicator {indicator!r} (see /catalogue for the ids)")
    window = args.get("window") or DEFAULT_WINDOW
    if window not in WINDOWS:
        raise ExportError(f"unknown window {window!r} (windows: {', '.join(WINDOWS)})")
    return {"unit": service.resolve_unit(unit), "indicator": indicator, "window": window}


def as_text_cell(value: str) -> str:
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def number_cell(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


def kpi_rows(view: services.UnitView, window: str) -> list[dict]:
    """One row per indicator of the registry for the view's unit, as the KPI cards show it."""
    as_of = view.as_of.isoformat()
    rows = []
    for indicator in INDICATORS.values():
        row = view.kpis.loc[indicator.id]
        value = row.get("value")
        rows.append({
            "unit_code": view.code, "unit_name": as_text_cell(view.name), "unit_name_zh": as_text_cell(view.name_zh),
            "indicator": indicator.id, "name_en": indicator.name, "name_zh": indicator.name_zh,
            "topic": TOPICS.get(indicator.topic, (indicator.topic,))[0],
            "value": number_cell(value), "display": indicator.format_value(value), "unit": indicator.unit,
            "state": row.get("state") if isinstance(row.get("state"), str) else "no_data",
            "previous": number_cell(row.get("previous")), "change": number_cell(row.get("change")),
            "rank": number_cell(row.get("rank")), "siblings": number_cell(row.get("siblings")),
            "window": window, "as_of": as_of,
        })
    return rows


def kpi_csv(view: services.UnitView, window: str) -> str:
    """The KPI table as CSV text (UTF-8 with a byte-order mark, so that spreadsheets read the Chinese names)."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(kpi_rows(view, window))
    return out.getvalue()


def scene_layer(view: services.UnitView, indicator_id: str) -> dict:
    """The view's children as polygons extruded by the indicator's value and coloured by its state."""
    indicator = INDICATORS[indicator_id]
    children = view.children.set_index("code")
    values = children["value"].dropna()
    low, high = (float(values.min()), float(values.max())) if len(values) else (0.0, 0.0)
    minx, miny, maxx, maxy = view.bounds
    # The tallest prism a twelfth of the view's width, so that the relief reads the same at any level of the city.
    metres_across = max((maxx - minx) * 111_320 * math.cos(math.radians((miny + maxy) / 2)), (maxy - miny) * 110_540)
    tallest = metres_across / 12
    features = []
    for feature in view.children_geojson["features"]:
        code = feature["properties"]["code"]
        value = children["value"].get(code) if code in children.index else None
        state = children["state"].get(code, "no_data") if code in children.index else "no_data"
        known = value is not None and not math.isnan(value)
        share = (value - low) / (high - low) if known and high > low else (1.0 if known else 0.0)
        properties = {
            # The tooltip is HTML: names come from imported data, so only escaped copies go into it.
            "name": html.escape(str(feature["properties"]["name"])),
            "name_zh": html.escape(str(feature["properties"]["name_zh"])),
            "value": html.escape(f"{indicator.format_value(value)} {indicator.unit}".strip()),
            "state": STATE_LABELS[state][0], "fill": rgba(STATE_COLORS[state], 210),
            "height": round(tallest * (0.1 + 0.9 * share), 1) if known else 0.0,
        }
        features.append({"type": "Feature", "geometry": feature["geometry"], "properties": properties})
    return pydeck.Layer(
        "GeoJsonLayer", {"type": "FeatureCollection", "features": features}, id="units",
        extruded=True, filled=True, stroked=True, pickable=True,
        get_fill_color="properties.fill", get_elevation="properties.height", get_line_color=rgba(PALETTE["text"], 180),
        line_width_min_pixels=1, material={"ambient": 0.5, "diffuse": 0.6, "shininess": 24})


def scene_description(view: services.UnitView, indicator_id: str, window: str) -> str:
    indicator = INDICATORS[indicator_id]
    counts = view.children["state"].value_counts()
    legend = "".join(
        f'<div><span style="display:inline-block;width:12px;height:12px;border-radius:2px;margin-right:6px;'
        f'background:{STATE_COLORS[state]}"></span>{label} {label_zh} · {int(counts[state])}</div>'
        for state, (label, label_zh) in STATE_LABELS.items() if counts.get(state))
    return (f'<div style="font-family:\'Noto Sans\',\'Liberation Sans\',\'DejaVu Sans\',\'Noto Sans CJK SC\','
            f'sans-serif;color:{PALETTE["text"]};'
            f'background:{PALETTE["panel"]}e6;padding:12px 16px;border-radius:6px;max-width:420px;'
            f'border:1px solid {PALETTE["panel-edge"]}">'
            f'<div style="font-size:22px;font-weight:700">{html.escape(view.name)} '
            f'<span style="color:{PALETTE["muted"]};font-weight:400">{html.escape(view.name_zh)}</span></div>'
            f'<div style="margin:4px 0 8px;color:{PALETTE["muted"]}">{html.escape(indicator.name)} '
            f'{html.escape(indicator.name_zh)} ({html.escape(indicator.unit)}) · {WINDOWS[window]} · data as of '
            f'{view.as_of:%Y-%m-%d %H:%M}. Height: value; colour: state.</div>{legend}'
            f'<div style="margin-top:8px;font-size:12px;color:{PALETTE["muted"]}">citytwin · drag to rotate '
            f'(right button or ctrl), scroll to zoom</div></div>')


def scene_deck(view: services.UnitView, indicator_id: str, window: str) -> pydeck.Deck:
    """A pydeck deck of the view's children in 3D, with no base map (nothing to fetch)."""
    camera = fit_view(view.bounds, SCENE_SIZE, padding=120)
    camera.update(pitch=SCENE_PITCH, bearing=-20, zoom=camera["zoom"] - 0.3)
    return pydeck.Deck(
        layers=[scene_layer(view, indicator_id)], initial_view_state=pydeck.ViewState(**camera),
        map_provider=None, map_style=None,
        tooltip={"html": "<b>{name}</b> {name_zh}<br/>{value} · {state}",
                 "style": {"background": PALETTE["panel"], "color": PALETTE["text"], "fontSize": "14px"}})


def offline_html(deck: pydeck.Deck, overlay: str = "") -> str:
    """The deck as a standalone page that loads nothing from the network (see the module's docstring), with an
    ``overlay`` of HTML over the scene (pydeck's own ``description`` is not drawn by its standalone page)."""
    page = deck.to_html(as_string=True, offline=True, notebook_display=False, css_background_color=PALETTE["bg"])
    page = EXTERNAL_TAG.sub("", page)
    if overlay:
        page = page.replace("<body>", f'<body><div style="position:absolute;top:16px;left:16px;z-index:10">'
                                      f"{overlay}</div>", 1)
    left = EXTERNAL_TAG.findall(page)
    if left or "createDeck" not in page:
        raise RuntimeError(f"pydeck's offline page still loads from the network: {left[:3]}")
    return page


def scene_html(view: services.UnitView, indicator_id: str, window: str) -> str:
    return offline_html(scene_deck(view, indicator_id, window), scene_description(view, indicator_id, window))


def file_name(kind: str, view: services.UnitView, window: str, extension: str, indicator: str | None = None) -> str:
    parts = ["citytwin", kind, view.code, indicator, window, f"{view.as_of:%Y%m%d-%H%M}"]
    return "-".join(p for p in parts if p) + "." + extension


def _attachment(body: str, mimetype: str, name: str) -> flask.Response:
    response = flask.Response(body, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    response.headers["Cache-Control"] = "no-store"
    return response


def register_routes(server: flask.Flask) -> None:
    """Add the export routes to the Dash app's Flask server."""

    @server.errorhandler(ExportError)
    def _refused(error):
        return flask.Response(f"export refused: {error}\n", status=400, mimetype="text/plain")

    @server.get("/export/kpis.csv")
    def export_kpis_csv():
        wanted = export_view(flask.request.args)
        view = services.get().unit_view(wanted["unit"], wanted["indicator"], wanted["window"])
        return _attachment(kpi_csv(view, wanted["window"]), "text/csv; charset=utf-8",
                           file_name("kpis", view, wanted["window"], "csv"))

    @server.get("/export/scene.html")
    def export_scene_html():
        wanted = export_view(flask.request.args)
        view = services.get().unit_view(wanted["unit"], wanted["indicator"], wanted["window"])
        return _attachment(scene_html(view, wanted["indicator"], wanted["window"]), "text/html; charset=utf-8",
                           file_name("scene", view, wanted["window"], "html", wanted["indicator"]))
