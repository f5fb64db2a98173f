"""Work-safety supervision of enterprises: formulas over the ``enterprises`` layer (a current snapshot of the
register: risk class, last inspection, open hazards).

Major hazard installations are due for inspection every 90 days and enterprises under key supervision every 180
(:data:`layers.reference.INSPECTION_INTERVAL_DAYS`); ordinary enterprises are inspected by random spot checks and
are never overdue. An enterprise is overdue at the window's end when its last inspection is older than its
interval, or it was never inspected. (The register keeps only the last inspection: for a window that ended before
it, the enterprise counts as inspected in time.)
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from layers.reference import INSPECTION_INTERVAL_DAYS
from metrics.optional import NO_DATA_COUNT, NO_DATA_SHARE, optional_layer
from metrics.spec import Contributions, Window

MAJOR_HAZARD = "major_hazard"


def _overdue(enterprises: pd.DataFrame, end: pd.Timestamp) -> np.ndarray:
    """Per enterprise: due for periodic inspection and not inspected within its interval before ``end``."""
    interval_days = enterprises["risk_class"].map(INSPECTION_INTERVAL_DAYS)
    supervised = interval_days.notna().to_numpy()
    due_since = end - pd.to_timedelta(interval_days.fillna(0), unit="D")
    last = enterprises["last_inspected_at"]
    return supervised & (last.isna() | (last < due_since)).to_numpy()


def major_hazard_overdue(data, window: Window, where=None) -> Contributions:
    """Major hazard installations whose last inspection is more than 90 days before the window's end (or never)."""
    enterprises = optional_layer(data, "enterprises")
    if enterprises is None:
        return NO_DATA_COUNT
    hits = (enterprises["risk_class"] == MAJOR_HAZARD).to_numpy() & _overdue(enterprises, window.end)
    return Contributions(enterprises["grid_index"].to_numpy()[hits], np.ones(int(hits.sum())))


def inspection_overdue_rate(data, window: Window, where=None) -> Contributions:
    """Of the enterprises due for periodic inspection (major hazard and key supervision), the share overdue."""
    enterprises = optional_layer(data, "enterprises")
    if enterprises is None:
        return NO_DATA_SHARE
    supervised = enterprises["risk_class"].isin(list(INSPECTION_INTERVAL_DAYS)).to_numpy()
    overdue = _overdue(enterprises, window.end)
    return Contributions(enterprises["grid_index"].to_numpy()[supervised], overdue[supervised].astype(float),
                         np.ones(int(supervised.sum())))


def open_hazards_per_major_hazard(data, window: Window, where=None) -> Contributions:
    """Open (unfixed) hazards per major hazard installation."""
    enterprises = optional_layer(data, "enterprises")
    if enterprises is None:
        return NO_DATA_SHARE
    major = (enterprises["risk_class"] == MAJOR_HAZARD).to_numpy()
    return Contributions(enterprises["grid_index"].to_numpy()[major],
                         enterprises["open_hazards"].to_numpy(dtype=float)[major], np.ones(int(major.sum())))
