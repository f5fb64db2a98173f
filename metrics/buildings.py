"""Indicators of the city's fabric: population, housing and the fire safety of high-rises, over ``buildings``.

A city without a buildings layer has no data for them (not zero residents).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from layers.specs import METRIC_CRS
from metrics.spec import Contributions, Window, layer_memoised, memoised
from metrics.workorders import order_facts

HIGH_RISE_M = 27.0      # China's fire code: residential buildings over 27 m are high-rises
OLD_BEFORE_YEAR = 1990  # built before the 1990s building codes

_NO_DATA = Contributions(np.array([], dtype=np.int64), np.array([]), np.array([]), covered=np.array([], np.int64))


def _buildings(data) -> pd.DataFrame | None:
    try:
        buildings = data["buildings"]
    except KeyError:
        return None
    return buildings if len(buildings) else None


def _count(buildings: pd.DataFrame, mask) -> Contributions:
    return Contributions(buildings["grid_index"].to_numpy()[mask], np.ones(int(np.sum(mask))))


def with_known_residents(buildings: pd.DataFrame | None) -> pd.DataFrame | None:
    """The buildings whose residents are known, or None when none is. An import without the figure leaves it empty:
    a default is not a measurement, so it must not count as zero people (that made a city with no data "good")."""
    if buildings is None:
        return None
    known = buildings[buildings["residents"].notna().to_numpy()]
    return known if len(known) else None


def resident_counts(buildings: pd.DataFrame) -> np.ndarray:
    """The residents of buildings already narrowed by :func:`with_known_residents`, as floats."""
    return buildings["residents"].to_numpy(dtype=float)


def _covered_by(buildings: pd.DataFrame) -> np.ndarray:
    """The grid cells with at least one building whose residents are known: only they have a population figure."""
    return np.unique(buildings["grid_index"].to_numpy())


def residents(data, window: Window, where=None) -> Contributions:
    """Residents living in the unit's buildings (no data where no building's residents are known)."""
    buildings = with_known_residents(_buildings(data))
    if buildings is None:
        return _NO_DATA
    return Contributions(buildings["grid_index"].to_numpy(), resident_counts(buildings),
                         covered=_covered_by(buildings))


def grid_area_km2(data) -> np.ndarray:
    """Area of each grid cell (hierarchy order) in km², measured in the local metric CRS."""
    def measure():
        cells = data.units.loc[data.hierarchy["grid"].to_numpy()]
        return cells.geometry.to_crs(METRIC_CRS).area.to_numpy() / 1e6
    return memoised(data, "grid_area_km2", measure)


def population_density(data, window: Window, where=None) -> Contributions:
    """Residents per km² of the unit's area."""
    buildings = with_known_residents(_buildings(data))
    if buildings is None or "geometry" not in data.units:
        return _NO_DATA
    area = grid_area_km2(data)
    cells = np.arange(len(area))
    return Contributions(
        np.concatenate([buildings["grid_index"].to_numpy(), cells]),
        np.concatenate([resident_counts(buildings), np.zeros(len(cells))]),
        np.concatenate([np.zeros(len(buildings)), area]), covered=_covered_by(buildings))


def orders_per_10k_residents(data, window: Window, where=None) -> Contributions:
    """Orders received in the window per 10,000 residents per day."""
    # Without buildings the orders still count (their denominators come with the buildings): contributions stay
    # additive over rows, so new orders can be added to a table without the buildings (metrics.incremental).
    buildings = with_known_residents(_buildings(data))
    if buildings is None:
        buildings = pd.DataFrame({"grid_index": np.array([], dtype=np.int64), "residents": np.array([])})
    facts = order_facts(data, window)
    received = np.flatnonzero(facts.received)
    return Contributions(
        np.concatenate([facts.grid[received], buildings["grid_index"].to_numpy()]),
        # Per day, so that one threshold fits today, 7 days and 30 days.
        np.concatenate([np.full(len(received), 10_000.0 / window.days), np.zeros(len(buildings))]),
        np.concatenate([np.zeros(len(received)), resident_counts(buildings)]))


def building_count(data, window: Window, where=None) -> Contributions:
    """Buildings in the unit."""
    buildings = _buildings(data)
    return _NO_DATA if buildings is None else _count(buildings, np.ones(len(buildings), bool))


def skyscraper_count(data, window: Window, where=None) -> Contributions:
    """Buildings 100 m or taller (fire-IoT supervision applies to every one of them)."""
    buildings = _buildings(data)
    return _NO_DATA if buildings is None else _count(buildings, buildings["high_rise_100m"].to_numpy(dtype=bool))


def old_building_share(data, window: Window, where=None) -> Contributions:
    """Of the buildings with a known year of construction, the share built before 1990."""
    buildings = _buildings(data)
    if buildings is None:
        return _NO_DATA
    year = buildings["year_built"].to_numpy(dtype=float, na_value=np.nan)
    known = ~np.isnan(year)
    return Contributions(buildings["grid_index"].to_numpy()[known], (year[known] < OLD_BEFORE_YEAR).astype(float),
                         np.ones(known.sum()))


def high_rise_smoke_coverage(data, window: Window, where=None) -> Contributions:
    """Of the high-rise buildings (over 27 m), the share with at least one smoke and fire sensor."""
    buildings = _buildings(data)
    if buildings is None:
        return _NO_DATA
    # Which buildings are high-rises, their cells and ids: once per buildings' frame, which a live refresh shares
    # from one generation to the next (comparing and picking 640,000 buildings cost ~20 ms at each window).
    high, cells, ids = layer_memoised(data, "buildings", "high_rises", lambda: _high_rises(buildings))

    def watched():
        sensors = data["sensors"]
        smoke = set(sensors.loc[sensors["kind"] == "smoke", "building_id"].dropna())
        # Only the high-rises' ids are looked up: a live refresh makes a new city (new sensors) every batch, and
        # looking up all 640,000 buildings' ids was a tenth of a second of each.
        return ids.isin(smoke)

    # The same for every window of a city: once per loaded city.
    covered = memoised(data, "high_rises_with_smoke_sensors", watched)
    return Contributions(cells, covered.astype(float), np.ones(len(high)))


def _high_rises(buildings: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, pd.Index]:
    """The high-rises' positions, grid cells and ids (as an index of Python strings, whose ``isin`` hashes them: an
    index of Arrow strings converted every id at each look-up, 50 ms)."""
    high = np.flatnonzero(buildings["height_m"].to_numpy() > HIGH_RISE_M)
    ids = pd.Index(buildings["building_id"].to_numpy(dtype=object)[high], dtype=object)
    return high, buildings["grid_index"].to_numpy()[high], ids
