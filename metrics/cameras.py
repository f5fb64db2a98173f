"""Video camera indicators: formulas over the ``cameras`` layer (a current snapshot of the connected cameras).

A camera is online at an instant when it reported within the hour before it, as sensors are
(:data:`metrics.sensors.ONLINE_GRACE`).
"""
from __future__ import annotations

import numpy as np

from metrics.optional import NO_DATA_SHARE, optional_layer
from metrics.sensors import ONLINE_GRACE
from metrics.spec import Contributions, Window


def camera_online_rate(data, window: Window, where=None) -> Contributions:
    """Of the cameras, the share that reported within the hour before the window's end."""
    cameras = optional_layer(data, "cameras")
    if cameras is None:
        return NO_DATA_SHARE
    online = (cameras["last_seen_at"] >= window.end - ONLINE_GRACE).to_numpy()
    return Contributions(cameras["grid_index"].to_numpy(), online.astype(float), np.ones(len(cameras)))


def ai_camera_share(data, window: Window, where=None) -> Contributions:
    """Of the cameras, the share with AI video analysis (the "AI grid worker" apps)."""
    cameras = optional_layer(data, "cameras")
    if cameras is None:
        return NO_DATA_SHARE
    return Contributions(cameras["grid_index"].to_numpy(), cameras["ai_enabled"].to_numpy(dtype=float),
                         np.ones(len(cameras)))
