"""The shop floor's economics: lot-size costs, variant setups, family changeovers, overtime.

The true structure (docs/synthetic-data.md, *Setups, lot sizes and overtime*):

* a **run** is one (variant i, line l, week t) lot of ``q`` good units; it costs
  ``F_il + c_il q`` plus an overtime premium, where ``c_il`` is the catalog's unit cost and
  ``F_il`` a fixed cost per run (the variant setup, first-piece checks), so the unit cost
  ``c_il + F_il / q`` falls with the lot size;
* before each run the line spends ``s_il`` hours on the variant (minor) setup;
* the first run of a family f on a line in a week needs a family (major) changeover of ``S_fl``
  hours costing ``G_fl``;
* in a week where the line's hours ``H`` (processing + variant setups + changeovers) exceed its
  regular capacity ``K``, the overtime share ``o = (H - K) / H`` of every run's hours (processing
  and its setup) is paid the line's ``overtime_cost_per_hour`` on top.

:func:`draw_setups` draws the parameters (stream ``[seed, 5]``); :func:`realise` turns runs into
``production`` records (with their ``setup_hours``) and ``changeovers`` records;
:func:`expected_week_cost` is the true expected cost of one week's production matrix.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from services.datagen.catalog import Catalog
from services.datagen.orders import sequence_ids
from services.datagen.templates import (
    CHANGEOVER_CREW,
    CHANGEOVER_FIXED,
    FAMILY_CHANGEOVER_HOURS,
    OPTION_SETUP_UPLIFT,
    OVERTIME_PREMIUM,
)

HOURS_NOISE = 0.025  # log-normal noise of recorded processing hours
COST_NOISE = 0.02  # log-normal noise of recorded cost
FAMILY_FACTOR_RANGE = (0.8, 1.25)  # per family: its run cost and variant setup hours vs the line's
PAIR_SIGMA = 0.2  # log-normal spread of the changeover hours per (family, line) around the standard
SETUP_HOURS_NOISE = 0.10  # log-normal noise of recorded variant setup hours
CHANGEOVER_HOURS_NOISE = 0.10  # ... of recorded changeover hours
CHANGEOVER_COST_NOISE = 0.05  # ... of recorded changeover cost


@dataclass(frozen=True)
class SetupTruth:
    """True setup and lot-size parameters (nan where the line is not eligible)."""

    run_cost: np.ndarray  # [V, L] F: EUR per run
    setup_hours: np.ndarray  # [V, L] s: variant setup hours per run
    family_hours: np.ndarray  # [F, L] S: changeover hours
    family_cost: np.ndarray  # [F, L] G: changeover EUR
    standard_hours: np.ndarray  # [F, L] the plant's standard (the family_setups table)
    standard_cost: np.ndarray  # [F, L]
    cost_factor: np.ndarray  # [F] phi_f
    hours_factor: np.ndarray  # [F] eta_f
    overtime_cost: np.ndarray  # [L] EUR premium per overtime hour


def draw_setups(cat: Catalog, rng: np.random.Generator) -> SetupTruth:
    """The setup parameters of ``cat``'s plant (see the module docstring)."""
    n_f, n_l = len(cat.families), len(cat.lines)
    speed = np.array([ln.speed for ln in cat.lines])
    wage = np.array([ln.wage for ln in cat.lines])
    line_cost = np.array([ln.setup_cost for ln in cat.lines])
    line_hours = np.array([ln.setup_hours for ln in cat.lines])
    phi = rng.uniform(*FAMILY_FACTOR_RANGE, n_f)
    eta = rng.uniform(*FAMILY_FACTOR_RANGE, n_f)
    pair = np.exp(rng.normal(0.0, PAIR_SIGMA, (n_f, n_l)))
    base = np.array([FAMILY_CHANGEOVER_HOURS[f.family_id] for f in cat.families])
    std_hours = np.round(base[:, None] * speed[None, :] * 2) / 2
    std_cost = np.round(CHANGEOVER_CREW * wage[None, :] * std_hours + CHANGEOVER_FIXED, -1)
    hours = base[:, None] * speed[None, :] * pair
    cost = CHANGEOVER_CREW * wage[None, :] * hours + CHANGEOVER_FIXED
    not_eligible = ~cat.eligible
    for a in (std_hours, std_cost, hours, cost):
        a[not_eligible] = np.nan
    option = (cat.attrs["option"] != "none").astype(float)
    per_variant = phi[cat.family] * (1.0 + OPTION_SETUP_UPLIFT * option)
    run_cost = line_cost[None, :] * per_variant[:, None]
    setup_hours = np.broadcast_to(line_hours[None, :] * eta[cat.family][:, None], run_cost.shape)
    v_not = ~cat.eligible[cat.family]
    run_cost = np.where(v_not, np.nan, run_cost)
    setup_hours = np.where(v_not, np.nan, setup_hours)
    return SetupTruth(
        run_cost=run_cost,
        setup_hours=setup_hours,
        family_hours=hours,
        family_cost=cost,
        standard_hours=std_hours,
        standard_cost=std_cost,
        cost_factor=phi,
        hours_factor=eta,
        overtime_cost=OVERTIME_PREMIUM * wage,
    )


@dataclass(frozen=True)
class ShopFloor:
    """What the plant recorded for a set of runs."""

    production: pd.DataFrame  # the production table (with setup_hours)
    changeovers: pd.DataFrame  # the changeovers table


def realise(
    cat: Catalog,
    truth: SetupTruth,
    capacity: np.ndarray,
    start: np.datetime64,
    variant: np.ndarray,
    line: np.ndarray,
    week: np.ndarray,
    quantity: np.ndarray,
    rng: np.random.Generator,
) -> ShopFloor:
    """Records of the runs (variant, line index, week index, good quantity), sorted by week.

    ``start`` is the Monday of week 0, ``capacity`` [L] the lines' regular hours per week.
    The overtime premium of a (line, week) is computed over the runs given in this call: give a
    whole week's production at once. Draws from ``rng`` exactly what earlier versions drew
    (dates, hours, cost noise, scrap), and the rest from a child of it.
    """
    n = len(variant)
    hpu = cat.hours[variant, line]
    if np.isnan(hpu).any():
        raise ValueError("production on a line that is not eligible for the family")
    q = quantity.astype(np.int64)
    line_ids = np.array([ln.line_id for ln in cat.lines], dtype=object)
    day = rng.integers(0, 5, n)
    hours = hpu * q * np.exp(rng.normal(0, HOURS_NOISE, n))
    cost_noise = np.exp(rng.normal(0, COST_NOISE, n))
    scrap = rng.binomial(q, cat.scrap_rate[variant])
    child = rng.spawn(1)[0]
    setup = truth.setup_hours[variant, line] * np.exp(child.normal(0, SETUP_HOURS_NOISE, n))

    # family changeovers: one per (line, family, week) with a run
    fam = cat.family[variant]
    n_l, n_f = len(cat.lines), len(cat.families)
    co_key = np.unique((week * n_l + line) * n_f + fam) if n else np.zeros(0, np.int64)
    co_lw, co_f = np.divmod(co_key, n_f)
    co_w, co_l = np.divmod(co_lw, n_l)
    k = len(co_key)
    co_hours = truth.family_hours[co_f, co_l] * np.exp(child.normal(0, CHANGEOVER_HOURS_NOISE, k))
    co_cost = truth.family_cost[co_f, co_l] * np.exp(child.normal(0, CHANGEOVER_COST_NOISE, k))
    co_day = child.integers(0, 5, k)

    # the line's hours per week -> overtime share
    lw = week * n_l + line
    keys, inv = np.unique(np.concatenate([lw, co_lw]), return_inverse=True)
    load = np.bincount(inv, weights=np.concatenate([hours + setup, co_hours]), minlength=len(keys))
    cap = capacity[keys % n_l]
    share = np.where(load > cap, (load - cap) / np.maximum(load, 1e-9), 0.0)
    o = share[inv[:n]]
    premium = truth.overtime_cost[line] * o * (hours + setup)
    cost = (truth.run_cost[variant, line] + cat.unit_cost[variant, line] * q + premium) * cost_noise

    monday = start + 7 * week.astype(np.int64)
    production = pd.DataFrame(
        {
            "record_id": sequence_ids("P", monday, week),
            "line_id": line_ids[line],
            "variant_id": cat.variant_id[variant],
            "date": monday + day,
            "quantity": q,
            "hours": np.round(hours, 3),
            "cost": np.round(cost, 2),
            "scrap": scrap,
            "setup_hours": np.round(setup, 3),
        }
    )
    co_monday = start + 7 * co_w.astype(np.int64)
    fam_ids = np.array([f.family_id for f in cat.families], dtype=object)
    changeovers = pd.DataFrame(
        {
            "changeover_id": sequence_ids("C", co_monday, co_w),
            "line_id": line_ids[co_l],
            "family_id": fam_ids[co_f],
            "date": co_monday + co_day,
            "hours": np.round(co_hours, 3),
            "cost": np.round(co_cost, 2),
        }
    )
    return ShopFloor(production=production, changeovers=changeovers)


def expected_week_cost(
    cat: Catalog, truth: SetupTruth, capacity: np.ndarray, made: np.ndarray
) -> dict[str, float]:
    """True expected cost (EUR, materials excluded) and hours of one week's production ``made``
    [V, L] (units; 0 = no run), by part: runs (``c q``), run fixed costs (``F``), changeovers,
    overtime premium; and the hours (processing, variant setups, changeovers, overtime)."""
    made = np.rint(np.maximum(np.asarray(made, dtype=float), 0.0))
    ran = made > 0
    if np.isnan(np.where(ran, cat.unit_cost, 0.0)).any():
        raise ValueError("production on a line that is not eligible for the variant")
    n_f = len(cat.families)
    proc = np.where(ran, np.nan_to_num(cat.hours) * made, 0.0).sum(axis=0)  # [L]
    minor = np.where(ran, np.nan_to_num(truth.setup_hours), 0.0).sum(axis=0)
    fam_ran = np.zeros((n_f, made.shape[1]), dtype=bool)
    np.logical_or.at(fam_ran, cat.family, ran)
    major = np.where(fam_ran, np.nan_to_num(truth.family_hours), 0.0).sum(axis=0)
    load = proc + minor + major
    share = np.where(load > capacity, (load - capacity) / np.maximum(load, 1e-9), 0.0)
    return {
        "variable": float(np.where(ran, np.nan_to_num(cat.unit_cost) * made, 0.0).sum()),
        "run_fixed": float(np.where(ran, np.nan_to_num(truth.run_cost), 0.0).sum()),
        "changeover": float(np.where(fam_ran, np.nan_to_num(truth.family_cost), 0.0).sum()),
        "overtime_premium": float((truth.overtime_cost * share * (proc + minor)).sum()),
        "processing_hours": float(proc.sum()),
        "setup_hours": float(minor.sum()),
        "changeover_hours": float(major.sum()),
        "overtime_hours": float(np.maximum(load - capacity, 0.0).sum()),
        "changeovers": int(fam_ran.sum()),
        "runs": int(ran.sum()),
    }
