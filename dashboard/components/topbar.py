"""The top bar every page shares: brand, breadcrumb, the page's own controls, page links, the language switch and
data freshness."""
from __future__ import annotations

from dash import dcc, html

from dashboard import ids
from dashboard.components.breadcrumb import breadcrumb, view_href
from dashboard.components.language import language_switch
from dashboard.i18n import DEFAULT_LANGUAGE, t, unit_name
from layers.specs import ALL_LEVELS

PAGES = (("map", "/"), ("hotspots", "/hotspots"), ("catalogue", "/catalogue"), ("orders", "/orders"),
         ("supervision", "/supervision"), ("alerts", "/alerts"), ("wall", "/wall"))


def topbar(lineage: list[dict], indicator: str, window: str, as_of, controls: list, page: str, here: str = "/",
           lang: str = DEFAULT_LANGUAGE) -> html.Header:
    """``here``: this page's URL with its whole query (the language switch keeps all of it)."""
    city = lineage[0]
    code = lineage[-1]["code"]
    return html.Header(className="topbar", children=[
        html.Div(className="brand", children=[
            html.Span("citytwin", className="brand-name"),
            # Named by the top unit's own level: "Shenzhen city operations", "Guangdong province operations".
            html.Span(t(f"brand.sub.{top_level(city)}", lang, city=city["name"],
                        city_zh=unit_name(city, lang)), className="brand-sub"),
        ]),
        # The map page shows its breadcrumb over the map, where a deep drill path has room.
        html.Div(className="topbar-spacer") if page == "map" else
        breadcrumb(lineage, indicator, window, path={"catalogue": "/catalogue"}.get(page, "/"), lang=lang),
        html.Div(className="controls", children=controls),
        html.Nav(className="page-links", children=[
            dcc.Link(t(f"page.{name}", lang), href=view_href(code, indicator, window, path, lang),
                     className=f"page-link page-{name}" + (" current" if name == page else ""))
            for name, path in PAGES]),
        language_switch(here, lang),
        # One definition each, stated where shown: the map pages show the data's time (the newest record the figures
        # rest on); the order pages, which judge deadlines against the clock, show the clock's time.
        html.Div(id=ids.AS_OF, className="as-of", title=t(f"topbar.{_time_kind(page)}_title", lang),
                 **{"data-time": _time_kind(page)}, children=as_of_text(as_of, lang, _time_kind(page))),
    ])


def top_level(unit: dict) -> str:
    """The level of a lineage's top unit (``city`` for a unit row without a known level)."""
    level = unit.get("level")
    return level if level in ALL_LEVELS else "city"


CLOCK_PAGES = frozenset({"orders", "order", "supervision"})


def _time_kind(page: str) -> str:
    """``"now"`` on the pages whose cards and clocks run on the clock, ``"as_of"`` on those showing the data."""
    return "now" if page in CLOCK_PAGES else "as_of"


def as_of_text(as_of, lang: str = DEFAULT_LANGUAGE, kind: str = "as_of") -> list:
    """The top bar's time (refreshed in place when the city moves on, see dashboard.live), and
    "(store unavailable)" beside it while the store does not answer."""
    return [html.Span(t(f"topbar.{kind}", lang), className="muted"),
            html.Span(as_of.strftime("%Y-%m-%d %H:%M"), className="as-of-time"),
            *store_notice(lang)]


def store_notice(lang: str) -> list:
    """"(store unavailable)" beside the data time while the store does not answer: what the page shows is the city
    as last loaded, and writes are refused until it is back."""
    from dashboard import services  # the configured store (components are otherwise free of services)

    health = services.get().store.health
    if health.available:
        return []
    return [html.Span(t("topbar.store_unavailable", lang), className="store-unavailable", role="status",
                      title=health.last_error or "")]
