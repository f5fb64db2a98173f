"""The language switch (EN | 中文) and the document's language.

The language is in the URL (``lang=zh``): the switch links to the same view, query and all, in the other language,
and the browser sets ``<html lang>`` from the URL, so that the right fonts and line breaking apply to the whole page.
"""
from __future__ import annotations

from dash import Input, Output, clientside_callback, dcc, html

from dashboard import ids
from dashboard.i18n import HTML_LANG, LANGUAGES, normalise_language, t, with_language

SHELL = "shell"  # app.py's outermost Div, around every page


def language_switch(here: str, lang: str) -> html.Nav:
    """``EN | 中文``: links to ``here`` (the page's own URL with its whole query) in each language."""
    lang = normalise_language(lang)
    links = []
    for code in LANGUAGES:
        if links:
            links.append(html.Span("|", className="lang-sep"))
        links.append(dcc.Link(html.Span(t(f"language.{code}", code), lang=HTML_LANG[code]),
                              href=with_language(here, code),
                              className=f"lang-link lang-{code}" + (" current" if code == lang else "")))
    return html.Nav(links, className="language-switch", title=t("language.switch", lang))


clientside_callback(
    f"""
    function(search) {{
        const lang = new URLSearchParams(search || "").get("lang") || "";
        const html = lang.toLowerCase().startsWith("zh") ? "{HTML_LANG['zh']}" : "{HTML_LANG['en']}";
        document.documentElement.lang = html;
        return html;
    }}
    """,
    Output(SHELL, "lang"),
    Input(ids.URL, "search"),
)
