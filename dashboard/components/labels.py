"""Short names for tight places (map labels, breadcrumb, rankings).

The sample city names a unit after its parents ("Futian 01 Street · Community 1 · Grid 5"); where the parents are
already on screen, the last part is enough. A name without " · " (an imported city's) is left as it is.
"""
from __future__ import annotations


def short_name(name: str) -> str:
    return str(name).rsplit(" · ", 1)[-1]
