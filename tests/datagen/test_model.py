"""The generative model: deterministic, consistent with its ground truth, learnable."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from services import cli
from services.datagen import PRESETS, Dataset, World, build_dataset, commands


def weekly_units(ds: Dataset) -> pd.Series:
    o = ds.tables["orders"]
    week = o["order_date"] - pd.to_timedelta(o["order_date"].dt.dayofweek, unit="D")
    return o.assign(week=week).groupby(["variant_id", "week"])["quantity"].sum()


def line_weeks(ds: Dataset) -> pd.DataFrame:
    """Per (line_id, week): the hours worked (processing, variant setups, changeovers) and the
    regular capacity."""
    p, c = ds.tables["production"], ds.tables["changeovers"]
    monday = lambda d: d - pd.to_timedelta(d.dt.dayofweek, unit="D")  # noqa: E731
    runs = (
        p.assign(week=monday(p["date"]), h=p["hours"] + p["setup_hours"])
        .groupby(["line_id", "week"])["h"]
        .sum()
    )
    co = c.assign(week=monday(c["date"])).groupby(["line_id", "week"])["hours"].sum()
    out = pd.DataFrame({"runs": runs, "changeovers": co}).fillna(0.0)
    cap = ds.tables["lines"].set_index("line_id")["capacity_hours"]
    out["capacity"] = cap.reindex(out.index.get_level_values("line_id")).to_numpy()
    out["load"] = out["runs"] + out["changeovers"]
    return out


def regular_time_records(ds: Dataset) -> pd.DataFrame:
    p = ds.tables["production"]
    lw = line_weeks(ds)
    week = p["date"] - pd.to_timedelta(p["date"].dt.dayofweek, unit="D")
    load = lw.loc[list(zip(p["line_id"], week, strict=True))]
    return p[(load["load"] <= load["capacity"] * 0.999).to_numpy()]


def test_same_seed_same_data_other_seed_other_data(tiny_world: World) -> None:
    a = build_dataset(tiny_world)
    b = build_dataset(World(PRESETS["tiny"], 3))
    c = build_dataset(World(PRESETS["tiny"], 4))
    for name in a.tables:
        pd.testing.assert_frame_equal(a.tables[name], b.tables[name])
    for name in a.truth:
        pd.testing.assert_frame_equal(a.truth[name], b.truth[name])
    assert a.params == b.params
    assert not a.tables["orders"]["quantity"].equals(c.tables["orders"]["quantity"])
    assert set(a.tables["variants"]["variant_id"]) != set(c.tables["variants"]["variant_id"])


def test_realised_demand_matches_the_true_mean(small_world: World, small: Dataset) -> None:
    truth = small.truth["expected_demand"].set_index(["variant_id", "week"])["mean"]
    end = pd.Timestamp(small_world.preset.end_week)
    hist = truth[truth.index.get_level_values("week") <= end]
    real = weekly_units(small).reindex(hist.index, fill_value=0)
    assert real.sum() == pytest.approx(hist.sum(), rel=0.03)
    per_variant = pd.DataFrame({"real": real, "mean": hist}).groupby(level=0).mean()
    assert np.corrcoef(per_variant["real"], per_variant["mean"])[0, 1] > 0.95
    # over-dispersed: the variance around the mean exceeds Poisson's
    resid = (real - hist)[hist > 3]
    assert (resid**2).mean() > 1.3 * hist[hist > 3].mean()
    future = truth[truth.index.get_level_values("week") > end]
    weeks = future.index.get_level_values("week").unique()
    assert len(weeks) >= 26 and future.gt(0).all()


def test_cold_start_variants_first_sell_in_the_last_weeks(
    small_world: World, small: Dataset
) -> None:
    variants = small.tables["variants"].set_index("variant_id")
    end = pd.Timestamp(small_world.preset.end_week)
    cold = variants.index[variants["launch_date"] > end - pd.Timedelta(weeks=12)]
    assert len(cold) >= 5
    first_sale = small.tables["orders"].groupby("variant_id")["order_date"].min()
    sold = first_sale.reindex(cold).dropna()
    assert len(sold) >= 0.8 * len(cold)
    assert (sold >= variants.loc[sold.index, "launch_date"]).all()
    assert (sold > end - pd.Timedelta(weeks=13)).all()


def test_standard_shift_is_in_history() -> None:
    world = World(PRESETS["standard"], 2)
    p = world.preset
    linen = world.catalog.attrs["fabric"] == p.shift_fabric
    before, after = np.arange(p.shift_week - 20, p.shift_week), np.arange(p.shift_week + 5, 104)
    mu_b, mu_a = world.expected_demand(before), world.expected_demand(after)
    share_b = mu_b[linen].sum() / mu_b.sum()
    share_a = mu_a[linen].sum() / mu_a.sum()
    assert share_a > 1.25 * share_b
    trend, _ = world.market(np.concatenate([before, after]))
    shirts = [f.family_id for f in world.catalog.families].index("SHR")
    assert trend[shirts, 20:].mean() > 1.1 * trend[shirts, :20].mean()


def test_small_shift_comes_ten_weeks_after_history(small_world: World) -> None:
    n = small_world.n_weeks
    linen = np.flatnonzero(small_world.catalog.attrs["fabric"] == "linen")
    assert small_world.ramp(np.arange(n)).max() == 0.0
    assert small_world.ramp(np.array([n + 9, n + 13])).tolist() == [0.0, 1.0]
    mu = small_world.expected_demand(np.array([n + 8, n + 14]), variants=linen).sum(axis=0)
    others = small_world.expected_demand(np.array([n + 8, n + 14])).sum(axis=0) - mu
    assert mu[1] / mu[0] > 1.5 * others[1] / others[0]


def test_production_records_reveal_the_true_unit_cost(small: Dataset) -> None:
    prod = small.tables["production"]
    truth = small.truth["unit_cost"].set_index(["variant_id", "line_id"])
    t = truth.loc[list(zip(prod["variant_id"], prod["line_id"], strict=True))]
    hours_err = prod["hours"].to_numpy() / prod["quantity"] / t["hours_per_unit"].to_numpy() - 1
    assert 0.01 < np.std(hours_err) < 0.04 and abs(np.mean(hours_err)) < 0.01
    # cost: the run's fixed part and the overtime premium on top of c q (tests/datagen/
    # test_shopfloor.py checks the whole formula); in weeks below capacity it is F + c q
    regular = regular_time_records(small)
    t = truth.loc[list(zip(regular["variant_id"], regular["line_id"], strict=True))]
    expected = t["run_cost"].to_numpy() + t["unit_cost"].to_numpy() * regular["quantity"]
    cost_err = regular["cost"].to_numpy() / expected - 1
    assert len(regular) > 1000
    assert 0.01 < np.std(cost_err) < 0.04 and abs(np.mean(cost_err)) < 0.01
    # the cost function depends on the line and on attributes, not only on the family
    wide = truth["unit_cost"].unstack("line_id")
    assert wide.notna().sum(axis=1).ge(2).all()
    assert wide.std().min() > 1.0


def test_lines_are_loaded_75_to_90_percent(small: Dataset) -> None:
    prod = small.tables["production"]
    lines = small.tables["lines"].set_index("line_id")
    recent = prod[prod["date"] > prod["date"].max() - pd.Timedelta(weeks=52)]
    load = recent.groupby("line_id")["hours"].sum() / 52 / lines["capacity_hours"]
    assert load.between(0.7, 0.95).all(), load.to_dict()


def test_world_realises_one_more_week(small_world: World, small: Dataset) -> None:
    week = small_world.n_weeks  # the first week after history
    a = small_world.realise_week(week, seed=7)
    b = small_world.realise_week(week, seed=7)
    pd.testing.assert_frame_equal(a.orders, b.orders)
    monday = pd.Timestamp(small_world.week_date(np.array([week]))[0])
    assert a.orders["order_date"].between(monday, monday + pd.Timedelta(days=6)).all()
    assert not set(a.orders["order_id"]) & set(small.tables["orders"]["order_id"])
    mean = small_world.expected_demand(np.array([week])).sum()
    assert a.orders["quantity"].sum() == pytest.approx(mean, rel=0.2)
    assert len(a.market) == len(small_world.catalog.families)
    v = np.array([0, 1])
    prod = small_world.realise_production(
        v, np.array([small_world.catalog.eligible[small_world.catalog.family[0]].argmax()] * 2),
        np.array([week, week]), np.array([10, 5]), np.random.default_rng(0),
    )  # fmt: skip
    assert prod["quantity"].tolist() == [10, 5] and (prod["hours"] > 0).all()


def test_cli_prints_counts_and_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # only this package's commands: other packages' half-built commands must not break this test
    monkeypatch.setattr(cli, "_register_all", lambda: commands.register(cli.app))
    cli.main(["datagen", "--preset", "tiny", "--seed", "2", "--out", str(tmp_path / "a")])
    text = capsys.readouterr().out
    assert "orders" in text and "truth/expected_demand" in text
    cli.main(["--json", "datagen", "--preset", "tiny", "--seed", "2", "--out", str(tmp_path / "b")])
    summary = json.loads(capsys.readouterr().out)
    orders = pd.read_csv(tmp_path / "b" / "orders.csv")
    assert summary["counts"]["orders"] == len(orders) > 0
    assert summary["facts"]["shift"].startswith("linen from ")
    last_day = (pd.Timestamp(summary["end_week"]) + pd.Timedelta(days=6)).date().isoformat()
    firm = (orders["kind"] == "custom") & (orders["due_date"] > last_day)
    assert summary["facts"]["firm_custom_orders_due_after_history"] == firm.sum()
    with pytest.raises(SystemExit) as exc:
        cli.main(["datagen", "--preset", "nope", "--out", str(tmp_path / "c")])
    assert exc.value.code == 2
    assert capsys.readouterr().err.strip().startswith("error: preset: unknown preset")


def test_production_of_a_plan_by_ids(small_world: World) -> None:
    cat = small_world.catalog
    line = cat.lines[int(cat.eligible[cat.family[0]].argmax())].line_id
    week = pd.Timestamp(small_world.week_date(np.array([small_world.n_weeks]))[0])
    plan = pd.DataFrame(
        {"variant_id": [cat.variant_id[0]] * 2, "line_id": [line] * 2,
         "week": [week + pd.Timedelta(days=2), week], "quantity": [400, 0]}
    )  # fmt: skip
    rec = small_world.realise_production_table(plan, np.random.default_rng(1))
    assert len(rec) == 1 and rec["date"].iloc[0] >= week
    truth = (
        cat.unit_cost_table().set_index(["variant_id", "line_id"]).loc[(cat.variant_id[0], line)]
    )
    assert rec["hours"].iloc[0] / 400 == pytest.approx(truth["hours_per_unit"], rel=0.1)
    with pytest.raises(ValueError, match="unknown"):
        small_world.realise_production_table(plan.assign(line_id="L9"), np.random.default_rng(1))


def test_presets_have_their_documented_sizes() -> None:
    totals = {}
    for name in ("standard", "large"):
        world = World(PRESETS[name], 1)
        mu = world.expected_demand(np.arange(world.n_weeks))
        totals[name] = mu.sum()
        on_sale = (world.catalog.launch_week <= 0).sum()
        assert len(world.catalog.lines) == {"standard": 4, "large": 5}[name]
        if name == "large":
            assert on_sale >= 1000
    assert totals["standard"] > 140_000  # about 1.4 units per order row: > 100k order rows
    assert totals["large"] > 10.5 * totals["standard"]


def test_world_is_recovered_from_a_data_set_folder(tiny_csv: Path) -> None:
    world = World.from_dataset(tiny_csv)
    truth = pd.read_csv(tiny_csv / "truth" / "expected_demand.csv")
    first = truth.iloc[0]
    i = int(np.flatnonzero(world.catalog.variant_id == first["variant_id"])[0])
    t = int(world.week_index(np.array([first["week"]], dtype="datetime64[D]"))[0])
    assert world.expected_demand(np.array([t]), variants=np.array([i]))[0, 0] == pytest.approx(
        first["mean"], abs=1e-4
    )


def test_no_customers_give_no_identities() -> None:
    from services.datagen.orders import customer_identity

    ids, names, emails = customer_identity(np.array([], dtype=np.int64))
    assert len(ids) == len(names) == len(emails) == 0
