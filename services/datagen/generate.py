"""Build a whole synthetic data set from a :class:`World` and write it in the ingest format.

:func:`build_dataset` returns the tables (columns exactly as docs/data-format.md) and the ground
truth as DataFrames; :func:`generate` writes them to a folder (CSV or Parquet) and returns a
:class:`DatasetSummary`.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from services.common.errors import InvalidArgument
from services.datagen import orders as od
from services.datagen import shopfloor as sf
from services.datagen import templates as tp
from services.datagen import world as wd
from services.datagen.presets import Preset, get_preset
from services.datagen.world import World

#: Every table ``datagen`` writes, with its columns in the order of docs/data-format.md.
TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "families": ("family_id", "name", "category", "base_price"),
    "family_attributes": ("family_id", "attribute", "value"),
    "variants": (
        "variant_id",
        "family_id",
        "list_price",
        "launch_date",
        *(f"attr_{a}" for a in tp.ATTRIBUTES),
    ),
    "lines": (
        "line_id",
        "name",
        "capacity_hours",
        "setup_hours",
        "setup_cost",
        "overtime_hours_max",
        "overtime_cost_per_hour",
    ),
    "line_eligibility": ("line_id", "family_id"),
    "family_setups": ("line_id", "family_id", "setup_hours", "setup_cost"),
    "materials": ("material_id", "name", "unit", "unit_cost", "stock", "lead_time_weeks"),
    "bom": ("family_id", "material_id", "quantity_per_unit", "condition"),
    "orders": (
        "order_id",
        "customer_id",
        "customer_name",
        "customer_email",
        "variant_id",
        "quantity",
        "unit_price",
        "order_date",
        "due_date",
        "kind",
        "promo",
    ),
    "production": (
        "record_id",
        "line_id",
        "variant_id",
        "date",
        "quantity",
        "hours",
        "cost",
        "scrap",
        "setup_hours",
    ),
    "changeovers": ("changeover_id", "line_id", "family_id", "date", "hours", "cost"),
    "material_arrivals": ("arrival_id", "material_id", "date", "quantity"),
    "reviews": ("review_id", "variant_id", "customer_id", "date", "rating"),
    "market": ("week", "family_id", "price_index", "trend_index"),
    "variant_weeks": ("variant_id", "week", "price", "promo"),
}
TRUTH_COLUMNS: dict[str, tuple[str, ...]] = {
    "expected_demand": ("variant_id", "week", "mean"),
    "unit_cost": (
        "variant_id",
        "line_id",
        "unit_cost",
        "hours_per_unit",
        "run_cost",
        "setup_hours",
    ),
    "family_setups": ("line_id", "family_id", "setup_hours", "setup_cost"),
}
FORMATS = ("csv", "parquet")
PRIVATE_COLUMNS = ("customer_name", "customer_email")


@dataclass(frozen=True)
class Dataset:
    tables: dict[str, pd.DataFrame]
    truth: dict[str, pd.DataFrame]
    params: dict[str, Any]


@dataclass(frozen=True)
class DatasetSummary:
    preset: str
    seed: int
    out: str
    format: str
    start_week: str
    end_week: str
    counts: dict[str, int] = field(default_factory=dict)
    truth_counts: dict[str, int] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)  # shift, cold start, firm future orders
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _variants_table(world: World) -> pd.DataFrame:
    cat = world.catalog
    fam_ids = np.array([f.family_id for f in cat.families], dtype=object)
    out = pd.DataFrame(
        {
            "variant_id": cat.variant_id,
            "family_id": fam_ids[cat.family],
            "list_price": cat.list_price,
            "launch_date": world.week_date(cat.launch_week),
        }
    )
    for a in tp.ATTRIBUTES:
        out[f"attr_{a}"] = cat.attrs[a]
    return out


def _expected_demand_table(world: World) -> pd.DataFrame:
    p = world.preset
    weeks = np.arange(p.n_weeks + p.horizon_weeks)
    mu = world.expected_demand(weeks)
    cat = world.catalog
    vi, ti = np.nonzero(weeks[None, :] >= cat.launch_week[:, None])
    return pd.DataFrame(
        {
            "variant_id": cat.variant_id[vi],
            "week": world.week_date(weeks[ti]),
            "mean": np.round(mu[vi, ti], 5),
        }
    )


def _variant_weeks_table(world: World) -> pd.DataFrame:
    """The planned posted price and promotion of every variant and week from its launch to the
    end of the truth horizon (history: what was posted; future: list price, no promotion)."""
    p, cat = world.preset, world.catalog
    weeks = np.arange(p.n_weeks + p.horizon_weeks)
    ratio, promo = world.pricing(weeks)
    vi, ti = np.nonzero(weeks[None, :] >= cat.launch_week[:, None])
    return pd.DataFrame(
        {
            "variant_id": cat.variant_id[vi],
            "week": world.week_date(weeks[ti]),
            "price": np.round(cat.list_price[vi] * ratio[vi, ti], 2),
            "promo": promo[vi, ti].astype(np.int64),
        }
    )


def world_params(world: World) -> dict[str, Any]:
    """Everything needed to understand (and re-create) the ground truth, JSON-ready."""
    p, cat = world.preset, world.catalog
    n = p.n_weeks
    fams = {
        f.family_id: {
            "name": f.name,
            "base_price": f.base_price,
            "base_hours": f.base_hours,
            "volume": f.volume,
            "season_amplitude": f.season_amplitude,
            "season_peak_week": f.season_peak_week,
            "elasticity": f.elasticity,
            "custom_share": f.custom_share,
            "trend_per_year": round(float(world.trend[i]), 5),
            "dispersion_k": round(float(world.dispersion[i]), 4),
            "shift_share": round(float(world.shift_share[i]), 5),
            "demand_effects": cat.effects["demand"][f.family_id],
            "rating_effects": cat.effects["rating"][f.family_id],
        }
        for i, f in enumerate(cat.families)
    }
    lines = {
        ln.line_id: {
            "name": ln.name,
            "speed": ln.speed,
            "wage": ln.wage,
            "handling": ln.handling,
            "utilisation_target": ln.utilisation,
            "capacity_hours": round(float(world.capacity_hours[j]), 2),
        }
        for j, ln in enumerate(cat.lines)
    }
    launch = cat.launch_week
    fam_ids = [f.family_id for f in cat.families]
    return {
        "preset": p.name,
        "seed": world.seed,
        "preset_shape": p.to_dict(),
        "start_week": world.start_week.isoformat(),
        "end_week": p.end_week.isoformat(),
        "history_weeks": n,
        "horizon_weeks": p.horizon_weeks,
        "horizon_end_week": str(world.week_date(np.array([n + p.horizon_weeks - 1]))[0]),
        "future_assumptions": "list price, no promotions, market indices from the world's path",
        "scale": world.scale,
        "families": fams,
        "lines": lines,
        "shift": {
            "fabric": p.shift_fabric,
            "week_index": p.shift_week,
            "week": str(world.week_date(np.array([p.shift_week]))[0]),
            "multiplier": p.shift_multiplier,
            "ramp_weeks": p.shift_ramp_weeks,
            "market_lead_weeks": wd.SHIFT_MARKET_LEAD,
            "in_history": bool(p.shift_week < n),
        },
        "demand": {
            "promo_probability": wd.PROMO_P,
            "promo_discounts": wd.PROMO_DISCOUNTS.tolist(),
            "promo_uplift": wd.PROMO_UPLIFT,
            "price_jitter_sigma": wd.PRICE_JITTER_SIGMA,
            "beta_trend_index": wd.BETA_TREND,
            "beta_price_index": wd.BETA_PRICE_INDEX,
            "market_ar_phi": wd.MARKET_PHI,
            "launch_ramp": list(wd.LAUNCH_RAMP),
            "mean_weekly_demand": p.mean_weekly_demand,
        },
        "orders": {
            "stock_sizes": od.STOCK_SIZES.tolist(),
            "stock_size_p": od.STOCK_SIZE_P.tolist(),
            "custom_size": f"{od.CUSTOM_MIN_SIZE} + Poisson({od.CUSTOM_EXTRA_MEAN})",
            "custom_premium": od.CUSTOM_PREMIUM,
            "custom_due_weeks": list(od.CUSTOM_DUE_WEEKS),
            "stock_due_days": list(od.STOCK_DUE_DAYS),
            "order_discounts": od.ORDER_DISCOUNTS.tolist(),
            "order_discount_p": od.ORDER_DISCOUNT_P.tolist(),
            "customers": world.n_customers,
        },
        "production": {"hours_noise": wd.HOURS_NOISE, "cost_noise": wd.COST_NOISE},
        "setups": {
            "family_cost_factor": dict(
                zip(fam_ids, np.round(world.setups.cost_factor, 5).tolist(), strict=True)
            ),
            "family_setup_hours_factor": dict(
                zip(fam_ids, np.round(world.setups.hours_factor, 5).tolist(), strict=True)
            ),
            "option_setup_uplift": tp.OPTION_SETUP_UPLIFT,
            "changeover_base_hours": {f: tp.FAMILY_CHANGEOVER_HOURS[f] for f in fam_ids},
            "changeover_crew": tp.CHANGEOVER_CREW,
            "changeover_fixed_eur": tp.CHANGEOVER_FIXED,
            "changeover_pair_sigma": sf.PAIR_SIGMA,
            "setup_hours_noise": sf.SETUP_HOURS_NOISE,
            "changeover_hours_noise": sf.CHANGEOVER_HOURS_NOISE,
            "changeover_cost_noise": sf.CHANGEOVER_COST_NOISE,
            "overtime_premium_per_hour": {
                ln.line_id: float(x)
                for ln, x in zip(cat.lines, world.setups.overtime_cost, strict=True)
            },
        },
        "variants": {
            "total": cat.n_variants,
            "on_sale_at_start": int((launch <= 0).sum()),
            "cold_start_last_12_weeks": int((launch >= n - 12).sum()),
        },
    }


def build_dataset(world: World) -> Dataset:
    """All tables and the ground truth of ``world``'s history, as DataFrames."""
    n = world.n_weeks
    rng = np.random.default_rng([world.seed, 4])
    batch = world.realise_orders(np.arange(n), rng)
    floor = world.history_shop_floor(batch, rng)
    reviews = world.realise_reviews(batch, rng)
    last_day = world.week_date(np.array([n]))[0]  # Monday after the history
    reviews = reviews[reviews["date"] < last_day].reset_index(drop=True)
    cat = world.catalog
    materials, arrivals = world.material_tables()
    tables = {
        "families": cat.family_table(),
        "family_attributes": cat.family_attributes_table(),
        "variants": _variants_table(world),
        "lines": cat.line_table(world.capacity_hours),
        "line_eligibility": cat.eligibility_table(),
        "family_setups": world.family_setups_table(),
        "materials": materials,
        "bom": cat.bom,
        "orders": batch.table(cat.variant_id),
        "production": floor.production,
        "changeovers": floor.changeovers,
        "material_arrivals": arrivals,
        "reviews": reviews,
        "market": world.market_table(np.arange(n)),
        "variant_weeks": _variant_weeks_table(world),
    }
    tables = {k: df.loc[:, list(TABLE_COLUMNS[k])] for k, df in tables.items()}
    truth = {
        "expected_demand": _expected_demand_table(world),
        "unit_cost": world.unit_cost_table(),
        "family_setups": world.family_setups_table(truth=True),
    }
    return Dataset(tables=tables, truth=truth, params=world_params(world))


def _facts(ds: Dataset) -> dict[str, Any]:
    p = ds.params
    end = pd.Timestamp(p["end_week"])
    orders = ds.tables["orders"]
    launch = ds.tables["variants"]["launch_date"]
    return {
        "shift": f"{p['shift']['fabric']} from {p['shift']['week']}"
        + (" (in history)" if p["shift"]["in_history"] else " (after history)"),
        "cold_start_variants": int((launch > end - pd.Timedelta(weeks=12)).sum()),
        "firm_custom_orders_due_after_history": int(
            ((orders["kind"] == "custom") & (orders["due_date"] > end + pd.Timedelta(days=6))).sum()
        ),
        "truth_horizon_end": p["horizon_end_week"],
    }


def _arrow(df: pd.DataFrame) -> Any:
    """``df`` as an Arrow table with date columns as ``date32`` (ISO dates in both formats)."""
    import pyarrow as pa

    table = pa.Table.from_pandas(df, preserve_index=False)
    for i, col in enumerate(table.schema):
        if pa.types.is_timestamp(col.type):
            table = table.set_column(i, col.name, table.column(i).cast(pa.date32()))
    return table


def _write(df: pd.DataFrame, base: Path, fmt: str) -> None:
    # Arrow writes CSV ~5x faster than pandas; no value needs quoting (a comma or a quote in a
    # value would make the writer fail loudly rather than write a broken file)
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    table = _arrow(df)
    if fmt == "csv":
        options = pacsv.WriteOptions(include_header=False, quoting_style="none")
        with base.with_suffix(".csv").open("wb") as fh:
            fh.write((",".join(table.column_names) + "\n").encode())
            pacsv.write_csv(table, fh, write_options=options)
    else:
        pq.write_table(table, base.with_suffix(".parquet"))


def _prepare_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise InvalidArgument(f"{out} exists and is not a folder", field="out")
    names = [*TABLE_COLUMNS, *(f"truth/{t}" for t in TRUTH_COLUMNS)]
    existing = [
        out / f"{name}{ext}"
        for name in names
        for ext in (".csv", ".csv.gz", ".parquet")
        if (out / f"{name}{ext}").exists()
    ]
    if existing and not overwrite:
        raise InvalidArgument(
            f"{out} already holds a data set ({existing[0].name}, ...); pass --overwrite",
            field="out",
        )
    for path in existing:  # only our own table files, so no table ends up in two formats
        path.unlink()
    (out / "truth").mkdir(parents=True, exist_ok=True)


def generate(
    preset: str | Preset,
    seed: int,
    out: Path,
    fmt: str = "csv",
    *,
    overwrite: bool = False,
) -> DatasetSummary:
    """Generate the data set of (``preset``, ``seed``) into folder ``out``."""
    t0 = time.perf_counter()
    p = get_preset(preset) if isinstance(preset, str) else preset
    fmt = fmt.strip().lower()
    if fmt not in FORMATS:
        raise InvalidArgument(f"unknown format {fmt!r}; choose csv or parquet", field="format")
    if seed < 0:
        raise InvalidArgument("must be >= 0", field="seed")
    out = Path(out)
    _prepare_out(out, overwrite)
    ds = build_dataset(World(p, seed))
    for name, df in ds.tables.items():
        _write(df, out / name, fmt)
    for name, df in ds.truth.items():
        _write(df, out / "truth" / name, fmt)
    params = {**ds.params, "format": fmt}
    (out / "truth" / "params.json").write_text(json.dumps(params, indent=2, sort_keys=True))
    return DatasetSummary(
        preset=p.name,
        seed=seed,
        out=str(out),
        format=fmt,
        start_week=ds.params["start_week"],
        end_week=ds.params["end_week"],
        counts={k: len(v) for k, v in ds.tables.items()},
        truth_counts={k: len(v) for k, v in ds.truth.items()},
        facts=_facts(ds),
        seconds=round(time.perf_counter() - t0, 3),
    )
