"""The bounds of every retraining knob: one table, one check (docs/retraining.md lists them).

A ``Retrain`` config (the gateway's ``ModelService.Retrain``, the feedback trigger, a job's stored
row) and ``tailorline retrain``'s options are held to :data:`CONFIG_LIMITS`; every key of a search
space to :data:`SPACE_LIMITS`, with at most :data:`MAX_CHOICES` choices per key. Numbers must be
finite (NaN and infinities are refused), integers integral, strings short; unknown keys are
refused. A violation is :class:`~services.common.errors.InvalidArgument` naming the field
(``config.trials``, ``config.space.units[3]``) with at most a short echo of the value.

Plain code (no Ray, no typer, no gRPC).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from services.common.errors import InvalidArgument, clip, shown
from services.training.champion import METRICS

#: longest field name an error repeats (a key is the caller's text too)
FIELD_CHARS = 64


@dataclass(frozen=True)
class Bound:
    """One knob: its type and its range (``low``..``high`` inclusive), or its ``choices``."""

    kind: type  # int, float or str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    max_chars: int = 200  # strings without choices
    doc: str = ""

    def describe(self) -> str:
        if self.choices:
            return "one of " + ", ".join(self.choices)
        if self.kind is str:
            return f"text of at most {self.max_chars} characters"
        what = "an integer" if self.kind is int else "a number"
        return f"{what} in [{_num(self.low)}, {_num(self.high)}]"


def _num(x: float | None) -> str:
    if x is None:
        return "-inf"
    return str(int(x)) if float(x).is_integer() and abs(x) >= 1 else f"{x:g}"


#: ``RetrainRequest.config`` keys (and ``tailorline retrain`` options) -> bounds.
CONFIG_LIMITS: dict[str, Bound] = {
    "trials": Bound(int, 1, 100, doc="Ray Tune trials (samples from the space); default 4"),
    "max_epochs": Bound(int, 1, 200, doc="most epochs per trial and for the refit; default 10"),
    "metric": Bound(str, choices=tuple(METRICS), doc="champion/challenger metric; default wape"),
    "margin": Bound(float, 0.0, 1.0, doc="relative improvement needed to promote; default 0"),
    "holdout_weeks": Bound(int, 1, 52, doc="most recent weeks held out; default 13"),
    "origin_stride": Bound(int, 1, 52, doc="every k-th forecast origin trains; default 2"),
    "seed": Bound(int, 0, 2**31 - 1, doc="random seed; default 7"),
    "space": Bound(dict, doc="search space: key -> list of choices (SPACE_LIMITS)"),
    "alpha": Bound(float, 1e-6, 0.5, doc="the paired test's significance level; default 0.05"),
    "origins": Bound(int, 1, 13, doc="rolling origins in the hold-out; default 3"),
    "origin_weeks": Bound(int, 1, 52, doc="weeks forecast from each origin; default 4"),
    "trigger": Bound(str, max_chars=200, doc="set by the feedback trigger (its reason)"),
    "trigger_id": Bound(int, 0, 2**31 - 1, doc="set by the feedback trigger (its row)"),
}

#: search-space keys -> bounds of each choice (the trainer's ``DEFAULT_SPACE`` lies within).
SPACE_LIMITS: dict[str, Bound] = {
    "layers": Bound(int, 1, 8, doc="hidden layers"),
    "units": Bound(int, 4, 1024, doc="first hidden layer's width (each further one halves)"),
    "learning_rate": Bound(float, 1e-7, 1.0, doc="Adam's learning rate"),
    "dropout": Bound(float, 0.0, 0.9, doc="dropout after each hidden layer"),
    "quantile_head": Bound(str, choices=("ratio", "sorted"), doc="how P10/P90 are produced"),
    "head_units": Bound(int, 0, 1024, doc="hidden width per quantile head (0: shared head)"),
    "batch_size": Bound(int, 16, 65536, doc="training batch size"),
}

#: most choices one search-space key may list
MAX_CHOICES = 32


def field_name(prefix: str, key: object) -> str:
    """``prefix.key`` with the caller's key cut short (it is echoed in the error)."""
    return f"{prefix}.{clip(str(key), FIELD_CHARS)}"


def check_value(bound: Bound, value: Any, field: str) -> Any:
    """``value`` held to ``bound``: the value as stored (ints as int, numbers as float)."""
    if bound.kind is str:
        if not isinstance(value, str):
            raise InvalidArgument(f"must be {bound.describe()}, got {shown(value)}", field=field)
        if bound.choices and value not in bound.choices:
            raise InvalidArgument(f"must be {bound.describe()}, got {shown(value)}", field=field)
        if len(value) > bound.max_chars or "\x00" in value:
            raise InvalidArgument(f"must be {bound.describe()}, got {shown(value)}", field=field)
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidArgument(f"must be {bound.describe()}, got {shown(value)}", field=field)
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidArgument(f"must be a finite number, got {shown(value)}", field=field)
    if bound.kind is int and value != int(value):
        raise InvalidArgument(f"must be an integer, got {shown(value)}", field=field)
    if (bound.low is not None and value < bound.low) or (
        bound.high is not None and value > bound.high
    ):
        raise InvalidArgument(f"must be {bound.describe()}, got {shown(value)}", field=field)
    return int(value) if bound.kind is int else float(value)


def check_space(value: Any, field: str = "space") -> dict[str, list[Any]]:
    """A search space held to :data:`SPACE_LIMITS`: {key: [choices]} with typed choices."""
    if not isinstance(value, dict) or not value:
        raise InvalidArgument(
            f"give an object of key -> list of choices; keys: {', '.join(SPACE_LIMITS)}",
            field=field,
        )
    out: dict[str, list[Any]] = {}
    for key, choices in value.items():
        name = field_name(field, key)
        bound = SPACE_LIMITS.get(key) if isinstance(key, str) else None
        if bound is None:
            raise InvalidArgument(f"unknown key; one of {', '.join(SPACE_LIMITS)}", field=name)
        if not isinstance(choices, list) or not choices:
            raise InvalidArgument("give a non-empty list of choices", field=name)
        if len(choices) > MAX_CHOICES:
            raise InvalidArgument(f"at most {MAX_CHOICES} choices, got {len(choices)}", field=name)
        out[key] = [check_value(bound, c, f"{name}[{i}]") for i, c in enumerate(choices)]
    return out


#: models a job retrains (``config.models``, from ``RetrainRequest.models``)
RETRAINABLE = ("demand", "cost")


def check_models(value: Any, field: str = "models") -> list[str]:
    """A non-empty list of retrainable model names, each once."""
    if not isinstance(value, list) or not value or len(value) > len(RETRAINABLE):
        raise InvalidArgument(f"give a list of {', '.join(RETRAINABLE)}", field=field)
    for i, v in enumerate(value):
        if v not in RETRAINABLE:
            raise InvalidArgument(
                f"must be one of {', '.join(RETRAINABLE)}, got {shown(v)}", field=f"{field}[{i}]"
            )
    return list(dict.fromkeys(value))


def check_config(config: Any, prefix: str = "config") -> dict[str, Any]:
    """A retrain config held to :data:`CONFIG_LIMITS`; the config as stored."""
    if not isinstance(config, dict):
        raise InvalidArgument("give an object of knob -> value", field=prefix)
    out: dict[str, Any] = {}
    for key, value in config.items():
        name = field_name(prefix, key)
        if key == "models":  # set from Retrain's models (a list of names)
            out[key] = check_models(value, name)
            continue
        bound = CONFIG_LIMITS.get(key) if isinstance(key, str) else None
        if bound is None:
            raise InvalidArgument(f"unknown key; one of {', '.join(CONFIG_LIMITS)}", field=name)
        if bound.kind is dict:
            out[key] = check_space(value, name)
        else:
            out[key] = check_value(bound, value, name)
    return out
