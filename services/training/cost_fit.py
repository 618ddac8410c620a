"""Fitting the cost model on production records, and scoring it against a data set's truth.

:func:`fit_cost` is what ``train_cost`` (``tailorline train``, retraining) runs: records dated up
to the cutoff week are the training set (the last 10 % by date for early stopping), the later
ones the hold-out. With ``lot_inputs`` (the default) the model learns the fixed cost per run, the
marginal unit cost, the variant setup hours and the overtime premium from the records' lot sizes
and line loads (:mod:`services.training.cost_model`); ``lot_inputs=False`` is the model without
them, kept for comparison (``bench/bench_cost_model.py``).

Against a ground truth (``tailorline datagen``'s ``truth/unit_cost`` and ``truth/family_setups``)
:func:`truth_metrics` reports MAPEs per output (``unit_cost_mape_vs_truth`` is the marginal cost
``c`` alone, which lots of a few units barely separate from the fixed cost per run ``F``) and two
of the cost of a run, where ``c`` and ``F`` meet: ``lot_cost_mape_vs_truth``, the predicted cost
of each recorded run at regular time, ``F + c q`` for the run's lot ``q`` (``q`` x the model's
``lot_unit_cost`` at ``line_load`` 1), against the generator's ``F + c q`` for the same run; and
``lot_grid_cost_mape_vs_truth``, the cost per unit ``c + F / q`` over every (variant, line) of the
truth and the lots of :data:`LOT_GRID` (the same ratio for a run of ``q`` units).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from services.common.errors import FailedPrecondition
from services.features.cost import (
    COST_NUMERIC,
    COST_OUTPUTS,
    RUN_FEATURES,
    build_cost_training_frame,
    changeover_table,
    cost_serving_frame,
    cost_string_features,
)
from services.training import metrics as M

#: Lot sizes at which the cost per unit is compared with the truth (small lots are where a model
#: that ignores the fixed cost per run is most wrong, large ones where the marginal cost shows).
LOT_GRID = (1, 2, 4, 8, 16, 32)
OUT = {name: i for i, name in enumerate(COST_OUTPUTS)}


def cost_inputs(variants: pd.DataFrame, lot_inputs: bool = True) -> list[tuple[str, str]]:
    """The model's input columns ``(name, dtype)`` for a variants frame."""
    strings = cost_string_features(variants)
    numeric = [*COST_NUMERIC, *(RUN_FEATURES if lot_inputs else ())]
    return [(c, "string") for c in strings] + [(c, "float32") for c in numeric]


def _targets(rows: pd.DataFrame) -> np.ndarray:
    setup = rows["run_setup_hours"].to_numpy(np.float32)
    return np.stack(
        [
            rows["unit_cost"].to_numpy(np.float32),
            rows["hours_per_unit"].to_numpy(np.float32),
            np.where(np.isfinite(setup), setup, 0.0).astype(np.float32),
        ],
        axis=1,
    )


def _positive_median(values: Any, default: float) -> float:
    x = pd.to_numeric(pd.Series(values), errors="coerce")
    x = x[np.isfinite(x) & (x > 0)]
    return float(x.median()) if len(x) else default


def fit_cost(
    frames: Mapping[str, pd.DataFrame],
    cutoff: pd.Timestamp | None,
    *,
    seed: int = 7,
    epochs: int = 80,
    patience: int = 8,
    lot_inputs: bool = True,
    truth: Mapping[str, pd.DataFrame] | None = None,
    callbacks: list[Any] | None = None,
) -> tuple[Any, list[tuple[str, str]], dict[str, Any], dict[str, Any]]:
    """Train the cost model; returns (model, inputs, metrics, info)."""
    import keras
    import tensorflow as tf

    from services.training.cost_model import CostNet, cost_loss, log_mse  # TensorFlow: lazy
    from services.training.tensors import predict_batched, setup_tensorflow, to_tensors

    setup_tensorflow(seed)
    started = time.perf_counter()
    records = build_cost_training_frame(frames)
    if records.empty:
        raise FailedPrecondition(
            "no production records to train the cost model on", field="production"
        )
    if cutoff is not None:
        fit_all = records[records["date"] <= cutoff + pd.Timedelta(days=6)]
        later = records[records["date"] > cutoff + pd.Timedelta(days=6)]
    else:
        fit_all, later = records, records.iloc[:0]
    # early stopping on the last 10% of the training records (by date)
    order = fit_all.sort_values(["date", "record_id"], kind="stable")
    n_val = max(int(len(order) * 0.1), 1) if len(order) > 20 else 0
    fit_rows, val_rows = order.iloc[: len(order) - n_val], order.iloc[len(order) - n_val :]
    variants = frames["variants"]
    strings = cost_string_features(variants)
    inputs = cost_inputs(variants, lot_inputs)
    vocab: dict[str, list[str]] = {c: sorted(set(fit_rows[c].astype(str))) for c in strings}
    for c in strings:
        if c.startswith("attr_"):
            vocab[f"family_id|{c}"] = sorted(set(fit_rows["family_id"] + "|" + fit_rows[c]))
    logs = np.log1p(fit_rows[list(COST_NUMERIC)].to_numpy(np.float64))
    y_fit = _targets(fit_rows)
    big = fit_rows["lot_size"] >= fit_rows["lot_size"].quantile(0.75)  # F / q smallest there
    lines = frames["lines"]
    # only the pairs learned from changeover records: for a pair with a standard alone the model
    # says 0, and the planner reads the standard from the current table, so a standard changed
    # after training takes effect without a retrain
    changeovers = changeover_table(frames)
    changeovers = changeovers[changeovers["records"] > 0]
    model = CostNet(
        vocab,
        list(COST_NUMERIC),
        logs.mean(0).tolist(),
        logs.std(0).tolist(),
        init_log_hours=float(np.log(np.median(y_fit[:, 1]))),
        init_rate=float(np.median(y_fit[big.to_numpy(), 0] / y_fit[big.to_numpy(), 1])),
        lot_inputs=lot_inputs,
        family_setups={
            f"{f}|{line}": [float(h), float(c)]
            for f, line, h, c in changeovers[
                ["family_id", "line_id", "setup_hours", "setup_cost"]
            ].itertuples(index=False)
        },
        init_run_cost=_positive_median(lines.get("setup_cost"), float(np.median(y_fit[:, 0]))),
        init_setup_hours=_positive_median(
            fit_rows["run_setup_hours"], _positive_median(lines.get("setup_hours"), 0.5)
        ),
        init_overtime=_positive_median(lines.get("overtime_cost_per_hour"), 30.0),
        setup_learned=bool(lot_inputs and (fit_rows["run_setup_hours"] > 0).any()),
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=cost_loss if lot_inputs else log_mse)
    if lot_inputs:  # every run is one observation of the cost function
        w = np.ones(len(fit_rows), np.float32)
    else:  # the model before lot sizes: unit cost weighted by the units it covers
        w = fit_rows["quantity"].to_numpy(np.float32)
        w = w / w.mean()

    ds = tf.data.Dataset.from_tensor_slices((to_tensors(fit_rows, inputs), y_fit, w))
    # 256 rows a step; at least ~20 steps an epoch on a small data set
    batch = min(256, max(32, len(fit_rows) // 20))
    ds = ds.shuffle(len(fit_rows), seed=seed).batch(batch).prefetch(2)
    val = None
    if n_val:
        val = tf.data.Dataset.from_tensor_slices(
            (to_tensors(val_rows, inputs), _targets(val_rows))
        ).batch(4096)
    monitor = "val_loss" if val is not None else "loss"
    history = model.fit(
        ds,
        validation_data=val,
        epochs=epochs,
        verbose=0,
        callbacks=[
            keras.callbacks.EarlyStopping(
                monitor=monitor, patience=patience, restore_best_weights=True
            ),
            keras.callbacks.ReduceLROnPlateau(monitor=monitor, factor=0.3, patience=3),
            *(callbacks or []),
        ],
    )
    metrics: dict[str, Any] = {}
    if len(later):
        p = predict_batched(model, later, inputs)
        metrics["holdout_unit_cost_mape"] = round(
            M.mape(p[:, OUT["lot_unit_cost"]], later["unit_cost"]), 4
        )
        metrics["holdout_hours_mape"] = round(M.mape(p[:, 1], later["hours_per_unit"]), 4)
        metrics["holdout_records"] = len(later)
    if truth:
        metrics.update(truth_metrics(model, inputs, frames, truth))
    info = {
        "epochs": len(history.history["loss"]),
        "rows": len(fit_rows),
        "validation_rows": int(n_val),
        "lot_inputs": lot_inputs,
        "changeover_pairs": len(changeovers),
        "seconds": round(time.perf_counter() - started, 1),
    }
    return model, inputs, metrics, info


def _ids(frame: pd.DataFrame, cols: tuple[str, ...]) -> pd.DataFrame:
    out = frame.copy()
    for c in cols:
        out[c] = out[c].astype(str).str.strip().str.upper()
    return out


def truth_metrics(
    model: Any,
    inputs: list[tuple[str, str]],
    frames: Mapping[str, pd.DataFrame],
    truth: Mapping[str, pd.DataFrame],
) -> dict[str, Any]:
    """MAPEs of the model's outputs against a data set's ground truth (module docstring)."""
    from services.training.tensors import predict_batched

    out: dict[str, Any] = {}
    t = truth.get("unit_cost")
    if t is None or not len(t):
        return out
    t = _ids(t, ("variant_id", "line_id"))
    rows = cost_serving_frame(frames, sorted(set(t["variant_id"])))
    rows = rows.merge(t, on=["variant_id", "line_id"], how="inner", suffixes=("", "_true"))
    p = predict_batched(model, rows, inputs)
    out["unit_cost_mape_vs_truth"] = round(M.mape(p[:, 0], rows["unit_cost"]), 4)
    out["hours_mape_vs_truth"] = round(M.mape(p[:, 1], rows["hours_per_unit"]), 4)
    out["truth_pairs"] = len(rows)
    run_true = rows["run_cost"] if "run_cost" in rows.columns else pd.Series(0.0, index=rows.index)
    if "run_cost" in rows.columns:
        out["run_cost_mape_vs_truth"] = round(M.mape(p[:, OUT["run_cost"]], rows["run_cost"]), 4)
    if "setup_hours_true" in rows.columns:
        out["setup_hours_mape_vs_truth"] = round(
            M.mape(p[:, OUT["setup_hours"]], rows["setup_hours_true"]), 4
        )
    # the cost per unit of a run of q units at regular time, over the lot grid
    pred, true = [], []
    for q in LOT_GRID:
        grid = rows.assign(lot_size=np.float32(q), line_load=np.float32(1.0))
        pred.append(predict_batched(model, grid, inputs)[:, OUT["lot_unit_cost"]])
        true.append((rows["unit_cost"] + run_true / q).to_numpy(float))
    out["lot_grid_cost_mape_vs_truth"] = round(
        M.mape(np.concatenate(pred), np.concatenate(true)), 4
    )
    out.update(run_cost_metrics(model, inputs, frames, t))
    fam = truth.get("family_setups")
    if fam is not None and len(fam):
        fam = _ids(fam, ("family_id", "line_id")).rename(
            columns={"setup_hours": "setup_hours_fam", "setup_cost": "setup_cost_fam"}
        )
        first = rows.drop_duplicates(["family_id", "line_id"])
        got = pd.DataFrame(
            {
                "family_id": first["family_id"],
                "line_id": first["line_id"],
                "hours_pred": p[first.index, OUT["family_setup_hours"]],
                "cost_pred": p[first.index, OUT["family_setup_cost"]],
            }
        ).merge(fam, on=["family_id", "line_id"])
        got = got[got["hours_pred"] > 0]  # the pairs it learned (no records: 0, the standard)
        if len(got):
            out["family_setup_hours_mape_vs_truth"] = round(
                M.mape(got["hours_pred"], got["setup_hours_fam"]), 4
            )
            out["family_setup_cost_mape_vs_truth"] = round(
                M.mape(got["cost_pred"], got["setup_cost_fam"]), 4
            )
    return out


def run_cost_metrics(
    model: Any, inputs: list[tuple[str, str]], frames: Mapping[str, pd.DataFrame], t: pd.DataFrame
) -> dict[str, Any]:
    """``lot_cost_mape_vs_truth`` (module docstring) over the production records whose (variant,
    line) the truth ``t`` has, and ``truth_runs``, how many; {} without such records."""
    from services.training.tensors import predict_batched

    runs = build_cost_training_frame(frames)
    if runs.empty:
        return {}
    runs = _ids(runs, ("variant_id", "line_id")).merge(
        t[["variant_id", "line_id", "unit_cost", *(["run_cost"] if "run_cost" in t else [])]],
        on=["variant_id", "line_id"],
        how="inner",
        suffixes=("", "_true"),
    )
    if runs.empty:
        return {}
    q = runs["lot_size"].to_numpy(np.float64)
    regular = runs.assign(line_load=np.float32(1.0))  # the overtime premium aside
    pred = q * predict_batched(model, regular, inputs)[:, OUT["lot_unit_cost"]]
    fixed = runs["run_cost"].to_numpy(np.float64) if "run_cost" in runs else np.zeros(len(runs))
    true = fixed + runs["unit_cost_true"].to_numpy(np.float64) * q
    return {"lot_cost_mape_vs_truth": round(M.mape(pred, true), 4), "truth_runs": len(runs)}
