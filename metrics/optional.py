"""Layers a city may not have: an imported city may bring boundaries and buildings but no incidents, patrols,
cameras or roads. A formula over such a layer returns "no data" (no cell covered), never zeros.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from metrics.spec import Contributions

NO_DATA_COUNT = Contributions(np.array([], dtype=np.int64), np.array([]), covered=np.array([], dtype=np.int64))
"""No data, for a count (no denominator)."""

NO_DATA_SHARE = Contributions(np.array([], dtype=np.int64), np.array([]), np.array([]),
                              covered=np.array([], dtype=np.int64))
"""No data, for a rate or a mean."""


def optional_layer(data, layer_id: str) -> pd.DataFrame | None:
    """The layer's frame, or None when the city has no such layer or it has no rows."""
    try:
        frame = data[layer_id]
    except KeyError:
        return None
    return frame if len(frame) else None


def known_by(times: pd.Series, instant: pd.Timestamp) -> np.ndarray:
    """True where the event happened before ``instant`` (so it was known then)."""
    return (times.notna() & (times < instant)).to_numpy()
