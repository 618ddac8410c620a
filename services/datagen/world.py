"""The synthetic manufacturer's world: true demand, and realised orders, production and reviews.

A :class:`World` is fully determined by (preset, seed). It knows the true expected weekly demand
of every variant for any week (history and future), and realises outcomes: orders of one or many
weeks, production records for given quantities, reviews of orders. ``tailorline datagen`` builds
the whole history through it; the closed-loop simulator advances it one week at a time
(:meth:`World.realise_week`). The equations are in docs/synthetic-data.md.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from services.datagen import orders as od
from services.datagen import shopfloor as sf
from services.datagen.catalog import Catalog, build_catalog
from services.datagen.presets import Preset, preset_from_dict
from services.datagen.shopfloor import (
    SetupTruth,
    ShopFloor,
    draw_setups,
    expected_week_cost,
    realise,
)

PROMO_P = 0.05  # probability that a variant is on promotion in a history week
PROMO_DISCOUNTS = np.array([0.15, 0.20, 0.25])
PROMO_UPLIFT = 1.25  # demand uplift of a promotion on top of its price effect
PRICE_JITTER_SIGMA = 0.03  # week-to-week posted price noise (history only)
TREND_RANGE = (-0.05, 0.15)  # family growth per year, log scale
DISPERSION_RANGE = (3.0, 6.0)  # negative-binomial shape k: Var = mu + mu^2 / k
MARKET_PHI = 0.85  # AR(1) coefficient of the log market indices
TREND_INDEX_SIGMA = 0.04  # innovation sd of log trend_index
PRICE_INDEX_SIGMA = 0.02  # innovation sd of log price_index
BETA_TREND = 0.6  # demand factor trend_index ** BETA_TREND
BETA_PRICE_INDEX = 0.8  # demand factor price_index ** BETA_PRICE_INDEX (competitors dearer -> more)
SHIFT_MARKET_LEAD = 3  # the market trend index starts moving this many weeks before demand
LAUNCH_RAMP = (0.5, 3.0)  # age factor 1 - 0.5 exp(-age / 3) for a newly launched variant
REVIEW_P = 0.06  # share of orders that get a review
REVIEW_DELAY_DAYS = (7, 35)
RATING_NOISE = 0.9
STOCK_WEEKS = (2.0, 5.0)  # material stock at the end of history, in weeks of expected usage
ARRIVAL_EVERY = 4  # weeks between material arrivals in history
HOURS_NOISE = sf.HOURS_NOISE  # log-normal noise of recorded processing hours
COST_NOISE = sf.COST_NOISE  # log-normal noise of recorded cost
EXTRA_PATH_WEEKS = 52  # market paths are drawn this far beyond the horizon


@dataclass(frozen=True)
class OrderBatch:
    """Realised orders as arrays (one entry per order row)."""

    variant: np.ndarray  # variant index
    week: np.ndarray  # week index of order_date
    due_week: np.ndarray  # week index of due_date
    order_id: np.ndarray
    customer: np.ndarray  # customer index
    quantity: np.ndarray
    unit_price: np.ndarray
    order_date: np.ndarray  # datetime64[D]
    due_date: np.ndarray
    custom: np.ndarray  # bool
    promo: np.ndarray  # int 0/1

    def __len__(self) -> int:
        return len(self.order_id)

    def table(self, variant_id: np.ndarray) -> pd.DataFrame:
        """The ``orders`` table of docs/data-format.md (with the private customer columns)."""
        cid, name, email = od.customer_identity(self.customer)
        return pd.DataFrame(
            {
                "order_id": self.order_id,
                "customer_id": cid,
                "customer_name": name,
                "customer_email": email,
                "variant_id": variant_id[self.variant],
                "quantity": self.quantity,
                "unit_price": self.unit_price,
                "order_date": self.order_date,
                "due_date": self.due_date,
                "kind": np.where(self.custom, "custom", "stock"),
                "promo": self.promo,
            }
        )


@dataclass(frozen=True)
class WeekOutcome:
    """What one simulated week adds: its orders, reviews written in it, its market row."""

    week: int
    orders: pd.DataFrame
    reviews: pd.DataFrame
    market: pd.DataFrame


class World:
    """Ground truth and outcome generator of the synthetic manufacturer (see module docstring)."""

    def __init__(self, preset: Preset, seed: int) -> None:
        self.preset = preset
        self.seed = int(seed)
        self.catalog: Catalog = build_catalog(preset, np.random.default_rng([self.seed, 0]))
        cat = self.catalog
        rng = np.random.default_rng([self.seed, 1])
        n, v, f = preset.n_weeks, cat.n_variants, len(cat.families)
        self.n_weeks = n
        self.start_week = preset.end_week - dt.timedelta(weeks=n - 1)
        self.n_path_weeks = n + preset.horizon_weeks + EXTRA_PATH_WEEKS

        self.trend = rng.uniform(*TREND_RANGE, f)
        self.dispersion = rng.uniform(*DISPERSION_RANGE, f)
        self.promo_hist = rng.random((v, n)) < PROMO_P
        self.discount_hist = np.where(self.promo_hist, rng.choice(PROMO_DISCOUNTS, (v, n)), 0.0)
        self.jitter_hist = np.exp(rng.normal(0.0, PRICE_JITTER_SIGMA, (v, n)))
        self._ar_trend = self._ar_paths(rng, f, TREND_INDEX_SIGMA)
        self._ar_price = self._ar_paths(rng, f, PRICE_INDEX_SIGMA)

        shifting = cat.attrs["fabric"] == preset.shift_fabric
        self.shift_mask = shifting
        fam_total = np.bincount(cat.family, weights=cat.effect, minlength=f)
        fam_shift = np.bincount(cat.family, weights=cat.effect * shifting, minlength=f)
        self.shift_share = fam_shift / fam_total

        self.scale = 1.0
        hist = np.arange(n)
        raw = self.expected_demand(hist)
        active = hist[None, :] >= cat.launch_week[:, None]
        self.scale = preset.mean_weekly_demand / float(raw[active].mean())

        recent = np.arange(max(0, n - 52), n)
        mu = self.expected_demand(recent).mean(axis=1)  # [V]
        load = (mu[:, None] * cat.routing[cat.family] * np.nan_to_num(cat.hours)).sum(axis=0)
        util = np.array([ln.utilisation for ln in cat.lines])
        self.capacity_hours = load / util
        self.weekly_usage = mu @ cat.usage  # [M] expected material usage per week
        n_orders = preset.mean_weekly_demand * active.sum() / 1.35
        self.n_customers = max(50, int(n_orders / 4))
        self._materials_rng = np.random.default_rng([self.seed, 3])
        self.setups: SetupTruth = draw_setups(cat, np.random.default_rng([self.seed, 5]))

    @classmethod
    def from_dataset(cls, folder: str | Path) -> World:
        """The world that generated the data set in ``folder`` (from ``truth/params.json``)."""
        params = json.loads((Path(folder) / "truth" / "params.json").read_text())
        return cls(preset_from_dict(params["preset_shape"]), int(params["seed"]))

    # --- time -----------------------------------------------------------------------------
    def _ar_paths(self, rng: np.random.Generator, f: int, sigma: float) -> np.ndarray:
        eps = rng.normal(0.0, sigma, (f, self.n_path_weeks))
        out = np.empty_like(eps)
        out[:, 0] = eps[:, 0] / math.sqrt(1 - MARKET_PHI**2)
        for t in range(1, self.n_path_weeks):
            out[:, t] = MARKET_PHI * out[:, t - 1] + eps[:, t]
        return out

    def week_date(self, weeks: np.ndarray) -> np.ndarray:
        """Monday (datetime64[D]) of week indices (0 = first week of history)."""
        return np.datetime64(self.start_week, "D") + 7 * np.asarray(weeks, dtype=np.int64)

    def week_index(self, dates: Any) -> np.ndarray:
        """Week index of dates (any day of the week)."""
        d = np.asarray(dates, dtype="datetime64[D]")
        return (d - np.datetime64(self.start_week, "D")).astype(np.int64) // 7

    def _check_weeks(self, weeks: np.ndarray) -> np.ndarray:
        weeks = np.atleast_1d(np.asarray(weeks, dtype=np.int64))
        if weeks.size and (weeks.min() < 0 or weeks.max() >= self.n_path_weeks):
            raise ValueError(f"weeks must lie in [0, {self.n_path_weeks})")
        return weeks

    # --- drivers ---------------------------------------------------------------------------
    def ramp(self, weeks: np.ndarray) -> np.ndarray:
        """Fashion-shift ramp r(t) in [0, 1]: 0 before the shift week, 1 after the ramp."""
        p = self.preset
        return np.clip((np.asarray(weeks) - p.shift_week + 1) / p.shift_ramp_weeks, 0.0, 1.0)

    def market(self, weeks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(trend_index, price_index) per family and week, each [F, W]."""
        weeks = self._check_weeks(weeks)
        m = self.preset.shift_multiplier
        shift = 1.0 + self.shift_share[:, None] * (m - 1.0) * self.ramp(weeks + SHIFT_MARKET_LEAD)
        trend_index = np.exp(self._ar_trend[:, weeks]) * shift
        price_index = np.exp(self._ar_price[:, weeks])
        return trend_index, price_index

    def pricing(self, weeks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(price ratio posted/list, promo flag) per variant and week, [V, W]; future = 1, 0."""
        weeks = self._check_weeks(weeks)
        v = self.catalog.n_variants
        ratio = np.ones((v, len(weeks)))
        promo = np.zeros((v, len(weeks)), dtype=bool)
        hist = weeks < self.n_weeks
        h = weeks[hist]
        ratio[:, hist] = (1.0 - self.discount_hist[:, h]) * self.jitter_hist[:, h]
        promo[:, hist] = self.promo_hist[:, h]
        return ratio, promo

    def seasonality(self, weeks: np.ndarray) -> np.ndarray:
        """Family seasonality factor [F, W] from the week of year of each week's Monday."""
        dates = pd.DatetimeIndex(self.week_date(weeks))
        woy = (dates.dayofyear.to_numpy() - 1) / 7.0
        amp = np.array([fam.season_amplitude for fam in self.catalog.families])
        peak = np.array([fam.season_peak_week for fam in self.catalog.families])
        return 1.0 + amp[:, None] * np.cos(2 * np.pi * (woy[None, :] - peak[:, None]) / 52.0)

    def expected_demand(self, weeks: np.ndarray, variants: np.ndarray | None = None) -> np.ndarray:
        """True expected units ordered per variant and week, [V, W] (rows: ``variants``)."""
        weeks = self._check_weeks(weeks)
        cat = self.catalog
        idx = np.arange(cat.n_variants) if variants is None else np.asarray(variants)
        fam = cat.family[idx]
        elasticity = np.array([f.elasticity for f in cat.families])[fam]
        ratio, promo = self.pricing(weeks)
        trend_index, price_index = self.market(weeks)
        age = weeks[None, :] - cat.launch_week[idx][:, None]
        age_factor = np.where(
            age >= 0, 1.0 - LAUNCH_RAMP[0] * np.exp(-np.maximum(age, 0) / LAUNCH_RAMP[1]), 0.0
        )
        shift = (
            1.0
            + self.shift_mask[idx][:, None]
            * (self.preset.shift_multiplier - 1.0)
            * (self.ramp(weeks)[None, :])
        )
        return (
            self.scale
            * cat.effect[idx][:, None]
            * self.seasonality(weeks)[fam]
            * np.exp(self.trend[fam][:, None] * weeks[None, :] / 52.0)
            * ratio[idx] ** (-elasticity[:, None])
            * np.where(promo[idx], PROMO_UPLIFT, 1.0)
            * trend_index[fam] ** BETA_TREND
            * price_index[fam] ** BETA_PRICE_INDEX
            * shift
            * age_factor
        )

    # --- outcomes --------------------------------------------------------------------------
    def realise_orders(self, weeks: np.ndarray, rng: np.random.Generator) -> OrderBatch:
        """Realise the orders of ``weeks`` (sorted week indices) in one vectorised draw."""
        weeks = self._check_weeks(weeks)
        cat = self.catalog
        v, w = cat.n_variants, len(weeks)
        mu = self.expected_demand(weeks)
        custom_share = np.array([f.custom_share for f in cat.families])[cat.family][:, None]
        k = self.dispersion[cat.family][:, None]
        mu_stock = mu * (1.0 - custom_share)
        stock_units = rng.negative_binomial(k, k / (k + mu_stock))
        n_custom = rng.poisson(mu * custom_share / od.CUSTOM_MEAN_SIZE)
        cells = np.arange(v * w)  # cell = variant * w + week position, row-major
        s_cell, s_qty = od.split_stock_units(cells, stock_units.ravel(), rng)
        c_cell, c_qty = od.draw_custom_orders(cells, n_custom.ravel(), rng)
        cell = np.concatenate([s_cell, c_cell])
        qty = np.concatenate([s_qty, c_qty])
        custom = np.concatenate([np.zeros(len(s_cell), bool), np.ones(len(c_cell), bool)])
        var, pos = np.divmod(cell, w)
        week = weeks[pos]
        n = len(cell)
        day = rng.choice(7, size=n, p=od.WEEKDAY_P)
        order_date = self.week_date(week) + day
        due_days = np.where(
            custom,
            7 * rng.integers(od.CUSTOM_DUE_WEEKS[0], od.CUSTOM_DUE_WEEKS[1] + 1, n),
            rng.integers(od.STOCK_DUE_DAYS[0], od.STOCK_DUE_DAYS[1] + 1, n),
        )
        due_date = order_date + due_days
        ratio, promo = self.pricing(weeks)
        posted = cat.list_price[var] * ratio[var, pos]
        discount = rng.choice(od.ORDER_DISCOUNTS, size=n, p=od.ORDER_DISCOUNT_P)
        price = posted * (1.0 - discount) * np.where(custom, 1.0 + od.CUSTOM_PREMIUM, 1.0)
        customer = od.draw_customers(n, self.n_customers, rng)
        order = np.lexsort((var, order_date, week))
        week_s = week[order]
        return OrderBatch(
            variant=var[order],
            week=week_s,
            due_week=self.week_index(due_date[order]),
            order_id=od.sequence_ids("O", self.week_date(week_s), week_s),
            customer=customer[order],
            quantity=qty[order].astype(np.int64),
            unit_price=np.round(price[order], 2),
            order_date=order_date[order],
            due_date=due_date[order],
            custom=custom[order],
            promo=promo[var, pos][order].astype(np.int64),
        )

    def realise_shop_floor(
        self,
        variant: np.ndarray,
        line: np.ndarray,
        week: np.ndarray,
        quantity: np.ndarray,
        rng: np.random.Generator,
    ) -> ShopFloor:
        """Production records (one per run: good ``quantity`` of (variant, line index, week)) and
        the family changeovers they needed, with the true cost structure of
        :mod:`services.datagen.shopfloor` and small log-normal noise. Lines must be eligible;
        the overtime premium of a line-week counts the runs of this call (give whole weeks)."""
        order = np.lexsort((line, variant, week))
        variant, line, week, quantity = (
            np.asarray(a)[order] for a in (variant, line, week, quantity)
        )
        return realise(
            self.catalog,
            self.setups,
            self.capacity_hours,
            np.datetime64(self.start_week, "D"),
            variant,
            line,
            week.astype(np.int64),
            quantity,
            rng,
        )

    def realise_production(
        self,
        variant: np.ndarray,
        line: np.ndarray,
        week: np.ndarray,
        quantity: np.ndarray,
        rng: np.random.Generator,
    ) -> pd.DataFrame:
        """The ``production`` records of :meth:`realise_shop_floor`."""
        return self.realise_shop_floor(variant, line, week, quantity, rng).production

    def _plan_arrays(
        self, plan: pd.DataFrame
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        plan = plan[plan["quantity"] > 0]
        cat = self.catalog
        v_index = pd.Index(cat.variant_id)
        l_index = pd.Index([ln.line_id for ln in cat.lines])
        variant = v_index.get_indexer(plan["variant_id"])
        line = l_index.get_indexer(plan["line_id"])
        if (variant < 0).any() or (line < 0).any():
            raise ValueError("unknown variant_id or line_id in the production plan")
        week = plan["week"].to_numpy()
        if not np.issubdtype(week.dtype, np.integer):
            week = self.week_index(pd.to_datetime(plan["week"]).to_numpy())
        qty = plan["quantity"].to_numpy(dtype=np.int64)
        return variant, line, week.astype(np.int64), qty

    def realise_shop_floor_table(self, plan: pd.DataFrame, rng: np.random.Generator) -> ShopFloor:
        """:meth:`realise_shop_floor` for a frame with ``variant_id``, ``line_id``, ``week``
        (week index or a date in the week) and ``quantity`` (rows with quantity 0 are skipped)."""
        variant, line, week, qty = self._plan_arrays(plan)
        return self.realise_shop_floor(variant, line, week, qty, rng)

    def realise_production_table(
        self, plan: pd.DataFrame, rng: np.random.Generator
    ) -> pd.DataFrame:
        """The ``production`` records of :meth:`realise_shop_floor_table`."""
        return self.realise_shop_floor_table(plan, rng).production

    def history_shop_floor(self, batch: OrderBatch, rng: np.random.Generator) -> ShopFloor:
        """What the plant made in history: stock orders in their week, custom orders the week
        before they are due, each (variant, week) one run on an eligible line drawn by the
        routing; with the family changeovers those runs needed."""
        cat = self.catalog
        n = self.n_weeks
        make_week = np.where(batch.custom, np.maximum(batch.due_week - 1, batch.week), batch.week)
        keep = make_week < n
        cell = batch.variant[keep] * n + make_week[keep]
        qty = np.bincount(cell, weights=batch.quantity[keep], minlength=cat.n_variants * n)
        cells = np.flatnonzero(qty)
        variant, week = np.divmod(cells, n)
        cum = np.cumsum(cat.routing, axis=1)[cat.family[variant]]
        line = (rng.random(len(cells))[:, None] > cum).sum(axis=1)
        line = np.minimum(line, len(cat.lines) - 1)
        return self.realise_shop_floor(variant, line, week, qty[cells].astype(np.int64), rng)

    def history_production(self, batch: OrderBatch, rng: np.random.Generator) -> pd.DataFrame:
        """The ``production`` records of :meth:`history_shop_floor`."""
        return self.history_shop_floor(batch, rng).production

    def expected_week_cost(self, made: np.ndarray) -> dict[str, float]:
        """True expected cost and hours of one week's production ``made`` [V, L] in units, by
        part (:func:`services.datagen.shopfloor.expected_week_cost`): what a plan really costs."""
        return expected_week_cost(self.catalog, self.setups, self.capacity_hours, made)

    def unit_cost_table(self) -> pd.DataFrame:
        """Ground truth per (variant, eligible line): ``unit_cost`` (c), ``hours_per_unit``,
        ``run_cost`` (F), ``setup_hours`` (variant setup)."""
        table = self.catalog.unit_cost_table()
        vi, li = np.nonzero(~np.isnan(self.catalog.hours))
        table["run_cost"] = np.round(self.setups.run_cost[vi, li], 4)
        table["setup_hours"] = np.round(self.setups.setup_hours[vi, li], 5)
        return table

    def family_setups_table(self, truth: bool = False) -> pd.DataFrame:
        """``line_id, family_id, setup_hours, setup_cost`` per eligible (family, line): the
        plant's standards (the ``family_setups`` table), or with ``truth`` the true means."""
        s = self.setups
        fi, li = np.nonzero(self.catalog.eligible)
        hours = (s.family_hours if truth else s.standard_hours)[fi, li]
        cost = (s.family_cost if truth else s.standard_cost)[fi, li]
        return pd.DataFrame(
            {
                "line_id": [self.catalog.lines[j].line_id for j in li],
                "family_id": [self.catalog.families[i].family_id for i in fi],
                "setup_hours": np.round(hours, 4),
                "setup_cost": np.round(cost, 2),
            }
        ).sort_values(["line_id", "family_id"], ignore_index=True)

    def realise_reviews(self, batch: OrderBatch, rng: np.random.Generator) -> pd.DataFrame:
        """Reviews of a share of ``batch``'s orders, written 1-5 weeks after the order."""
        cat = self.catalog
        pick = np.flatnonzero(rng.random(len(batch)) < REVIEW_P)
        v = batch.variant[pick]
        date = batch.order_date[pick] + rng.integers(
            REVIEW_DELAY_DAYS[0], REVIEW_DELAY_DAYS[1] + 1, len(pick)
        )
        latent = cat.rating_mean[v] + rng.normal(0.0, RATING_NOISE, len(pick))
        cid, _, _ = od.customer_identity(batch.customer[pick])
        return pd.DataFrame(
            {
                "review_id": "R" + pd.Series(batch.order_id[pick], dtype=object).str[1:],
                "variant_id": cat.variant_id[v],
                "customer_id": cid,
                "date": date,
                "rating": np.clip(np.rint(latent), 1, 5).astype(np.int64),
            }
        )

    def market_table(self, weeks: np.ndarray) -> pd.DataFrame:
        weeks = self._check_weeks(weeks)
        trend_index, price_index = self.market(weeks)
        f, w = trend_index.shape
        fam_ids = np.array([fam.family_id for fam in self.catalog.families], dtype=object)
        return pd.DataFrame(
            {
                "week": np.tile(self.week_date(weeks), f),
                "family_id": np.repeat(fam_ids, w),
                "price_index": np.round(price_index.ravel(), 4),
                "trend_index": np.round(trend_index.ravel(), 4),
            }
        )

    def realise_week(self, week: int, seed: int) -> WeekOutcome:
        """Orders, reviews and market row of one week (the simulator's step), from ``seed``."""
        rng = np.random.default_rng([int(seed), 2, int(week)])
        batch = self.realise_orders(np.array([week]), rng)
        return WeekOutcome(
            week=int(week),
            orders=batch.table(self.catalog.variant_id),
            reviews=self.realise_reviews(batch, rng),
            market=self.market_table(np.array([week])),
        )

    # --- materials -------------------------------------------------------------------------
    def material_tables(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(materials with stock at the end of history, material_arrivals past and pending)."""
        rng = np.random.default_rng([self.seed, 3])
        mats = self.catalog.materials.copy()
        usage = self.weekly_usage
        m = len(mats)
        integer = (mats["unit"] == "pcs").to_numpy()

        def _round(x: np.ndarray, which: np.ndarray) -> np.ndarray:
            return np.where(which, np.ceil(x), np.round(x, 1))

        mats["stock"] = _round(usage * rng.uniform(*STOCK_WEEKS, m), integer)
        mats = mats[["material_id", "name", "unit", "unit_cost", "stock", "lead_time_weeks"]]
        n = self.n_weeks
        offset = rng.integers(0, ARRIVAL_EVERY, m)
        mat_idx, week = [], []
        for j in range(m):  # one loop per material (tens), not per row
            hist = np.arange(offset[j], n, ARRIVAL_EVERY)
            lead = int(mats["lead_time_weeks"].iloc[j])
            pending = n + rng.integers(1, max(2, lead + 1), 1)
            weeks = np.concatenate([hist, pending])
            mat_idx.append(np.full(len(weeks), j))
            week.append(weeks)
        mi, wk = np.concatenate(mat_idx), np.concatenate(week)
        qty = usage[mi] * ARRIVAL_EVERY * rng.uniform(0.9, 1.1, len(mi))
        date = self.week_date(wk) + rng.integers(0, 5, len(mi))
        ids = np.array(mats["material_id"], dtype=object)[mi]
        tags = pd.Series(pd.to_datetime(date).strftime("%Y%m%d")).to_numpy(dtype=object)
        arrivals = pd.DataFrame(
            {
                "arrival_id": "A-" + ids + "-" + tags,
                "material_id": ids,
                "date": date,
                "quantity": np.maximum(_round(qty, integer[mi]), 1.0),
            }
        )
        return mats, arrivals.sort_values(["date", "material_id"], ignore_index=True)
