"""Baseline forecasts on a converted data set: the yardstick issue 14's demand model must beat.

    .venv/bin/python bench/realdata/baselines.py DIR [--holdout-weeks 13] [--no-statsforecast]
                                                     [--json FILE]

``DIR`` is a tailorline data set (docs/data-format.md); only ``variants`` and ``orders`` are read,
straight from their files with pandas (CSV, CSV.gz or Parquet), not through a store. When
``DIR/extra/variant_weeks.csv`` exists (written by ``completejourney.py``), the promotion calendar
in it is used for the data observations and for one promotion-aware reference forecast.

**Demand** = units ordered per variant and ISO week (Monday of ``order_date``), every order kind,
with 0 in the weeks without orders from the variant's launch week (``launch_date``, else its first
order) to the last week of the data; nothing before launch. This is what tailorline's features
call demand (docs/models.md).

**Hold-out**: the last ``--holdout-weeks`` H weeks (default 13). Two evaluations:

* ``one origin`` (the primary one, the design of ``tailorline train``'s evaluation): one forecast
  origin, the last training week ``o``; every hold-out week ``o+h`` (h = 1..H) of every variant
  launched by then and *warm* (at least one sale up to ``o``) is a row. Forecasts use weeks ``<= o``
  only. This is the number to compare with ``train --json``'s ``demand.model.wape``.
* ``rolling h=1``: origins ``o, o+1, ..., o+H-1``, each forecasting the next week only (the same
  rows; every forecast uses the weeks up to its own origin). Easier: always the freshest data.

**Methods** (point forecasts; WAPE = sum |y - f| / sum y over the rows; bias = sum (f - y) / sum y):

* ``last_value``: demand in the origin week.
* ``seasonal_naive``: demand in target week - 52; skipped (n/a) when no row has that week (a
  data set of one year); tailorline's own ``seasonal_naive`` falls back to the last value then.
* ``moving_median_13`` / ``moving_mean_13`` / ``moving_mean_4``: over the last 13 (4) weeks on sale
  up to the origin (fewer when the variant is younger).
* ``croston_opt``, ``tsb`` (alpha_d = alpha_p = 0.1), ``imapa``, ``autoets``
  (``season_length=1``, as tailorline's baseline): statsforecast, one fit per series and origin on
  the weeks on sale up to the origin (``--no-statsforecast`` skips them).
* ``median_13_promo*`` (only with ``extra/variant_weeks.csv``): uses the *known-future* promotion
  calendar (display or mailer in any kept store in the target week, as a planner would know it):
  the median of the last 13 weeks without a feature when the target week has none, else the
  median of the series' featured weeks up to the origin (the plain 13-week median times the
  pooled uplift when it has had none). Not a baseline the model must include, a measure of what
  the promotion input is worth.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def read_table(folder: Path, name: str) -> pd.DataFrame:
    for suffix, reader in (
        (".csv", pd.read_csv),
        (".csv.gz", pd.read_csv),
        (".parquet", pd.read_parquet),
    ):
        path = folder / (name + suffix)
        if path.exists():
            frame = reader(path)
            frame.columns = [c.strip().lower() for c in frame.columns]
            return frame
    sys.exit(f"{folder} has no {name}.csv, {name}.csv.gz or {name}.parquet")


def monday(dates: pd.Series) -> pd.Series:
    d = pd.to_datetime(dates).dt.normalize()
    return d - pd.to_timedelta(d.dt.weekday, unit="D")


def weekly_demand(folder: Path) -> pd.DataFrame:
    """Variants x weeks (Mondays) of units; NaN before launch, 0 in weeks on sale without orders."""
    variants = read_table(folder, "variants")
    orders = read_table(folder, "orders")
    orders["variant_id"] = orders.variant_id.astype(str).str.strip().str.upper()
    variants["variant_id"] = variants.variant_id.astype(str).str.strip().str.upper()
    orders = orders[pd.to_numeric(orders.quantity, errors="coerce") > 0]
    orders["week"] = monday(orders.order_date)
    units = orders.groupby(["variant_id", "week"]).quantity.sum().unstack(fill_value=0)
    weeks = pd.date_range(units.columns.min(), units.columns.max(), freq="7D")
    units = units.reindex(columns=weeks, fill_value=0).astype(float)
    first = orders.groupby("variant_id").week.min()
    launch = first.copy()
    if "launch_date" in variants:
        stated = variants.set_index("variant_id").launch_date.dropna()
        stated = monday(pd.Series(stated.values, index=stated.index))
        launch = stated.reindex(units.index).fillna(first).combine(first, min)
    on_sale = np.asarray(weeks)[None, :] >= launch.reindex(units.index).to_numpy()[:, None]
    return units.where(on_sale)


# ---------------------------------------------------------------------------------------------
# Forecasts. Y: float array [series, weeks], NaN before launch. Each function returns a forecast
# for target weeks `targets` (indices) from origin `o` (index), shape [series, len(targets)].


def window(Y: np.ndarray, o: int, k: int) -> np.ndarray:
    return Y[:, max(0, o - k + 1) : o + 1]


def simple_forecasts(Y: np.ndarray, o: int, targets: list[int]) -> dict[str, np.ndarray]:
    n = len(targets)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN windows: not warm, not scored
        out = {
            "last_value": np.repeat(Y[:, o : o + 1], n, axis=1),
            "moving_median_13": np.repeat(np.nanmedian(window(Y, o, 13), axis=1)[:, None], n, 1),
            "moving_mean_13": np.repeat(np.nanmean(window(Y, o, 13), axis=1)[:, None], n, 1),
            "moving_mean_4": np.repeat(np.nanmean(window(Y, o, 4), axis=1)[:, None], n, 1),
        }
    if all(t - 52 >= 0 for t in targets):
        out["seasonal_naive"] = np.stack([Y[:, t - 52] for t in targets], axis=1)
    return out


def promo_forecast(Y: np.ndarray, F: np.ndarray, o: int, targets: list[int]) -> np.ndarray:
    """13-week median split by the known-future feature calendar F (0/1, same shape as Y)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        hist, fh = Y[:, : o + 1], F[:, : o + 1]
        plain = np.nanmedian(window(Y, o, 13), axis=1)
        base = np.nanmedian(np.where(window(F, o, 13) > 0, np.nan, window(Y, o, 13)), axis=1)
        base = np.where(np.isnan(base), plain, base)
        featured = np.nanmedian(np.where(fh > 0, hist, np.nan), axis=1)
        no_feat = np.nanmedian(np.where(fh > 0, np.nan, hist), axis=1)
        ok = (featured > 0) & (no_feat > 0)
        pooled = float(np.nanmedian(featured[ok] / no_feat[ok])) if ok.any() else 1.0
        featured = np.where(np.isnan(featured), plain * pooled, featured)
    return np.stack([np.where(F[:, t] > 0, featured, base) for t in targets], axis=1)


def long_frame(Y: np.ndarray, weeks: pd.DatetimeIndex, upto: int) -> pd.DataFrame:
    rows = []
    for i in range(Y.shape[0]):
        y = Y[i, : upto + 1]
        ok = ~np.isnan(y)
        if ok.any() and np.nansum(y) > 0:
            rows.append(pd.DataFrame({"unique_id": i, "ds": weeks[: upto + 1][ok], "y": y[ok]}))
    return pd.concat(rows, ignore_index=True)


def sf_models():
    from statsforecast.models import IMAPA, TSB, AutoETS, CrostonOptimized

    return [
        CrostonOptimized(alias="croston_opt"),
        TSB(0.1, 0.1, alias="tsb"),
        IMAPA(alias="imapa"),
        AutoETS(season_length=1, alias="autoets"),
    ]


def sf_one_origin(Y, weeks, o, H) -> dict[str, np.ndarray]:
    from statsforecast import StatsForecast

    df = long_frame(Y, weeks, o)
    sf = StatsForecast(models=sf_models(), freq="7D", n_jobs=1)
    fc = sf.forecast(h=H, df=df)
    fc = fc.reset_index() if "unique_id" not in fc.columns else fc
    fc["h"] = fc.groupby("unique_id").cumcount()
    out = {}
    for name in ("croston_opt", "tsb", "imapa", "autoets"):
        arr = np.full((Y.shape[0], H), np.nan)
        arr[fc.unique_id.to_numpy(), fc.h.to_numpy()] = fc[name].to_numpy()
        out[name] = arr
    return out


def sf_rolling(Y, weeks, o, H) -> dict[str, np.ndarray]:
    """h=1 forecasts from origins o..o+H-1 (refit at each)."""
    from statsforecast import StatsForecast

    out = {
        name: np.full((Y.shape[0], H), np.nan)
        for name in ("croston_opt", "tsb", "imapa", "autoets")
    }
    for k in range(H):
        df = long_frame(Y, weeks, o + k)
        fc = StatsForecast(models=sf_models(), freq="7D", n_jobs=1).forecast(h=1, df=df)
        fc = fc.reset_index() if "unique_id" not in fc.columns else fc
        for name in out:
            out[name][fc.unique_id.to_numpy(), k] = fc[name].to_numpy()
    return out


def score(y: np.ndarray, f: np.ndarray, rows: np.ndarray) -> dict[str, float]:
    yy, ff = y[rows], np.nan_to_num(f[rows], nan=0.0)  # a series a model could not fit: 0
    ff = np.clip(ff, 0, None)
    return {
        "wape": float(np.abs(yy - ff).sum() / yy.sum()),
        "bias": float((ff - yy).sum() / yy.sum()),
    }


# ---------------------------------------------------------------------------------------------
# Data observations.


def shape(Y: np.ndarray, weeks: pd.DatetimeIndex, o: int, n_orders: int) -> dict:
    on = ~np.isnan(Y)
    train, hold = on.copy(), on.copy()
    train[:, o + 1 :] = False
    hold[:, : o + 1] = False
    out: dict[str, Any] = {
        "variants": int(Y.shape[0]),
        "weeks": len(weeks),
        "first_week": str(weeks[0].date()),
        "last_week": str(weeks[-1].date()),
        "origin": str(weeks[o].date()),
        "orders": int(n_orders),
        "variant_weeks": int(on.sum()),
        "zero_share": float((Y[on] == 0).mean()),
        "zero_share_train": float((Y[train] == 0).mean()),
        "zero_share_holdout": float((Y[hold] == 0).mean()),
        "mean_weekly_units": float(np.nanmean(Y)),
        "median_weekly_units": float(np.nanmedian(Y)),
    }
    # Syntetos-Boylan classes on the training weeks (ADI = weeks per non-zero week, CV^2 of sizes).
    classes = {"smooth": 0, "erratic": 0, "intermittent": 0, "lumpy": 0}
    for i in range(Y.shape[0]):
        y = Y[i, : o + 1]
        y = y[~np.isnan(y)]
        nz = y[y > 0]
        if len(nz) < 2:
            classes["lumpy"] += 1
            continue
        adi, cv2 = len(y) / len(nz), (nz.std() / nz.mean()) ** 2
        key = (
            ("smooth" if cv2 < 0.49 else "erratic")
            if adi < 1.32
            else ("intermittent" if cv2 < 0.49 else "lumpy")
        )
        classes[key] += 1
    out["sbc_classes_train"] = classes
    return out


def promo_observations(
    folder: Path, index: pd.Index, weeks: pd.DatetimeIndex, o: int
) -> tuple[dict, np.ndarray | None]:
    path = folder / "extra" / "variant_weeks.csv"
    if not path.exists():
        return {}, None
    vw = pd.read_csv(path, parse_dates=["week"])
    vw["featured"] = ((vw.display > 0) | (vw.mailer > 0)).astype(int)
    F = (
        vw.pivot(index="variant_id", columns="week", values="featured")
        .reindex(index=index, columns=weeks)
        .fillna(0)
        .to_numpy()
    )
    tr = vw[vw.week <= weeks[o]]
    out: dict[str, Any] = {
        "featured_share": float(vw.featured.mean()),
        "display_share": float((vw.display > 0).mean()),
        "mailer_share": float((vw.mailer > 0).mean()),
        "promo_units_share": float(vw.promo_units.sum() / vw.units.sum()),
    }

    def uplift(flag: pd.Series) -> dict:
        g = (
            tr.assign(flag=flag.loc[tr.index])
            .groupby(["variant_id", "flag"])
            .units.agg(["mean", "size"])
            .unstack()
        )
        ok = (g[("size", 1)] >= 4) & (g[("size", 0)] >= 4) & (g[("mean", 0)] > 0)
        r = (g[("mean", 1)] / g[("mean", 0)])[ok]
        return {
            "variants": int(ok.sum()),
            "median": float(r.median()),
            "p25": float(r.quantile(0.25)),
            "p75": float(r.quantile(0.75)),
            "share_above_1": float((r > 1).mean()),
        }

    out["uplift_featured"] = uplift(vw.featured)  # mean units featured / not featured, per series
    out["uplift_display"] = uplift((vw.display > 0).astype(int))
    out["uplift_mailer_only"] = uplift(((vw.mailer > 0) & (vw.display == 0)).astype(int))
    # Price: weekly discount depth (weeks with sales only: no price is seen in a zero week).
    s = tr[tr.units > 0].copy()
    s["depth"] = 1 - s.revenue / s.regular_value
    s["rel"] = s.units / s.groupby("variant_id").units.transform("mean")
    bins = [-np.inf, 0.05, 0.15, 0.30, np.inf]
    labels = ["<5%", "5-15%", "15-30%", ">=30%"]
    s["bucket"] = pd.cut(s.depth, bins, labels=labels, right=False)
    out["units_rel_by_discount"] = {
        str(k): {"weeks": len(g), "mean_units_rel": float(g.rel.mean())}
        for k, g in s.groupby("bucket", observed=True)
    }
    # Within-series log-log slope of units on the paid price (relative to the series' median).
    s = s[s.revenue > 0].copy()  # free items (fully discounted): no log price
    s["lp"] = np.log(s.revenue / s.units)
    s["lp"] -= s.groupby("variant_id").lp.transform("median")
    s["lu"] = np.log(s.units)
    d = s[["lp", "lu"]] - s.groupby("variant_id")[["lp", "lu"]].transform("mean")
    out["price_elasticity_within"] = float((d.lp * d.lu).sum() / (d.lp**2).sum())
    return out, F


# ---------------------------------------------------------------------------------------------


def run(folder: Path, H: int, use_sf: bool) -> dict:
    t0 = time.time()
    demand = weekly_demand(folder)
    weeks = pd.DatetimeIndex(demand.columns)
    Y = demand.to_numpy()
    T = Y.shape[1]
    if T <= H + 1:
        sys.exit(f"{T} weeks: too few for a {H}-week hold-out")
    o = T - H - 1
    targets = list(range(o + 1, T))
    n_orders = len(read_table(folder, "orders"))
    report: dict[str, Any] = {"data": shape(Y, weeks, o, n_orders)}
    promo, F = promo_observations(folder, demand.index, weeks, o)
    if promo:
        report["promotions"] = promo

    warm = np.nansum(Y[:, : o + 1], axis=1) > 0
    yh = Y[:, targets]
    rows = (~np.isnan(yh)) & warm[:, None]
    report["data"]["holdout_rows"] = int(rows.sum())

    one = simple_forecasts(Y, o, targets)
    roll: dict[str, np.ndarray] = {}
    for k, t in enumerate(targets):
        for name, f in simple_forecasts(Y, t - 1, [t]).items():
            roll.setdefault(name, np.full(yh.shape, np.nan))[:, k] = f[:, 0]
    if F is not None:
        one["median_13_promo*"] = promo_forecast(Y, F, o, targets)
        roll["median_13_promo*"] = np.concatenate(
            [promo_forecast(Y, F, t - 1, [t]) for t in targets], axis=1
        )
    if use_sf:
        t1 = time.time()
        one.update(sf_one_origin(Y, weeks, o, H))
        roll.update(sf_rolling(Y, weeks, o, H))
        report["statsforecast_seconds"] = round(time.time() - t1, 1)

    order = [
        "last_value",
        "seasonal_naive",
        "moving_median_13",
        "moving_mean_13",
        "moving_mean_4",
        "croston_opt",
        "tsb",
        "imapa",
        "autoets",
        "median_13_promo*",
    ]
    table: dict[str, dict[str, Any]] = {}
    for name in order:
        if name in one or name in roll:
            table[name] = {
                "one_origin": score(yh, one[name], rows) if name in one else None,
                "rolling_h1": score(yh, roll[name], rows) if name in roll else None,
            }
    if "seasonal_naive" not in table:
        table["seasonal_naive"] = {
            "one_origin": None,
            "rolling_h1": None,
            "note": "n/a: no hold-out week has data 52 weeks before",
        }
    report["baselines"] = table
    plain = {k: v for k, v in table.items() if not k.endswith("*") and v["one_origin"]}
    best = min(plain, key=lambda k: plain[k]["one_origin"]["wape"])
    report["best_baseline"] = {
        "name": best,
        "wape": plain[best]["one_origin"]["wape"],
        "target_wape_0.9x": 0.9 * plain[best]["one_origin"]["wape"],
    }
    report["seconds"] = round(time.time() - t0, 1)
    return report


def print_report(r: dict) -> None:
    d = r["data"]
    print(
        f"data: {d['variants']} variants, {d['weeks']} weeks ({d['first_week']} .. "
        f"{d['last_week']}), {d['orders']} orders, {d['variant_weeks']} variant-weeks on sale"
    )
    print(
        f"  zero weeks after launch: {d['zero_share']:.1%} (train {d['zero_share_train']:.1%}, "
        f"hold-out {d['zero_share_holdout']:.1%}); weekly units mean "
        f"{d['mean_weekly_units']:.2f}, median {d['median_weekly_units']:.0f}"
    )
    print(f"  Syntetos-Boylan classes (training weeks): {d['sbc_classes_train']}")
    if "promotions" in r:
        p = r["promotions"]
        print(
            f"  featured (display or mailer) variant-weeks {p['featured_share']:.1%} "
            f"(display {p['display_share']:.1%}, mailer {p['mailer_share']:.1%}); units on "
            f"promo=1 orders {p['promo_units_share']:.1%}"
        )
        for k in ("uplift_featured", "uplift_display", "uplift_mailer_only"):
            u = p[k]
            print(
                f"  {k}: median {u['median']:.2f} (IQR {u['p25']:.2f}-{u['p75']:.2f}, "
                f"{u['share_above_1']:.0%} of {u['variants']} series > 1)"
            )
        by = ", ".join(
            f"{k}: {v['mean_units_rel']:.2f} ({v['weeks']} wk)"
            for k, v in p["units_rel_by_discount"].items()
        )
        print(f"  units / series mean by weekly discount depth: {by}")
        print(f"  within-series log-log price slope: {p['price_elasticity_within']:.2f}")
    print(f"\nhold-out: {d['holdout_rows']} rows (variant x week) after origin {d['origin']}")
    print(f"{'method':<20} {'WAPE 1-origin':>14} {'bias':>7} {'WAPE rolling h=1':>17} {'bias':>7}")
    for name, v in r["baselines"].items():
        cells = []
        for key in ("one_origin", "rolling_h1"):
            s = v.get(key)
            cells += [f"{s['wape']:.3f}", f"{s['bias']:+.3f}"] if s else ["n/a", ""]
        print(f"{name:<20} {cells[0]:>14} {cells[1]:>7} {cells[2]:>17} {cells[3]:>7}")
    b = r["best_baseline"]
    print(
        f"\nbest baseline (one origin): {b['name']} WAPE {b['wape']:.3f}; "
        f"the model must reach <= {b['target_wape_0.9x']:.3f}"
    )
    if any(k.endswith("*") for k in r["baselines"]):
        print(
            "* uses the known-future promotion calendar from extra/ (a reference, not a baseline)"
        )
    print(f"({r['seconds']} s)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("dir", type=Path)
    ap.add_argument("--holdout-weeks", type=int, default=13)
    ap.add_argument("--no-statsforecast", dest="sf", action="store_false")
    ap.add_argument("--json", type=Path, help="also write the report as JSON")
    args = ap.parse_args(argv)
    os.environ.setdefault("NIXTLA_ID_AS_COL", "1")
    report = run(args.dir, args.holdout_weeks, args.sf)
    print_report(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
