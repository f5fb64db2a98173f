"""Short names for tight places (map labels, breadcrumb, rankings).

The sample city names a unit after its parents ("Futian 01 Street · Community 1 · Grid 5", "福田第1街道1号社区5号网格");
where the parents are already on screen, the last part is enough. A name without " · " (an imported city's) is left
as it is; a Chinese name loses its parent's name where it starts with it.
"""
from __future__ import annotations


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
