"""One training run for one hyper-parameter configuration: plain code, testable without Ray.

A trial configuration is a small dict (``layers``, ``units``, ``learning_rate``); ``trial_config``
turns it into the predictor's :class:`TrainConfig` and ``fit`` wraps ``train_demand``. Dropout is
not searched: ``DemandNet`` supports it but ``TrainConfig``/``train_demand`` do not pass it on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from services.features.demand import DemandPanel
from services.predictor.training import TrainConfig, TrainedModel, train_demand


@dataclass(frozen=True)
class FitResult:
    config: dict[str, Any]
    val_loss: float  # best validation pinball loss (early-stopping weeks, never the hold-out)
    epochs: int
    trained: TrainedModel


def trial_config(config: dict[str, Any], base: TrainConfig) -> TrainConfig:
    """The TrainConfig for a trial: ``base`` with the searched fields replaced."""
    layers = int(config.get("layers", len(base.hidden)))
    units = int(config.get("units", base.hidden[0] if base.hidden else 32))
    # a funnel: each layer half the width of the one before, at least 4 units
    hidden = tuple(max(units // (2**i), 4) for i in range(layers))
    return replace(
        base,
        hidden=hidden,
        learning_rate=float(config.get("learning_rate", base.learning_rate)),
        epochs=int(config.get("epochs", base.epochs)),
    )


def fit(config: dict[str, Any], panel: DemandPanel, base: TrainConfig) -> FitResult:
    """Train the demand model with ``config`` on ``panel``; val loss ranks trials."""
    cfg = trial_config(config, base)
    trained = train_demand(panel, cfg)
    loss = float(trained.info.get("best_val_loss", math.inf))
    if not math.isfinite(loss):
        loss = math.inf
    return FitResult(dict(config), loss, int(trained.info.get("epochs", 0)), trained)
