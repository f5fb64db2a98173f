"""Short names for tight places (map labels, breadcrumb, rankings).

The sample city names a unit after its parents ("Futian 01 Street · Community 1 · Grid 5", "福田第1街道1号社区5号网格");
where the parents are already on screen, the last part is enough. A name without " · " (an imported city's) is left
as it is; a Chinese name loses its parent's name where it starts with it.
"""
from __future__ import annotations


def short_name(name: str, parent_name: str | None = None) -> str:
    """``Futian 01 Street · Community 1`` → ``Community 1``; ``福田第1街道1号社区`` under ``福田第1街道`` → ``1号社区``."""
    name = str(name)
    if " · " in name:
        return name.rsplit(" · ", 1)[-1]
    if parent_name and name.startswith(str(parent_name)) and len(name) > len(str(parent_name)):
        return name[len(str(parent_name)):]
    return name
