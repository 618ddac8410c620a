"""Turning weekly demand into order rows, vectorised (no Python loop per order).

Stock demand of a (variant, week) cell is cut into small orders (mostly 1-2 units); custom demand
arrives as a few larger firm orders. Customers are drawn from a fixed pool with repeat buyers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from services.datagen.templates import FIRST_NAMES, LAST_NAMES

STOCK_SIZES = np.array([1, 2, 3, 4])
STOCK_SIZE_P = np.array([0.72, 0.20, 0.06, 0.02])
CUSTOM_MIN_SIZE = 2
CUSTOM_EXTRA_MEAN = 4.0  # custom order size = 2 + Poisson(4), mean 6
CUSTOM_MEAN_SIZE = CUSTOM_MIN_SIZE + CUSTOM_EXTRA_MEAN
ORDER_DISCOUNTS = np.array([0.0, 0.05, 0.10])
ORDER_DISCOUNT_P = np.array([0.80, 0.12, 0.08])
CUSTOM_PREMIUM = 0.15  # custom (made-to-order) orders pay 15% above the posted price
STOCK_DUE_DAYS = (3, 10)  # due_date - order_date for stock orders, inclusive
CUSTOM_DUE_WEEKS = (2, 6)  # due_date - order_date for custom orders, whole weeks, inclusive
WEEKDAY_P = np.array([0.17, 0.16, 0.16, 0.15, 0.15, 0.12, 0.09])  # Monday..Sunday
CUSTOMER_SKEW = 2.0  # customer index = floor(pool * u^skew): low indices are repeat buyers


def split_stock_units(
    cell: np.ndarray, units: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Cut ``units[k]`` units of ``cell[k]`` into orders; returns (cell per order, quantity).

    One stream of order sizes is laid over the stream of all units; an order ends where its size
    is used up or where the cell changes (so an order never mixes variants or weeks).
    """
    total = int(units.sum())
    if total == 0:
        return np.empty(0, dtype=cell.dtype), np.empty(0, dtype=np.int64)
    unit_cell = np.repeat(cell, units)
    n_sizes = int(total / (STOCK_SIZES @ STOCK_SIZE_P)) + 64
    sizes = rng.choice(STOCK_SIZES, size=n_sizes, p=STOCK_SIZE_P)
    ends = np.cumsum(sizes)
    while ends[-1] < total:  # practically never: top the stream up
        extra = rng.choice(STOCK_SIZES, size=n_sizes, p=STOCK_SIZE_P)
        ends = np.concatenate([ends, ends[-1] + np.cumsum(extra)])
    order_of_unit = np.searchsorted(ends, np.arange(total), side="right")
    new = np.ones(total, dtype=bool)
    new[1:] = (order_of_unit[1:] != order_of_unit[:-1]) | (unit_cell[1:] != unit_cell[:-1])
    starts = np.flatnonzero(new)
    qty = np.diff(np.append(starts, total))
    return unit_cell[starts], qty


def draw_custom_orders(
    cell: np.ndarray, n_orders: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``n_orders[k]`` custom orders for ``cell[k]``, each of 2 + Poisson(4) units."""
    order_cell = np.repeat(cell, n_orders)
    qty = CUSTOM_MIN_SIZE + rng.poisson(CUSTOM_EXTRA_MEAN, len(order_cell))
    return order_cell, qty


def draw_customers(n: int, pool: int, rng: np.random.Generator) -> np.ndarray:
    """Customer index per order from a pool of ``pool`` customers (skewed: repeat buyers)."""
    return np.minimum((pool * rng.random(n) ** CUSTOMER_SKEW).astype(np.int64), pool - 1)


def customer_identity(index: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(customer_id, customer_name, customer_email) of customer indices, all synthetic."""
    if len(index) == 0:  # e.g. a simulated week in which nobody writes a review
        empty = np.array([], dtype=object)
        return empty, empty, empty
    uniq, inv = np.unique(index, return_inverse=True)
    nf, nl = len(FIRST_NAMES), len(LAST_NAMES)
    fi, li = uniq % nf, (uniq // nf) % nl
    first = np.array(FIRST_NAMES, dtype=object)
    last = np.array(LAST_NAMES, dtype=object)
    first_l = np.array([n.lower() + "." for n in FIRST_NAMES], dtype=object)
    last_l = np.array([n.lower() + "." for n in LAST_NAMES], dtype=object)
    num = uniq.astype(str).astype(object)
    ids = "C" + np.char.zfill(uniq.astype(str), 7).astype(object)
    names = first[fi] + " " + last[li]
    emails = first_l[fi] + last_l[li] + num + "@example.com"
    return ids[inv], names[inv], emails[inv]


def sequence_ids(prefix: str, monday: np.ndarray, week: np.ndarray) -> np.ndarray:
    """``<prefix><yyyymmdd of the week's Monday>-<6-digit sequence within the week>``.

    ``monday`` holds each row's Monday, ``week`` its week index, sorted; ids stay unique across
    weeks realised separately.
    """
    if len(week) == 0:
        return np.empty(0, dtype=object)
    seq = np.arange(len(week)) - np.searchsorted(week, week, side="left")
    uniq, first = np.unique(week, return_index=True)
    tags = pd.DatetimeIndex(monday[first]).strftime(f"{prefix}%Y%m%d-").to_numpy(dtype=object)
    pad = np.array([f"{k:06d}" for k in range(int(seq.max()) + 1)], dtype=object)
    return tags[np.searchsorted(uniq, week)] + pad[seq]
