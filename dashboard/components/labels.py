"""Short names for tight places (map labels, breadcrumb, rankings).

The sample city names a unit after its parents ("Futian 01 Street · Community 1 · Grid 5", "福田第1街道1号社区5号网格");
where the parents are already on screen, the last part is enough. A name without " · " (an imported city's) is left
as it is; a Chinese name loses its parent's name where it starts with it.
"""
from __future__ import annotations

import unicodedata


def short_name(name: str, parent_name: str | None = None) -> str:
    """``Futian 01 Street · Community 1`` → ``Community 1``; ``福田第1街道1号社区`` under ``福田第1街道`` → ``1号社区``;
    ``Futian 01 Street`` under ``Futian`` stays as it is."""
    name = str(name)
    if " · " in name:
        return name.rsplit(" · ", 1)[-1]
    # Chinese names run on without a space ("福田第1街道1号社区"); an English "Futian 01 Street" keeps its district.
    rest = name[len(str(parent_name)):] if parent_name and name.startswith(str(parent_name)) else ""
    if rest and not rest[0].isspace():
        return rest
    return name


def map_text(text: str) -> str:
    """Text for deck.gl's TextLayer, which draws each code point from its font atlas side by side: a decomposed
    name ("c" + combining caron, as some GIS files store "č") would show a loose "ˇ" after the "c". NFC composes
    what Unicode can (``"Dvor\u030cák"`` → ``"Dvořák"``)."""
    return unicodedata.normalize("NFC", str(text))


def atlas_characters(texts, base: list[str]) -> list[str]:
    """deck.gl's font atlas holds only the characters it is given (ASCII by default): ``base`` and every character
    of ``texts`` (already :func:`map_text`), so that "Łódź" is not drawn as "ód"."""
    extra = {c for text in texts for c in text if c not in ("\n",)}
    return list(base) + sorted(c for c in extra if c not in set(base))
