"""Size presets of the synthetic manufacturer.

A preset fixes the *shape* of a data set (how many families, variants, weeks and lines, how busy
demand is, where the trend shift happens); the seed fixes every random draw inside that shape.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any

from services.common.errors import InvalidArgument

#: Monday of the last week of history for every preset (fixed, so a seed always gives the same
#: dates whatever day the generator runs).
DEFAULT_END_WEEK = dt.date(2026, 11, 16)


@dataclass(frozen=True)
class Preset:
    """The shape of a synthetic data set."""

    name: str
    n_families: int
    n_variants: int
    n_weeks: int  # weeks of history
    n_lines: int
    horizon_weeks: int  # future weeks of ground-truth expected demand
    mean_weekly_demand: float  # mean expected units per on-sale variant-week over the history
    initial_share: float  # share of variants already on sale in the first week
    cold_start_share: float  # share launched in the last 12..3 weeks of history
    shift_week: int  # week index (0 = first week of history) where the fashion shift starts
    shift_fabric: str = "linen"
    shift_multiplier: float = 1.8
    shift_ramp_weeks: int = 4
    end_week: dt.date = DEFAULT_END_WEEK

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["end_week"] = self.end_week.isoformat()
        return out


PRESETS: dict[str, Preset] = {
    "tiny": Preset(
        name="tiny",
        n_families=2,
        n_variants=20,
        n_weeks=30,
        n_lines=2,
        horizon_weeks=26,
        mean_weekly_demand=3.0,
        initial_share=0.6,
        cold_start_share=0.15,
        shift_week=18,
    ),
    "small": Preset(
        name="small",
        n_families=4,
        n_variants=150,
        n_weeks=78,
        n_lines=3,
        horizon_weeks=26,
        mean_weekly_demand=3.0,
        initial_share=0.6,
        cold_start_share=0.06,
        shift_week=78 + 10,  # ten weeks after the end of history: the simulator must meet it
    ),
    "standard": Preset(
        name="standard",
        n_families=6,
        n_variants=500,
        n_weeks=104,
        n_lines=4,
        horizon_weeks=26,
        mean_weekly_demand=4.0,
        initial_share=0.6,
        cold_start_share=0.10,  # ~50 cold-start variants in a 13-week hold-out (25 at 0.05)
        shift_week=70,
    ),
    "large": Preset(
        name="large",
        n_families=8,
        n_variants=5000,
        n_weeks=104,
        n_lines=5,
        horizon_weeks=26,
        mean_weekly_demand=4.4,
        initial_share=0.6,
        cold_start_share=0.05,
        shift_week=70,
    ),
}


def get_preset(name: str) -> Preset:
    """The preset called ``name``; an unknown name is an :class:`InvalidArgument`."""
    try:
        return PRESETS[name.strip().lower()]
    except KeyError:
        raise InvalidArgument(
            f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}", field="preset"
        ) from None


def preset_from_dict(data: dict[str, Any]) -> Preset:
    """The inverse of :meth:`Preset.to_dict` (e.g. ``params.json``'s ``preset_shape``)."""
    values = dict(data)
    values["end_week"] = dt.date.fromisoformat(str(values["end_week"]))
    return Preset(**values)
