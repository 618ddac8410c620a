"""Demand features: one code path for training frames and serving frames.

A row is (variant, forecast origin week ``o``, target week ``o + h``), ``h`` = 1..H (direct
multi-horizon forecasting). Every feature of a row is computed from data of weeks <= ``o`` only
(orders, reviews and market signals dated after ``o`` never enter it), so a model trained on
these rows sees at training time exactly what it will see when the planner asks at week ``o``.
The target ``y`` (units ordered in the target week) is added to training rows only.

:func:`build_training_frame` stacks :func:`features_at` over many origins;
:func:`build_serving_frame` calls the same :func:`features_at` for one origin,
for stored variants or for new configurations
(attribute dicts): those have no history (``hist_weeks`` = 0, history features 0) and are forecast
from their attributes and their family's history (cold start).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from services.common.errors import InvalidArgument
from services.features.tables import attribute_columns, monday, normalise_and_count

FEATURE_VERSION = 2
WEEK = pd.Timedelta(days=7)
#: weeks after the last data week that a ``variant_weeks`` plan (price, promotion) may cover
PLAN_WEEKS = 53
LAGS = (1, 2, 3, 4)
MEANS = (4, 13, 52)
FAMILY_MEANS = (4, 13)
KEY_COLUMNS = ("variant_id", "origin_week", "target_week")
#: float features whose scale is "units per week" (the model log-transforms these)
VOLUME_FEATURES = (
    *(f"lag_{k}" for k in LAGS),
    *(f"mean_{w}" for w in MEANS),
    "seasonal_52",
    *(f"fam_mean_{w}" for w in FAMILY_MEANS),
    "fam_seasonal_52",
    "rating_count",
    "median_13",
)
#: Inputs the network reads only up to a cap: weeks of history and weeks since launch. Past half
#: a year a launch says nothing more, and uncapped they grow past every training row at the
#: hold-out's origin, so a network extrapolates them (one year of real data: the hold-out bias
#: swung from -0.33 to +0.27 over training seeds; capped, +0.13 to +0.18). The feature columns
#: stay as they are (LightGBM and the baselines read them whole; trees do not extrapolate).
INPUT_CAPS = {"hist_weeks": 26.0, "age_weeks": 26.0}


def network_input(name: str, x: np.ndarray) -> np.ndarray:
    """A numeric column as the network sees it before standardising: capped (``INPUT_CAPS``),
    ``log1p`` for volumes (``VOLUME_FEATURES``)."""
    if name in INPUT_CAPS:
        x = np.minimum(x, INPUT_CAPS[name])
    if name in VOLUME_FEATURES:
        x = np.log1p(np.maximum(x, 0.0))
    return x


OTHER_FEATURES = (
    "horizon",
    "week_sin",
    "week_cos",
    "list_price",
    "price_rel",
    "price_index",
    "trend_index",
    "hist_weeks",
    "age_weeks",
    "fam_season_ratio",
    "rating_mean",
    # known-future inputs of the target week (docs/data-format.md, variant_weeks) and recency
    "promo",
    "price_ratio",
    "promo_share_13",
    "zero_share_13",
    "weeks_since_sale",
)


def numeric_features(attributes: Sequence[str] = ()) -> list[str]:
    """Float feature columns; with ``attributes`` (``attr_*``) also their ``<attr>_ratio``."""
    return [*OTHER_FEATURES, *VOLUME_FEATURES, *(f"{a}_ratio" for a in attributes)]


def string_features(frames_or_variants: Mapping[str, pd.DataFrame] | pd.DataFrame) -> list[str]:
    variants = (
        frames_or_variants["variants"]
        if isinstance(frames_or_variants, Mapping)
        else frames_or_variants
    )
    return ["family_id", *attribute_columns(variants)]


@dataclass(frozen=True)
class DemandPanel:
    """Weekly arrays built once from the frames; features at any origin are slices of these."""

    first_week: pd.Timestamp
    n_weeks: int
    variants: pd.DataFrame  # variant_id, family_id, attr_*, list_price, price_rel, launch_idx, row
    demand: np.ndarray  # [n_variants, n_weeks] units ordered
    cum_demand: np.ndarray  # [n_variants, n_weeks + 1] cumulative, leading 0
    cum_on_sale: np.ndarray  # [n_variants, n_weeks + 1] cumulative count of on-sale weeks
    first_sale: np.ndarray  # [n_variants] week index of the first order (n_weeks if none)
    families: list[str]
    fam_per_variant: np.ndarray  # [n_families, n_weeks] family units / variants on sale
    cum_fam: np.ndarray  # [n_families, n_weeks + 1]
    market: np.ndarray  # [n_families, n_weeks, 2] price_index, trend_index (forward-filled)
    cum_rating_n: np.ndarray  # [n_variants, n_weeks + 1]
    cum_rating_sum: np.ndarray  # [n_variants, n_weeks + 1]
    attributes: list[str]
    #: per attribute: (family_id, value) -> group, and the cumulative per-variant weekly units of
    #: each group [G, n_weeks + 1] and of its weeks with a variant on sale [G, n_weeks + 1]
    attr_groups: dict[str, dict[tuple[str, str], int]]
    attr_cum: dict[str, tuple[np.ndarray, np.ndarray]]
    #: planned (known-future) posted price / list price and promotion flag per variant and week,
    #: [n_variants, n_weeks + PLAN_WEEKS], from the optional ``variant_weeks`` table (1.0 and 0
    #: where it says nothing)
    price_ratio: np.ndarray
    promo: np.ndarray
    on_sale: np.ndarray  # [n_variants, n_weeks] bool: launched by that week
    #: stored rows left out because no feature can be built from them (table -> reason -> rows;
    #: see ``services.features.tables.clean_frames``); empty when the data is sound
    skipped: dict[str, dict[str, int]] = field(default_factory=dict)

    def week_index(self, week: Any) -> int:
        w = monday(pd.Series([pd.Timestamp(week)])).iloc[0]
        return int((w - self.first_week) / WEEK)

    def week_at(self, idx: int | np.ndarray) -> Any:
        return self.first_week + pd.to_timedelta(np.asarray(idx) * 7, unit="D")

    @property
    def last_week(self) -> pd.Timestamp:
        return self.first_week + (self.n_weeks - 1) * WEEK


def _cum(a: np.ndarray) -> np.ndarray:
    out = np.zeros((a.shape[0], a.shape[1] + 1), dtype=np.float64)
    np.cumsum(a, axis=1, out=out[:, 1:])
    return out


def build_panel(frames: Mapping[str, pd.DataFrame]) -> DemandPanel:
    """Aggregate orders to weekly units per variant and precompute cumulative arrays."""
    f, skipped = normalise_and_count(frames)
    variants = f["variants"].copy().reset_index(drop=True)
    orders = f["orders"]
    if variants.empty:
        raise InvalidArgument("no variants in the data", field="variants")
    order_weeks = monday(orders["order_date"]) if len(orders) else pd.Series(dtype="M8[ns]")
    if len(orders):
        first, last = order_weeks.min(), order_weeks.max()
    else:
        first = last = monday(pd.Series([variants["launch_date"].min()])).iloc[0]
    if pd.isna(first):
        raise InvalidArgument("no orders and no launch dates in the data", field="orders")
    n_weeks = int((last - first) / WEEK) + 1

    families = f["families"].set_index("family_id")
    variants["row"] = np.arange(len(variants))
    launch = monday(variants["launch_date"].fillna(first))
    variants["launch_idx"] = ((launch - first) / WEEK).astype(int)
    base = variants["family_id"].map(families["base_price"]) if len(families) else np.nan
    variants["price_rel"] = (variants["list_price"] / base).fillna(1.0)
    vrow = pd.Series(variants["row"].to_numpy(), index=variants["variant_id"])

    demand = np.zeros((len(variants), n_weeks))
    if len(orders):
        rows = orders["variant_id"].map(vrow)
        ok = rows.notna().to_numpy()
        widx = ((order_weeks - first) / WEEK).astype(int).to_numpy()
        np.add.at(demand, (rows[ok].astype(int).to_numpy(), widx[ok]), orders["quantity"][ok])
    weeks = np.arange(n_weeks)
    on_sale = weeks[None, :] >= variants["launch_idx"].to_numpy()[:, None]
    sold = demand > 0
    first_sale = np.where(sold.any(axis=1), sold.argmax(axis=1), n_weeks)

    fam_names = sorted(set(variants["family_id"]) | set(families.index))
    fam_code = variants["family_id"].map({n: i for i, n in enumerate(fam_names)}).to_numpy()
    fam_units = np.zeros((len(fam_names), n_weeks))
    fam_count = np.zeros((len(fam_names), n_weeks))
    np.add.at(fam_units, fam_code, demand)
    np.add.at(fam_count, fam_code, on_sale.astype(float))
    fam_pv = np.divide(fam_units, fam_count, out=np.zeros_like(fam_units), where=fam_count > 0)
    variants["fam_code"] = fam_code

    market: np.ndarray = np.full((len(fam_names), n_weeks, 2), np.nan)
    m = f["market"]
    if len(m):
        mw = ((monday(m["week"]) - first) / WEEK).astype(int).to_numpy()
        mf = m["family_id"].map({n: i for i, n in enumerate(fam_names)})
        ok = mf.notna().to_numpy() & (mw >= 0) & (mw < n_weeks)
        market[mf[ok].astype(int), mw[ok], 0] = m["price_index"].to_numpy()[ok]
        market[mf[ok].astype(int), mw[ok], 1] = m["trend_index"].to_numpy()[ok]
        for k in range(2):  # forward fill along weeks: the last known value
            frame = pd.DataFrame(market[:, :, k].T).ffill()
            market[:, :, k] = frame.to_numpy().T
    market = np.asarray(np.nan_to_num(market, nan=1.0))

    rn = np.zeros((len(variants), n_weeks))
    rs = np.zeros((len(variants), n_weeks))
    r = f["reviews"]
    if len(r):
        rr = r["variant_id"].map(vrow)
        rw = ((monday(r["date"]) - first) / WEEK).astype(int).to_numpy()
        ok = rr.notna().to_numpy() & (rw >= 0) & (rw < n_weeks)
        np.add.at(rn, (rr[ok].astype(int).to_numpy(), rw[ok]), 1.0)
        np.add.at(rs, (rr[ok].astype(int).to_numpy(), rw[ok]), r["rating"].to_numpy()[ok])

    attrs = attribute_columns(variants)
    attr_groups: dict[str, dict[tuple[str, str], int]] = {}
    attr_cum: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for a in attrs:
        keys = list(zip(variants["family_id"].astype(str), variants[a].astype(str), strict=True))
        groups = {k: i for i, k in enumerate(sorted(set(keys)))}
        g = np.array([groups[k] for k in keys], dtype=int)
        units = np.zeros((len(groups), n_weeks))
        count = np.zeros((len(groups), n_weeks))
        np.add.at(units, g, demand)
        np.add.at(count, g, on_sale.astype(float))
        per_variant = np.divide(units, count, out=np.zeros_like(units), where=count > 0)
        attr_groups[a] = groups
        attr_cum[a] = (_cum(per_variant), _cum((count > 0).astype(float)))
        variants[f"_g_{a}"] = g

    price_ratio, promo = _plan_arrays(f.get("variant_weeks"), variants, vrow, first, n_weeks)

    return DemandPanel(
        first_week=first,
        n_weeks=n_weeks,
        variants=variants,
        demand=demand,
        cum_demand=_cum(demand),
        cum_on_sale=_cum(on_sale.astype(float)),
        first_sale=first_sale,
        families=fam_names,
        fam_per_variant=fam_pv,
        cum_fam=_cum(fam_pv),
        market=market,
        cum_rating_n=_cum(rn),
        cum_rating_sum=_cum(rs),
        attributes=attrs,
        attr_groups=attr_groups,
        attr_cum=attr_cum,
        price_ratio=price_ratio,
        promo=promo,
        on_sale=on_sale,
        skipped=skipped,
    )


def _plan_arrays(
    table: pd.DataFrame | None,
    variants: pd.DataFrame,
    vrow: pd.Series,
    first: pd.Timestamp,
    n_weeks: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Planned price / list price and promotion flag per (variant, week) from ``variant_weeks``.

    The table is optional (docs/data-format.md): ``variant_id``, ``week`` and any of ``price``
    (the posted price that week, EUR) and ``promo`` (0/1). Weeks it does not name keep price
    ratio 1.0 and promo 0, which is also what a model trained without the table sees.
    """
    width = n_weeks + PLAN_WEEKS
    ratio = np.ones((len(variants), width))
    promo = np.zeros((len(variants), width))
    if table is None or table.empty or "week" not in table or "variant_id" not in table:
        return ratio, promo
    t = table
    rows = t["variant_id"].astype(str).str.strip().str.upper().map(vrow)
    weeks = monday(pd.to_datetime(t["week"], errors="coerce"))
    widx = ((weeks - first) / WEEK).to_numpy()
    ok = rows.notna().to_numpy() & np.isfinite(widx) & (widx >= 0) & (widx < width)
    r = rows[ok].astype(int).to_numpy()
    w = widx[ok].astype(int)
    if "price" in t:
        price = pd.to_numeric(t["price"], errors="coerce").to_numpy()[ok]
        list_price = variants["list_price"].to_numpy(dtype=float)[r]
        good = np.isfinite(price) & (price > 0) & (list_price > 0)
        ratio[r[good], w[good]] = np.clip(price[good] / list_price[good], 0.05, 20.0)
    if "promo" in t:
        flag = t["promo"].astype(str).str.strip().str.lower()
        value = flag.map({"1": 1.0, "true": 1.0, "yes": 1.0, "1.0": 1.0}).fillna(0.0)
        promo[r, w] = value.to_numpy()[ok]
    return ratio, promo


def _window(cum: np.ndarray, rows: np.ndarray, t: int, w: int) -> np.ndarray:
    """Sum over weeks (t - w, t] of the arrays whose cumulative form is ``cum`` (clipped)."""
    hi = min(max(t + 1, 0), cum.shape[1] - 1)
    lo = min(max(t + 1 - w, 0), cum.shape[1] - 1)
    return cum[rows, hi] - cum[rows, lo]


def features_at(panel: DemandPanel, origin: int, rows: pd.DataFrame, horizon: int) -> pd.DataFrame:
    """Features of ``rows`` (variants; ``row`` = panel row or -1) at origin week index ``origin``.

    Returns one row per (variant, h) for h = 1..horizon, in variant-major order.
    """
    n = len(rows)
    hs = np.arange(1, horizon + 1)
    known = rows["row"].to_numpy() >= 0
    r = np.where(known, rows["row"].to_numpy(), 0)
    fam = rows["fam_code"].to_numpy().astype(int)
    t = origin
    ti = min(t, panel.n_weeks - 1)  # origins past the data see the last data week's values

    def hist(values: np.ndarray) -> np.ndarray:
        return np.where(known, values, 0.0)

    base: dict[str, np.ndarray] = {}
    for k in LAGS:
        w = t - k + 1
        base[f"lag_{k}"] = hist(panel.demand[r, w] if 0 <= w < panel.n_weeks else np.zeros(n))
    for w in MEANS:
        s = _window(panel.cum_demand, r, t, w)
        c = _window(panel.cum_on_sale, r, t, w)
        base[f"mean_{w}"] = hist(np.divide(s, c, out=np.zeros(n), where=c > 0))
    lo13 = max(t - 12, 0)
    if 0 <= t < panel.n_weeks:
        window = np.where(
            panel.on_sale[r, lo13 : t + 1], panel.demand[r, lo13 : t + 1], np.nan
        )  # fmt: skip
        seen = np.isfinite(window).sum(axis=1)
        with np.errstate(all="ignore"):
            med = np.nanmedian(np.where(seen[:, None] > 0, window, 0.0), axis=1)
            zeros = np.nansum(window == 0, axis=1) / np.maximum(seen, 1)
        base["median_13"] = hist(np.where(seen > 0, med, 0.0))
        base["zero_share_13"] = hist(np.where(seen > 0, zeros, 0.0))
        sold = panel.demand[r, : t + 1] > 0
        since = np.argmax(sold[:, ::-1], axis=1)  # weeks from the last sale to the origin
        base["weeks_since_sale"] = hist(
            np.where(sold.any(axis=1), np.minimum(since, 52), 52).astype(float)
        )
        base["promo_share_13"] = hist(panel.promo[r, lo13 : t + 1].mean(axis=1))
    else:
        for name in ("median_13", "zero_share_13", "promo_share_13"):
            base[name] = np.zeros(n)
        base["weeks_since_sale"] = np.full(n, 52.0)
    fs = panel.first_sale[r]
    base["hist_weeks"] = hist(np.where(fs <= t, t - fs + 1, 0).astype(float))
    for w in FAMILY_MEANS:
        base[f"fam_mean_{w}"] = _window(panel.cum_fam, fam, t, w) / w
    # each attribute value's recent level within the family, relative to the family's level:
    # what a new configuration inherits from the variants that share its fabric, colour, ...
    for a in panel.attributes:
        g = rows[f"_g_{a}"].to_numpy().astype(int)
        gs = np.where(g >= 0, g, 0)
        cum_units, cum_weeks = panel.attr_cum[a]
        weeks_seen = np.where(g >= 0, _window(cum_weeks, gs, t, 13), 0.0)
        level = np.divide(_window(cum_units, gs, t, 13), weeks_seen, out=np.zeros(n),
                          where=weeks_seen > 0)  # fmt: skip
        ratio = np.log((level + 0.1) / (base["fam_mean_13"] + 0.1))
        base[f"{a}_ratio"] = np.where(weeks_seen > 0, np.clip(ratio, -3.0, 3.0), 0.0)
    rn = hist(_window(panel.cum_rating_n, r, t, 10**6))
    rs = hist(_window(panel.cum_rating_sum, r, t, 10**6))
    fam_rn = np.zeros(len(panel.families))
    fam_rs = np.zeros(len(panel.families))
    all_r = panel.variants["row"].to_numpy()
    all_f = panel.variants["fam_code"].to_numpy()
    np.add.at(fam_rn, all_f, _window(panel.cum_rating_n, all_r, t, 10**6))
    np.add.at(fam_rs, all_f, _window(panel.cum_rating_sum, all_r, t, 10**6))
    fam_mean_rating = np.divide(fam_rs, fam_rn, out=np.full(len(fam_rn), 4.0), where=fam_rn > 0)
    base["rating_count"] = rn
    base["rating_mean"] = np.divide(rs, rn, out=fam_mean_rating[fam].copy(), where=rn > 0)
    if ti >= 0:
        base["price_index"] = panel.market[fam, ti, 0]
        base["trend_index"] = panel.market[fam, ti, 1]
    else:
        base["price_index"] = base["trend_index"] = np.ones(n)
    base["list_price"] = rows["list_price"].to_numpy(dtype=float)
    base["price_rel"] = rows["price_rel"].to_numpy(dtype=float)

    # per (variant, h): repeat the origin features, add the target-week ones
    out = {k: np.repeat(v, horizon) for k, v in base.items()}
    target = np.tile(t + hs, n)
    rr = np.repeat(r, horizon)
    ff = np.repeat(fam, horizon)
    kk = np.repeat(known, horizon)
    s_idx = target - 52
    s_ok = (s_idx >= 0) & (s_idx <= t) & (s_idx < panel.n_weeks)
    s_safe = np.clip(s_idx, 0, panel.n_weeks - 1)
    out["seasonal_52"] = np.where(s_ok & kk, panel.demand[rr, s_safe], 0.0)
    out["fam_seasonal_52"] = np.where(s_ok, panel.fam_per_variant[ff, s_safe], 0.0)
    # seasonal index of the family: target week last year vs the 13 weeks around origin - 52
    ref = _window(panel.cum_fam, ff, t - 52, 13) / 13
    out["fam_season_ratio"] = np.where(
        s_ok & (ref > 0), out["fam_seasonal_52"] / np.maximum(ref, 1e-9), 1.0
    )
    # the target week's planned price and promotion: known in advance, not a leak
    t_plan = np.clip(target, 0, panel.promo.shape[1] - 1)
    known_plan = (target >= 0) & (target < panel.promo.shape[1]) & kk
    out["promo"] = np.where(known_plan, panel.promo[rr, t_plan], 0.0)
    out["price_ratio"] = np.where(known_plan, panel.price_ratio[rr, t_plan], 1.0)
    out["horizon"] = np.tile(hs, n).astype(float)
    target_weeks = panel.week_at(target)
    iso = pd.DatetimeIndex(target_weeks).isocalendar().week.to_numpy().astype(float)
    # the week of the year is a signal only where the data holds that week a year earlier:
    # with less than a year of history it would place the target weeks where training never was
    # (a network extrapolates from such inputs), so it is 0 (both) there
    year_ago = target - 52 >= 0
    out["week_sin"] = np.where(year_ago, np.sin(2 * np.pi * iso / 52.0), 0.0)
    out["week_cos"] = np.where(year_ago, np.cos(2 * np.pi * iso / 52.0), 0.0)
    out["age_weeks"] = np.maximum(target - np.repeat(rows["launch_idx"].to_numpy(), horizon), 0)

    frame = pd.DataFrame(
        {
            "variant_id": np.repeat(rows["variant_id"].to_numpy(), horizon),
            "origin_week": panel.week_at(np.full(n * horizon, t)),
            "target_week": target_weeks,
            "_launch_idx": np.repeat(rows["launch_idx"].to_numpy(), horizon),
            "_target_idx": target,
            "_row": np.repeat(rows["row"].to_numpy(), horizon),
        }
    )
    for col in ["family_id", *panel.attributes]:
        frame[col] = np.repeat(rows[col].astype(str).to_numpy(), horizon)
    for col in numeric_features(panel.attributes):
        frame[col] = np.asarray(out[col], dtype=np.float32)
    return frame


def _public(frame: pd.DataFrame, panel: DemandPanel, extra: Sequence[str] = ()) -> pd.DataFrame:
    cols = [
        *KEY_COLUMNS,
        "family_id",
        *panel.attributes,
        *numeric_features(panel.attributes),
        *extra,
    ]
    return frame[cols].reset_index(drop=True)


def build_training_frame(
    frames: Mapping[str, pd.DataFrame] | DemandPanel,
    *,
    horizon: int = 13,
    until_week: Any = None,
    first_origin_weeks: int = 8,
    origin_stride: int = 1,
    origins: Iterable[Any] | None = None,
) -> pd.DataFrame:
    """Rows (variant, origin, origin + h) with the target ``y``, targets up to ``until_week``.

    Origins run from ``first_origin_weeks`` after the first data week to ``until_week - 1`` every
    ``origin_stride`` weeks (or exactly ``origins``). Rows whose target week is before the variant's
    launch are left out (nothing could be ordered); variants launched after the origin are kept:
    they are the cold-start examples.
    """
    panel = frames if isinstance(frames, DemandPanel) else build_panel(frames)
    last = panel.n_weeks - 1 if until_week is None else panel.week_index(until_week)
    last = min(last, panel.n_weeks - 1)
    if origins is not None:
        origin_idx = [panel.week_index(o) for o in origins]
    else:
        origin_idx = list(range(first_origin_weeks, last, origin_stride))
    parts = []
    rows = panel.variants
    for t in origin_idx:
        part = features_at(panel, t, rows, horizon)
        keep = (part["_target_idx"] <= last) & (part["_target_idx"] >= part["_launch_idx"])
        part = part[keep.to_numpy()]
        part["y"] = panel.demand[part["_row"].to_numpy(), part["_target_idx"].to_numpy()]
        parts.append(_public(part, panel, ("y",)))
    if not parts:
        return _public(features_at(panel, 0, rows.iloc[:0], horizon), panel, ()).assign(y=[])
    out = pd.concat(parts, ignore_index=True)
    out["y"] = out["y"].astype(np.float32)
    return out


def _variant_rows(panel: DemandPanel, variants: Sequence[Any], origin: int) -> pd.DataFrame:
    known = panel.variants.set_index("variant_id")
    fam_idx = {n: i for i, n in enumerate(panel.families)}
    recs = []
    for i, v in enumerate(variants):
        if isinstance(v, Mapping):
            vid = str(v.get("variant_id") or f"NEW-{i + 1}")
            if vid in known.index and not {k for k in v if k.startswith("attr_")}:
                v = vid  # an id given as a dict: treat as the stored variant
            else:
                fam = str(v.get("family_id", "")).strip().upper()
                if fam not in fam_idx:
                    raise InvalidArgument(f"unknown family {fam!r}", field="family_id")
                fam_v = panel.variants[panel.variants["family_id"] == fam]
                base_price = float((fam_v["list_price"] / fam_v["price_rel"]).median())
                price = float(v.get("list_price") or base_price)
                launch = v.get("launch_date")
                launch_idx = panel.week_index(launch) if launch else origin + 1
                rec = {
                    "variant_id": vid,
                    "family_id": fam,
                    "list_price": price,
                    "price_rel": price / base_price if base_price > 0 else 1.0,
                    "launch_idx": launch_idx,
                    "row": -1,
                    "fam_code": fam_idx[fam],
                }
                for a in panel.attributes:
                    value = str(v.get(a, "")).strip().lower()
                    rec[a] = value
                    rec[f"_g_{a}"] = panel.attr_groups[a].get((fam, value), -1)
                recs.append(rec)
                continue
        vid = str(v).strip().upper()
        if vid not in known.index:
            raise InvalidArgument(f"unknown variant {vid!r}", field="variant_id")
        recs.append({"variant_id": vid, **known.loc[vid].to_dict()})
    return pd.DataFrame.from_records(recs)


def build_serving_frame(
    frames: Mapping[str, pd.DataFrame] | DemandPanel,
    origin_week: Any,
    variants: Sequence[Any],
    horizon: int,
) -> pd.DataFrame:
    """Feature rows for weeks ``origin_week + 1 .. + horizon`` of each variant.

    ``variants``: variant ids, or dicts describing a configuration (``family_id``, ``attr_*``,
    optional ``list_price``, ``variant_id``, ``launch_date``); a configuration without stored
    history is a cold start. Only data of weeks <= ``origin_week`` is used.
    """
    if not 1 <= int(horizon) <= 52:
        raise InvalidArgument("horizon must be between 1 and 52 weeks", field="horizon")
    panel = frames if isinstance(frames, DemandPanel) else build_panel(frames)
    origin = panel.week_index(origin_week)
    if origin < 0:
        raise InvalidArgument("origin week is before the first data week", field="origin_week")
    rows = _variant_rows(panel, list(variants), origin)
    return _public(features_at(panel, origin, rows, int(horizon)), panel)
