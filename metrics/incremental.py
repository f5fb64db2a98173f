"""Taking in new orders without recomputing the city: a live table for one window.

Every formula's contributions are per input row, so the grid sums of a set of rows are the sums over its parts:
the sums of the orders already loaded plus the sums of the new orders alone (a city holding only them, every other
layer empty). :class:`LiveTable` keeps the grid matrices of a window and adds the new orders' part to them, then
rolls up again, which costs a few milliseconds for hundreds of indicators instead of a full recompute.

The window stays fixed: this is for the orders that arrive during it (the intake of the last minutes); a new as-of
time (a sliding window) or changed orders (an order handled) call for :func:`metrics.engine.compute` again.

>>> live = LiveTable(city, named_window("today", city.as_of))     # doctest: +SKIP
>>> live.add_orders(new_orders)                                    # doctest: +SKIP
>>> live.table(levels=("city", "district"))                        # doctest: +SKIP
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from layers.specs import ALL_LEVELS
from metrics.engine import grid_matrices, roll_up
from metrics.registry import INDICATORS
from metrics.spec import Window


class LiveTable:
    def __init__(self, city, window: Window, indicator_ids=None):
        self.city = city
        self.window = window
        self.ids = list(indicator_ids or INDICATORS)
        self.numerator, self.denominator, self.covered = grid_matrices(city, window, self.ids)
        # Only indicators that read orders change when orders arrive.
        self.order_rows = [k for k, i in enumerate(self.ids) if "orders" in INDICATORS[i].inputs]
        self.added = 0

    def add_orders(self, orders: pd.DataFrame) -> None:
        """Add new orders (frames with the orders layer's columns) to the table's sums."""
        delta_city = self._city_of(orders)
        ids = [self.ids[k] for k in self.order_rows]
        numerator, denominator, covered = grid_matrices(delta_city, self.window, ids)
        self.numerator[self.order_rows] += numerator
        self.denominator[self.order_rows] += denominator
        self.covered[self.order_rows] = np.maximum(self.covered[self.order_rows], covered)
        self.added += len(orders)

    def table(self, levels=ALL_LEVELS) -> pd.DataFrame:
        return roll_up(self.ids, self.numerator, self.denominator, self.covered, self.city.hierarchy, levels)

    def _city_of(self, orders: pd.DataFrame):
        """A city with the same units, the new orders and every other event layer empty."""
        layers = {name: frame.iloc[0:0] for name, frame in self.city.layers.items()}
        layers["orders"] = orders.reset_index(drop=True)
        if "event_types" in self.city.layers:
            layers["event_types"] = self.city["event_types"]
        return replace(self.city, layers=layers, memo={})
