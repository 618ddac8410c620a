"""The shop floor's true economics: lot-size costs, variant setups, family changeovers, overtime
(docs/synthetic-data.md, *Setups, lot sizes and overtime*)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from services.datagen import Dataset, World
from tests.datagen.test_model import line_weeks


def test_record_cost_is_run_cost_plus_unit_cost_plus_overtime_premium(small: Dataset) -> None:
    prod = small.tables["production"]
    truth = small.truth["unit_cost"].set_index(["variant_id", "line_id"])
    t = truth.loc[list(zip(prod["variant_id"], prod["line_id"], strict=True))]
    lw = line_weeks(small)
    week = prod["date"] - pd.to_timedelta(prod["date"].dt.dayofweek, unit="D")
    load = lw.loc[list(zip(prod["line_id"], week, strict=True))]
    share = np.maximum(0.0, 1.0 - load["capacity"].to_numpy() / load["load"].to_numpy())
    premium = small.tables["lines"].set_index("line_id")["overtime_cost_per_hour"]
    expected = (
        t["run_cost"].to_numpy()
        + t["unit_cost"].to_numpy() * prod["quantity"].to_numpy()
        + premium.loc[prod["line_id"]].to_numpy()
        * share
        * (prod["hours"] + prod["setup_hours"]).to_numpy()
    )
    err = prod["cost"].to_numpy() / expected - 1
    assert 0.01 < np.std(err) < 0.03 and abs(np.mean(err)) < 0.005
    # the lines work overtime in a good share of the weeks, so the premium can be learned
    over = lw["load"] > lw["capacity"]
    assert 0.2 < over.mean() < 0.8
    # the unit cost falls with the lot size: the run's fixed part is a large share of small lots
    unit = prod["cost"] / prod["quantity"] / t["unit_cost"].to_numpy()
    assert unit[prod["quantity"].to_numpy() == 1].median() > 3.0
    assert unit[prod["quantity"].to_numpy() >= 20].median() < 1.5
    # variant setup hours scatter around the truth
    ratio = prod["setup_hours"].to_numpy() / t["setup_hours"].to_numpy()
    assert np.exp(np.log(ratio).mean()) == pytest.approx(1.0, abs=0.01)
    assert 0.08 < np.log(ratio).std() < 0.12


def test_one_changeover_per_line_family_and_week_with_a_run(small: Dataset) -> None:
    prod, co = small.tables["production"], small.tables["changeovers"]
    fam = small.tables["variants"].set_index("variant_id")["family_id"]
    week = prod["date"] - pd.to_timedelta(prod["date"].dt.dayofweek, unit="D")
    made = set(zip(prod["line_id"], fam.loc[prod["variant_id"]], week, strict=True))
    co_week = co["date"] - pd.to_timedelta(co["date"].dt.dayofweek, unit="D")
    recorded = list(zip(co["line_id"], co["family_id"], co_week, strict=True))
    assert len(recorded) == len(set(recorded)) == len(made)
    assert set(recorded) == made
    assert co["changeover_id"].is_unique
    # their hours and cost scatter around the true means, which differ from the plant's standards
    truth = small.truth["family_setups"].set_index(["line_id", "family_id"])
    standard = small.tables["family_setups"].set_index(["line_id", "family_id"])
    geo = np.exp(np.log(co[["hours", "cost"]]).groupby([co["line_id"], co["family_id"]]).mean())
    geo = geo.loc[truth.index]
    assert (geo["hours"] / truth["setup_hours"]).between(0.97, 1.03).all()
    assert (geo["cost"] / truth["setup_cost"]).between(0.98, 1.02).all()
    off = (standard.loc[truth.index, "setup_hours"] / truth["setup_hours"] - 1).abs()
    assert off.max() > 0.15  # the standard is a rough figure: learning from records pays
    # a changeover is large next to a variant setup: several times its hours and cost
    lines = small.tables["lines"].set_index("line_id")
    per_line = truth.reset_index().merge(lines, left_on="line_id", right_index=True)
    assert (per_line["setup_hours_x"] > 2.0 * per_line["setup_hours_y"]).all()
    assert (per_line["setup_cost_x"] > 2.0 * per_line["setup_cost_y"]).all()


def test_a_larger_lot_is_cheaper_per_unit_and_overtime_dearer(small_world: World) -> None:
    cat, st = small_world.catalog, small_world.setups
    v = 0
    line = int(cat.eligible[cat.family[v]].argmax())
    week = small_world.n_weeks + 2

    def unit_cost(q: int) -> float:
        rec = small_world.realise_production(
            np.array([v]), np.array([line]), np.array([week]), np.array([q]),
            np.random.default_rng(0),
        )  # fmt: skip
        return float(rec["cost"].iloc[0]) / q

    c, f = cat.unit_cost[v, line], st.run_cost[v, line]
    assert unit_cost(3) == pytest.approx(c + f / 3, rel=0.06)
    assert unit_cost(30) == pytest.approx(c + f / 30, rel=0.06)
    assert unit_cost(3) > 1.5 * unit_cost(30)
    # a lot bigger than the line's week: overtime share o of its hours is paid the premium
    cap = small_world.capacity_hours[line]
    q = int(1.5 * cap / cat.hours[v, line])
    hours = cat.hours[v, line] * q + st.setup_hours[v, line] + st.family_hours[cat.family[v], line]
    o = (hours - cap) / hours
    premium = st.overtime_cost[line] * o * (cat.hours[v, line] * q + st.setup_hours[v, line])
    assert unit_cost(q) == pytest.approx(c + (f + premium) / q, rel=0.06)
    assert unit_cost(q) > 1.1 * (c + f / q)


def test_expected_week_cost_prices_a_plan_under_the_truth(small_world: World) -> None:
    cat, st = small_world.catalog, small_world.setups
    made = np.zeros((cat.n_variants, len(cat.lines)))
    shirts = np.flatnonzero(cat.family == 0)[:10]
    line = int(cat.eligible[0].argmax())
    made[shirts, line] = 5
    week = small_world.expected_week_cost(made)
    assert week["runs"] == 10 and week["changeovers"] == 1
    assert week["run_fixed"] == pytest.approx(st.run_cost[shirts, line].sum())
    assert week["variable"] == pytest.approx(5 * cat.unit_cost[shirts, line].sum())
    assert week["changeover"] == pytest.approx(st.family_cost[0, line])
    assert week["overtime_premium"] == 0.0 and week["overtime_hours"] == 0.0
    # the same runs split over two weeks cost two changeovers and the same run costs
    half = made.copy()
    half[shirts[5:], line] = 0
    two = [small_world.expected_week_cost(half), small_world.expected_week_cost(made - half)]
    assert sum(w["changeover"] for w in two) == pytest.approx(2 * week["changeover"])
    assert sum(w["run_fixed"] for w in two) == pytest.approx(week["run_fixed"])
    with pytest.raises(ValueError, match="not eligible"):
        bad = np.zeros_like(made)
        bad[0, int(np.flatnonzero(~cat.eligible[cat.family[0]])[0])] = 1
        small_world.expected_week_cost(bad)


def test_shop_floor_of_a_plan_has_its_changeovers(small_world: World) -> None:
    cat = small_world.catalog
    line = cat.lines[int(cat.eligible[cat.family[0]].argmax())].line_id
    week = small_world.n_weeks
    shirts = cat.variant_id[cat.family == 0][:3]
    plan = pd.DataFrame({"variant_id": shirts, "line_id": line, "week": week, "quantity": 4})
    floor = small_world.realise_shop_floor_table(plan, np.random.default_rng(3))
    assert len(floor.production) == 3 and len(floor.changeovers) == 1
    assert floor.changeovers["family_id"].tolist() == [cat.families[0].family_id]
    again = small_world.realise_shop_floor_table(plan, np.random.default_rng(3))
    pd.testing.assert_frame_equal(floor.production, again.production)
    pd.testing.assert_frame_equal(floor.changeovers, again.changeovers)
