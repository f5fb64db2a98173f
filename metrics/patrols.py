"""Grid-management indicators: formulas over the ``grid_workers`` (a current snapshot) and ``patrols`` layers.

A patrol goes through its worker's grid cell; one still under way at the end of the data has no end time.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from metrics.buildings import resident_counts, with_known_residents
from metrics.optional import NO_DATA_SHARE, known_by, optional_layer
from metrics.spec import Contributions, Window

PATROL_LOOKBACK = pd.Timedelta(hours=24)


def patrolled_cells_24h_rate(data, window: Window, where=None) -> Contributions:
    """Of the unit's grid cells, the share a patrol went through in the 24 hours before the window's end (a patrol
    that started before the end and had not ended 24 hours before it)."""
    patrols = optional_layer(data, "patrols")
    if patrols is None:
        return NO_DATA_SHARE
    end = window.end
    recent = known_by(patrols["started_at"], end) & ~known_by(patrols["ended_at"], end - PATROL_LOOKBACK)
    cell = patrols["grid_index"].to_numpy()[recent]
    patrolled = np.unique(cell[cell >= 0])
    cells = np.arange(len(data.hierarchy))  # every grid cell counts once in the denominator
    return Contributions(np.concatenate([patrolled, cells]),
                         np.concatenate([np.ones(len(patrolled)), np.zeros(len(cells))]),
                         np.concatenate([np.zeros(len(patrolled)), np.ones(len(cells))]))


def issues_per_patrol(data, window: Window, where=None) -> Contributions:
    """Mean issues found per patrol, over the patrols started in the window and ended before its end."""
    patrols = optional_layer(data, "patrols")
    if patrols is None:
        return NO_DATA_SHARE
    done = window.contains(patrols["started_at"]).to_numpy() & known_by(patrols["ended_at"], window.end)
    return Contributions(patrols["grid_index"].to_numpy()[done], patrols["issues_found"].to_numpy(dtype=float)[done],
                         np.ones(int(done.sum())))


def residents_per_grid_worker(data, window: Window, where=None) -> Contributions:
    """Residents of the unit ÷ grid workers assigned to it (a cell with residents and no worker has no value; its
    residents still count in the units above it)."""
    workers = optional_layer(data, "grid_workers")
    buildings = with_known_residents(optional_layer(data, "buildings"))
    if workers is None or buildings is None:
        return NO_DATA_SHARE
    return Contributions(
        np.concatenate([buildings["grid_index"].to_numpy(), workers["grid_index"].to_numpy()]),
        np.concatenate([resident_counts(buildings), np.zeros(len(workers))]),
        np.concatenate([np.zeros(len(buildings)), np.ones(len(workers))]))
