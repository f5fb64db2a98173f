"""A view of the map page, as the URL names it: unit, indicator, window, layers, building colouring, building and
language. One module, so that every page and component reads and writes the same query string (and no one imports a
page module: Dash loads those itself, and a second import would register their callbacks twice).
"""
from __future__ import annotations

import math
from urllib.parse import parse_qs, urlencode

import flask

from dashboard import services
from dashboard.i18n import DEFAULT_LANGUAGE, normalise_language
from dashboard.maps.registry import DEFAULT_LAYERS, MapView, normalise_layers
from dashboard.maps.sources import BUILDING_COLOR_MODES
from metrics.registry import INDICATORS
from metrics.spec import DEFAULT_WINDOW, WINDOWS

DEFAULT_INDICATOR = "on_time_rate"


def parse_view(search: str | None) -> dict:
    """The view named by a query string, with defaults for what is missing or unknown."""
    search = search if isinstance(search, str) else ""  # a callback's input: whatever the client sent
    query = {k: v[-1] for k, v in parse_qs(search.lstrip("?"), keep_blank_values=True).items()}
    return normalise_view(query.get("unit"), query.get("indicator"), query.get("window"), query.get("layers"),
                          query.get("color"), query.get("building"), query.get("lang"))


def normalise_view(unit=None, indicator=None, window=None, layers=None, color=None, building=None,
                   lang=None) -> dict:
    return {
        "unit": unit or None,
        "indicator": indicator if indicator in INDICATORS else DEFAULT_INDICATOR,
        "window": window if window in WINDOWS else DEFAULT_WINDOW,
        "layers": ",".join(normalise_layers(layers)),
        "color": color if color in BUILDING_COLOR_MODES else "use",
        "building": building or None,
        "lang": normalise_language(lang),
    }


def view_search(view: dict) -> str:
    """The query string of a view; defaults (English among them) are left out so that links stay short."""
    defaults = {"layers": ",".join(DEFAULT_LAYERS), "color": "use", "lang": DEFAULT_LANGUAGE}
    return "?" + urlencode({k: v for k, v in view.items() if v and defaults.get(k) != v}
                           | ({"layers": ""} if view.get("layers") == "" else {}))


SCALE_COOKIE = "citytwin_scale"
SCALE_RANGE = (0.5, 4.0)  # the root font's range (assets/theme.css: at least 8 px) and more than an 8K screen needs


def screen_scale() -> float:
    """How many times larger than on 1920×1080 the asking screen draws the page (its root font / 16 px), as
    assets/screen.js tells in a cookie; 1 outside a request, without the cookie, or for anything that is not a
    plausible scale (a client can send any text)."""
    if not flask.has_request_context():
        return 1.0
    try:
        scale = float(flask.request.cookies.get(SCALE_COOKIE, "1"))
    except ValueError:
        return 1.0
    if not math.isfinite(scale):
        return 1.0
    return min(max(scale, SCALE_RANGE[0]), SCALE_RANGE[1])


def map_view(view: dict) -> MapView:
    """What the map draws for a view: its unit (for a building, the building's grid cell, with the building
    selected), indicator, window, colouring and language."""
    service = services.get()
    card = service.building_card(view["building"])
    data = service.unit_view(card.grid_code if card else view["unit"], view["indicator"], view["window"])
    return MapView(service, data, view["indicator"], view["window"], view["color"],
                   card.building["building_id"] if card else None, view["lang"], scale=screen_scale())
