"""Reading figures out of the services' tables, where a value may be missing, NaN or pandas' NA."""
from __future__ import annotations

import math


def number_or_none(value) -> float | None:
    """``value`` as a float, or None when it is missing or not a number (a unit with no data)."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) else value
