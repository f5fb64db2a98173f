"""What is coming, shown while it comes (issue 15 item 11): a page is drawn in stages — the page's frame after the
first callback, then the map, the indicator picker and the playback slider as their scripts arrive — and on a busy
machine that takes seconds. Until each part is there, its place shows its shape and says what is loading, in the
page's language, instead of an empty dark screen.

The first stage is Dash's own "Loading..." (the page before any script ran): :func:`boot_entry` replaces it with a
skeleton of the screen. The later stages are places marked with ``data-loading`` (:func:`loading_slot`): the style
sheet shows the text while the place is still empty (assets/theme.css, ``.loading-slot``)."""
from __future__ import annotations

from html import escape

from dash import html

from dashboard.i18n import HTML_LANG, normalise_language, t


def boot_entry(lang: str | None) -> str:
    """Dash's app entry with a skeleton of the screen in it (kept in ``._dash-loading``, which Dash's renderer
    replaces with the page)."""
    lang = normalise_language(lang)
    return (f'<div id="react-entry-point"><div class="_dash-loading boot-skeleton" lang="{HTML_LANG[lang]}" '
            f'role="status" aria-busy="true"><div class="boot-bar"></div><div class="boot-body">'
            f'<div class="boot-main"><span class="boot-text">{escape(t("loading.page", lang))}</span></div>'
            f'<div class="boot-side"></div></div></div></div>')


def boot_style(lang: str | None) -> str:
    """The words of the skeleton as a CSS variable: Dash's renderer, once its script runs, puts its own
    "Loading..." in place of :func:`boot_entry` until the page's layout arrives; the style sheet hides that text and
    shows these words on the same skeleton (assets/theme.css)."""
    words = t("loading.page", normalise_language(lang)).replace("\\", "").replace('"', "")
    return f'<style>:root {{ --loading-page: "{escape(words, quote=False)}"; }}</style>'


def loading_slot(child, what: str, lang: str, class_name: str = "") -> html.Div:
    """A place for ``child`` (a component whose script comes later) that says ``loading.<what>`` until it is drawn."""
    return html.Div(child, className=f"loading-slot {class_name}".strip(), **{"data-loading": t(f"loading.{what}",
                                                                                                   lang)})
