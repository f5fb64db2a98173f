"""Road indicators: formulas over the ``road_segments`` layer (a current snapshot: pavement condition and the
current congestion index of each segment). Shares are by length, not by number of segments: one poor kilometre
of expressway weighs more than a poor 80 m alley.
"""
from __future__ import annotations

import numpy as np

from metrics.optional import NO_DATA_SHARE, optional_layer
from metrics.spec import Contributions, Window

CONGESTED_FROM = 7.0  # congestion index (1 free flow – 10 gridlock) from which a road is congested


def _length_share(data, hits_of) -> Contributions:
    roads = optional_layer(data, "road_segments")
    if roads is None:
        return NO_DATA_SHARE
    length = roads["length_m"].to_numpy(dtype=float)
    return Contributions(roads["grid_index"].to_numpy(), np.where(hits_of(roads), length, 0.0), length)


def poor_road_share(data, window: Window, where=None) -> Contributions:
    """Length of road in poor condition ÷ length of road × 100."""
    return _length_share(data, lambda roads: (roads["condition"] == "poor").to_numpy())


def congested_road_share(data, window: Window, where=None) -> Contributions:
    """Length of road with a congestion index of 7 or more ÷ length of road × 100."""
    return _length_share(data, lambda roads: (roads["congestion_index"] >= CONGESTED_FROM).to_numpy())
