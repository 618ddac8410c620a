"""One training run for one hyper-parameter configuration: plain code, testable without Ray.

A trial configuration is a small dict: ``layers``, ``units`` (the first layer's width; each
further layer halves it), ``learning_rate``, ``dropout`` (after each hidden layer),
``quantile_head`` (``"ratio"``: P10/P90 as fractions of P50, or ``"sorted"``: three levels,
sorted) and ``head_units`` (0: one shared linear head; > 0: a hidden layer of that width per
quantile), optionally ``epochs`` and ``batch_size``. ``trial_config`` turns it into a
:class:`~services.training.train.TrainConfig` and ``fit`` wraps ``train_demand``; keys it does
not carry keep ``base``'s value. ``callbacks`` (Keras) are how an adapter observes the epochs:
the Ray Tune adapter passes one that reports the validation loss after each epoch, so ASHA can
stop a trial.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from services.features.demand import DemandPanel
from services.training.train import TrainConfig, TrainedModel, train_demand


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
    if "layers" not in config and "units" not in config:
        hidden = base.hidden
    return replace(
        base,
        hidden=hidden,
        learning_rate=float(config.get("learning_rate", base.learning_rate)),
        dropout=float(config.get("dropout", base.dropout)),
        quantile_head=str(config.get("quantile_head", base.quantile_head)),
        head_units=int(config.get("head_units", base.head_units)),
        epochs=int(config.get("epochs", base.epochs)),
        batch_size=int(config.get("batch_size", base.batch_size)),
    )


def fit(
    config: dict[str, Any],
    panel: DemandPanel,
    base: TrainConfig,
    *,
    callbacks: Sequence[Any] = (),
    evaluate: bool = True,
) -> FitResult:
    """Train the demand model with ``config`` on ``panel``; val loss ranks trials.

    ``evaluate=False`` skips the hold-out metrics (a search trial never looks at the hold-out).
    """
    cfg = trial_config(config, base)
    if not evaluate:  # a trial is ranked by its validation loss: no refit over those weeks
        cfg = replace(cfg, refit_validation=False)
    trained = train_demand(panel, cfg, callbacks=callbacks, evaluate=evaluate)
    loss = float(trained.info.get("best_val_loss", math.inf))
    if not math.isfinite(loss):
        loss = math.inf
    return FitResult(dict(config), loss, int(trained.info.get("epochs", 0)), trained)
