"""Master data of the synthetic manufacturer: families, variants, lines, materials and the BOM.

:func:`build_catalog` draws, for one preset and seed, which configurations exist, when they launch,
how much each attribute value adds to demand and to ratings, and evaluates the true processing
hours and unit cost per (variant, line). The result is a frozen :class:`Catalog` of numpy arrays
(one entry per variant) plus the master-data tables in the format of docs/data-format.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from services.datagen.presets import Preset
from services.datagen.templates import (
    ATTRIBUTES,
    FABRICS,
    FAMILIES,
    FITS,
    LINES,
    OPTIONS,
    OVERTIME_PREMIUM,
    OVERTIME_SHARE,
    SIZES,
    TRIMS,
    FamilyTemplate,
    LineTemplate,
)

#: log-normal spread of the random demand effect of each attribute's values
EFFECT_SIGMA = {"fabric": 0.35, "colour": 0.30, "fit": 0.20, "size": 0.05}
OPTION_EFFECT_MEDIAN = 0.45  # a non-"none" option is bought ~0.45x as often as "none"
OPTION_EFFECT_SIGMA = 0.25
QUALITY_DEMAND = 0.15  # demand factor exp(QUALITY_DEMAND * q), q ~ N(0, 1) per variant
RATING_BASE = 3.9
RATING_SIGMA = {"fabric": 0.20, "fit": 0.20}
RATING_OPTION = 0.10  # any option above "none" adds this to the mean rating
RATING_QUALITY = 0.30
PRIMARY_ROUTING = 0.65  # share of a family's history production on its first eligible line
HOOD_FABRIC = 0.5  # extra metres of shell fabric for a hood


@dataclass(frozen=True)
class Catalog:
    """Everything about the product range and the plant that does not change week to week."""

    families: tuple[FamilyTemplate, ...]
    lines: tuple[LineTemplate, ...]
    eligible: np.ndarray  # bool [F, L]
    routing: np.ndarray  # [F, L] share of a family's production routed to each line in history
    variant_id: np.ndarray  # str [V]
    family: np.ndarray  # int [V] index into families
    attrs: dict[str, np.ndarray]  # attribute -> str [V]
    launch_week: np.ndarray  # int [V], week index (0 = first week of history; < 0 = earlier)
    list_price: np.ndarray  # [V] EUR
    effect: np.ndarray  # [V] family volume x attribute effects x quality factor
    quality: np.ndarray  # [V] latent quality q ~ N(0, 1)
    rating_mean: np.ndarray  # [V] mean of the latent rating
    hours: np.ndarray  # [V, L] true processing hours per unit (nan where not eligible)
    unit_cost: np.ndarray  # [V, L] true variable cost per unit (nan where not eligible)
    scrap_rate: np.ndarray  # [V]
    material_ids: tuple[str, ...]
    usage: np.ndarray  # [V, M] material units per product unit (from the BOM)
    bom: pd.DataFrame
    materials: pd.DataFrame  # without stock (the world fills it from expected usage)
    effects: dict[str, Any] = field(default_factory=dict)  # drawn effects, for params.json

    @property
    def n_variants(self) -> int:
        return len(self.variant_id)

    def family_table(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "family_id": [f.family_id for f in self.families],
                "name": [f.name for f in self.families],
                "category": "apparel",
                "base_price": [f.base_price for f in self.families],
            }
        )

    def family_attributes_table(self) -> pd.DataFrame:
        rows = [(f.family_id, a, v) for f in self.families for a in ATTRIBUTES for v in f.values[a]]
        return pd.DataFrame(rows, columns=["family_id", "attribute", "value"])

    def line_table(self, capacity_hours: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "line_id": [ln.line_id for ln in self.lines],
                "name": [ln.name for ln in self.lines],
                "capacity_hours": np.round(capacity_hours, 1),
                "setup_hours": [ln.setup_hours for ln in self.lines],
                "setup_cost": [ln.setup_cost for ln in self.lines],
                "overtime_hours_max": np.round(capacity_hours * OVERTIME_SHARE, 1),
                "overtime_cost_per_hour": [ln.wage * OVERTIME_PREMIUM for ln in self.lines],
            }
        )

    def eligibility_table(self) -> pd.DataFrame:
        fi, li = np.nonzero(self.eligible)
        return pd.DataFrame(
            {
                "line_id": [self.lines[j].line_id for j in li],
                "family_id": [self.families[i].family_id for i in fi],
            }
        )

    def unit_cost_table(self) -> pd.DataFrame:
        """Ground truth: cost and hours per unit for every (variant, eligible line)."""
        vi, li = np.nonzero(~np.isnan(self.hours))
        return pd.DataFrame(
            {
                "variant_id": self.variant_id[vi],
                "line_id": np.array([ln.line_id for ln in self.lines], dtype=object)[li],
                "unit_cost": np.round(self.unit_cost[vi, li], 4),
                "hours_per_unit": np.round(self.hours[vi, li], 5),
            }
        )


def _allocate(total: int, sizes: np.ndarray) -> np.ndarray:
    """Split ``total`` variants over families proportionally to their configuration counts."""
    if total > sizes.sum():
        raise ValueError(f"{total} variants requested but only {sizes.sum()} configurations exist")
    raw = total * sizes / sizes.sum()
    n = np.minimum(np.floor(raw).astype(int), sizes)
    order = np.argsort(-(raw - n), kind="stable")
    i = 0
    while n.sum() < total:
        j = order[i % len(order)]
        if n[j] < sizes[j]:
            n[j] += 1
        i += 1
    return n


def _draw_effects(fams: tuple[FamilyTemplate, ...], rng: np.random.Generator) -> dict[str, Any]:
    demand: dict[str, dict[str, dict[str, float]]] = {}
    rating: dict[str, dict[str, dict[str, float]]] = {}
    for f in fams:
        d: dict[str, dict[str, float]] = {}
        for a in ATTRIBUTES:
            vals = f.values[a]
            if a == "option":
                eff = np.exp(
                    rng.normal(math.log(OPTION_EFFECT_MEDIAN), OPTION_EFFECT_SIGMA, len(vals))
                )
                eff[[v == "none" for v in vals]] = 1.0
            else:
                eff = np.exp(rng.normal(0.0, EFFECT_SIGMA[a], len(vals)))
                if a == "size":
                    eff = eff * np.array([SIZES[v][0] for v in vals])
            d[a] = {v: round(float(e), 4) for v, e in zip(vals, eff, strict=True)}
        demand[f.family_id] = d
        r: dict[str, dict[str, float]] = {}
        for a, sigma in RATING_SIGMA.items():
            eff = rng.normal(0.0, sigma, len(f.values[a]))
            r[a] = {v: round(float(e), 4) for v, e in zip(f.values[a], eff, strict=True)}
        rating[f.family_id] = r
    return {"demand": demand, "rating": rating}


def _launch_weeks(preset: Preset, rng: np.random.Generator) -> np.ndarray:
    v, n = preset.n_variants, preset.n_weeks
    n_cold = max(1, round(preset.cold_start_share * v))
    n_init = round(preset.initial_share * v)
    ordered = np.zeros(v, dtype=int)
    ordered[n_init : n_init + n_cold] = 1
    ordered[n_init + n_cold :] = 2
    kinds = rng.permutation(ordered)
    launch = np.empty(v, dtype=int)
    launch[kinds == 0] = -rng.integers(1, 80, (kinds == 0).sum())  # on sale before the history
    launch[kinds == 1] = rng.integers(n - 12, n - 2, (kinds == 1).sum())  # cold start
    launch[kinds == 2] = rng.integers(1, max(2, n - 12), (kinds == 2).sum())
    return launch


def _bom(fams: tuple[FamilyTemplate, ...]) -> pd.DataFrame:
    rows: list[tuple[str, str, float, str]] = []
    for f in fams:
        for fabric in f.values["fabric"]:
            mid = f"{f.fabric_prefix}-{fabric.upper()}"
            for size in f.values["size"]:
                qty = round(f.fabric_per_unit * SIZES[size][2], 3)
                rows.append((f.family_id, mid, qty, f"fabric={fabric};size={size}"))
            if "hood" in f.values["option"]:
                rows.append((f.family_id, mid, HOOD_FABRIC, f"fabric={fabric};option=hood"))
        for mid, qty, cond in f.trims:
            rows.append((f.family_id, mid, qty, cond))
    return pd.DataFrame(
        rows, columns=["family_id", "material_id", "quantity_per_unit", "condition"]
    )


def _materials(bom: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for mid in sorted(bom["material_id"].unique()):
        if mid in TRIMS:
            name, unit, cost, lead = TRIMS[mid]
        else:
            prefix, fabric = mid.split("-", 1)
            fabric = fabric.lower()
            yarn = prefix == "YRN"
            name = f"{fabric.capitalize()} {'yarn' if yarn else 'fabric'}"
            unit = "kg" if yarn else "m"
            cost = FABRICS[fabric][2] * (3.0 if yarn else 1.0)
            lead = 6 if fabric in ("silk", "cashmere") else 4
        rows.append((mid, name, unit, cost, lead))
    return pd.DataFrame(
        rows, columns=["material_id", "name", "unit", "unit_cost", "lead_time_weeks"]
    )


def _usage(bom: pd.DataFrame, fams: tuple[FamilyTemplate, ...], family: np.ndarray,
           attrs: dict[str, np.ndarray], material_ids: tuple[str, ...]) -> np.ndarray:  # fmt: skip
    fam_index = {f.family_id: i for i, f in enumerate(fams)}
    mat_index = {m: j for j, m in enumerate(material_ids)}
    usage = np.zeros((len(family), len(material_ids)))
    for fid, mid, qty, cond in bom.itertuples(index=False):
        mask = family == fam_index[fid]
        for term in filter(None, cond.split(";")):
            a, v = term.split("=")
            mask &= attrs[a] == v
        usage[mask, mat_index[mid]] += qty
    return usage


def build_catalog(preset: Preset, rng: np.random.Generator) -> Catalog:
    """Draw the product range and plant of ``preset`` from ``rng``."""
    fams = FAMILIES[: preset.n_families]
    lines = LINES[: preset.n_lines]
    n_f, n_l = len(fams), len(lines)
    eligible = np.zeros((n_f, n_l), dtype=bool)
    routing = np.zeros((n_f, n_l))
    for i in range(n_f):
        first, second = i % n_l, (i + 1) % n_l
        eligible[i, [first, second]] = True
        routing[i, first] += PRIMARY_ROUTING
        routing[i, second] += 1.0 - PRIMARY_ROUTING

    sizes = np.array([math.prod(len(f.values[a]) for a in ATTRIBUTES) for f in fams])
    per_family = _allocate(preset.n_variants, sizes)
    family_parts: list[np.ndarray] = []
    id_parts: list[np.ndarray] = []
    attr_parts: dict[str, list[np.ndarray]] = {a: [] for a in ATTRIBUTES}
    for i, (f, k) in enumerate(zip(fams, per_family, strict=True)):
        codes = np.sort(rng.choice(sizes[i], size=k, replace=False))
        rest = codes
        for a in reversed(ATTRIBUTES):  # mixed-radix decode, last attribute varies fastest
            vals = np.array(f.values[a], dtype=object)
            attr_parts[a].append(vals[rest % len(vals)])
            rest = rest // len(vals)
        family_parts.append(np.full(k, i))
        id_parts.append(np.array([f"{f.family_id}-{c:05d}" for c in codes], dtype=object))
    family = np.concatenate(family_parts)
    attrs = {a: np.concatenate(attr_parts[a]) for a in ATTRIBUTES}
    variant_id = np.concatenate(id_parts)
    v = len(variant_id)

    effects = _draw_effects(fams, rng)
    quality = rng.normal(0.0, 1.0, v)
    launch = _launch_weeks(preset, rng)

    effect = np.exp(QUALITY_DEMAND * quality)
    rating_mean = RATING_BASE + RATING_QUALITY * quality
    base_price = np.empty(v)
    hours_base = np.empty(v)
    for i, f in enumerate(fams):
        m = family == i
        effect[m] *= f.volume
        for a in ATTRIBUTES:
            table = effects["demand"][f.family_id][a]
            effect[m] *= np.array([table[x] for x in attrs[a][m]])
        for a, table in effects["rating"][f.family_id].items():
            rating_mean[m] += np.array([table[x] for x in attrs[a][m]])
        base_price[m] = f.base_price
        hours_base[m] = f.base_hours
    fab, fit, size, opt = (attrs[a] for a in ("fabric", "fit", "size", "option"))
    price = base_price * np.array([FABRICS[x][0] for x in fab]) * np.array(
        [FITS[x][0] for x in fit]
    ) + np.array([OPTIONS[x][0] for x in opt])
    list_price = np.floor(price) + 0.9
    rating_mean += np.where(opt != "none", RATING_OPTION, 0.0)
    hours_base *= (
        np.array([FABRICS[x][1] for x in fab])
        * np.array([FITS[x][1] for x in fit])
        * np.array([SIZES[x][1] for x in size])
    )
    option_hours = np.array([OPTIONS[x][1] for x in opt])
    speed = np.array([ln.speed for ln in lines])
    wage = np.array([ln.wage for ln in lines])
    handling = np.array([ln.handling for ln in lines])
    hours = (hours_base + option_hours)[:, None] * speed[None, :]
    unit_cost = hours * wage[None, :] + handling[None, :]
    not_eligible = ~eligible[family]
    hours[not_eligible] = np.nan
    unit_cost[not_eligible] = np.nan
    scrap_rate = np.array([FABRICS[x][3] for x in fab])

    bom = _bom(fams)
    materials = _materials(bom)
    material_ids = tuple(materials["material_id"])
    usage = _usage(bom, fams, family, attrs, material_ids)
    return Catalog(
        families=fams,
        lines=lines,
        eligible=eligible,
        routing=routing,
        variant_id=variant_id,
        family=family,
        attrs=attrs,
        launch_week=launch,
        list_price=list_price,
        effect=effect,
        quality=quality,
        rating_mean=rating_mean,
        hours=hours,
        unit_cost=unit_cost,
        scrap_rate=scrap_rate,
        material_ids=material_ids,
        usage=usage,
        bom=bom,
        materials=materials,
        effects=effects,
    )
