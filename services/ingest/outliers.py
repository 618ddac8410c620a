"""Outliers: rows that are loaded but flagged (docs/data-format.md, *Cleaning*).

A new order or production record whose quantity is above QTY_MEDIAN_FACTOR x the median quantity
of its variant (the store, the rows loaded so far in this import and the new ones; only when the
variant has at least QTY_MIN_HISTORY rows), or an order whose unit price is outside PRICE_RANGE x
its variant's list price. :class:`QuantityStats` keeps what the median needs in memory that grows
with distinct (variant, quantity) pairs, not with rows, so big imports stream.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Outlier rule: quantity above this many times its variant's median (with enough history).
QTY_MEDIAN_FACTOR = 10.0
QTY_MIN_HISTORY = 5
PRICE_RANGE = (0.2, 5.0)


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


class QuantityStats:
    """How often each quantity occurs per variant, for the median rule of :func:`flag_outliers`.

    Filled once from the store (one aggregated query) and then with each chunk's new rows, so a
    big import keeps counts per (variant, quantity) pair, not rows. Should an input hold more than
    ``max_pairs`` distinct pairs, tracking stops (``full``) and quantities are not flagged any more
    in this import: memory stays bounded whatever the input.
    """

    def __init__(self, max_pairs: int = 2_000_000) -> None:
        self.counts: dict[str, dict[float, int]] = {}
        self.pairs = 0
        self.max_pairs = max_pairs
        self.full = False

    def add_counts(self, variant: str, quantity: float, count: int) -> None:
        if self.full:
            return
        per = self.counts.setdefault(variant, {})
        if quantity not in per:
            self.pairs += 1
            if self.pairs > self.max_pairs:
                self.full = True
                self.counts.clear()
                return
        per[quantity] = per.get(quantity, 0) + int(count)

    def add(self, rows: pd.DataFrame) -> None:
        """Count ``rows`` (variant_id, quantity) in."""
        if self.full or rows.empty:
            return
        grouped = rows.groupby(["variant_id", "quantity"]).size()
        for (variant, quantity), count in grouped.items():
            self.add_counts(str(variant), float(quantity), int(count))

    @classmethod
    def from_frame(cls, rows: pd.DataFrame) -> QuantityStats:
        stats = cls()
        stats.add(rows)
        return stats

    def median_and_size(self, new: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
        """Per row of ``new``: median and count of its variant's quantities, counting the stored
        rows and ``new`` (what ``pandas`` ``median`` gives on all of them)."""
        mine = new.groupby(["variant_id", "quantity"]).size()
        merged: dict[str, dict[float, int]] = {}
        for (variant, quantity), count in mine.items():
            v = str(variant)
            if v not in merged:
                merged[v] = dict(self.counts.get(v, {}))
            merged[v][float(quantity)] = merged[v].get(float(quantity), 0) + int(count)
        med: dict[str, float] = {}
        size: dict[str, int] = {}
        for v, hist in merged.items():
            values = sorted(hist)
            cum = np.cumsum([hist[q] for q in values])
            n = int(cum[-1])
            lo = values[int(np.searchsorted(cum, (n - 1) // 2, side="right"))]
            hi = values[int(np.searchsorted(cum, n // 2, side="right"))]
            med[v] = (lo + hi) / 2.0
            size[v] = n
        ids = new["variant_id"].astype(str)
        return ids.map(med), ids.map(size)


def flag_outliers(
    table: str,
    new: pd.DataFrame,
    history: QuantityStats | pd.DataFrame,
    list_price: dict[str, float],
) -> pd.DataFrame:
    """Set ``flagged``/``flag_reason`` on new orders or production records.

    ``history`` counts the quantities per variant of the rows the store already has (or holds
    them as (variant_id, quantity) rows). A quantity above QTY_MEDIAN_FACTOR x the median of its
    variant (store + new rows, at least QTY_MIN_HISTORY rows) is flagged; for orders also a unit
    price outside PRICE_RANGE x the variant's list price.
    """
    new = new.copy()
    if new.empty:
        new["flagged"] = False
        new["flag_reason"] = None
        return new
    stats = history if isinstance(history, QuantityStats) else QuantityStats.from_frame(history)
    if stats.full:
        big = np.zeros(len(new), dtype=bool)
    else:
        med, size = stats.median_and_size(new[["variant_id", "quantity"]])
        big = ((size >= QTY_MIN_HISTORY) & (new["quantity"] > QTY_MEDIAN_FACTOR * med)).to_numpy()
    off = np.zeros(len(new), dtype=bool)
    if table == "orders":
        lp = new["variant_id"].map(list_price).astype("float64")
        lo, hi = PRICE_RANGE
        off = (
            lp.notna() & ((new["unit_price"] < lo * lp) | (new["unit_price"] > hi * lp))
        ).to_numpy()
    text_big = f"quantity above {_fmt(QTY_MEDIAN_FACTOR)}x its variant's median"
    text_off = f"unit_price outside [{_fmt(PRICE_RANGE[0])}, {_fmt(PRICE_RANGE[1])}] x list price"
    flagged = big | off
    reason = pd.Series(None, index=new.index, dtype=object)
    reason[big & ~off] = text_big
    reason[off & ~big] = text_off
    reason[big & off] = f"{text_big}; {text_off}"
    new["flagged"] = flagged
    new["flag_reason"] = reason
    return new
