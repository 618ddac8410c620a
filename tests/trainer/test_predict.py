"""Batched prediction traces a model once: a tf.function made per call (or per batch) traced the
model anew every time (~0.3 s a call on the tiny preset, and TensorFlow's "triggered tf.function
retracing" warnings on the terminal)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tests.trainer.conftest import BASE


def test_predictions_trace_the_model_once_whatever_the_frame_length(
    panel, good_fit, monkeypatch: pytest.MonkeyPatch
) -> None:
    from services.training.champion import holdout
    from services.training.tensors import predict_function, to_tensors
    from services.training.train import predict_batched

    trained, inputs = good_fit.trained.model, good_fit.trained.inputs
    rows, _ = holdout(panel, BASE)
    assert len(rows) > 20
    # a model of its own (same weights), so no earlier test has traced it already
    model = type(trained).from_config(trained.get_config())
    model(to_tensors(rows.iloc[:2], inputs))  # builds the variables, eagerly
    model.set_weights(trained.get_weights())
    runs = []
    call = model.call

    def counted(*args: Any, **kwargs: Any) -> Any:  # runs once per trace (or eager call)
        runs.append(1)
        return call(*args, **kwargs)

    monkeypatch.setattr(model, "call", counted)

    whole = predict_batched(model, rows, inputs)
    parts = [
        predict_batched(model, rows.iloc[:n], inputs) for n in (1, 3, len(rows) // 2, len(rows))
    ]
    small = predict_batched(model, rows, inputs, batch=7)  # a shorter last batch
    assert len(runs) == 1, f"the model's Python code ran {len(runs)} times for 6 calls"
    assert predict_function(model, inputs).experimental_get_tracing_count() == 1
    # the same numbers (to float32 rounding) whatever the batching, and the trained model's
    np.testing.assert_allclose(small, whole, rtol=1e-5, atol=1e-5)
    for p in parts:
        np.testing.assert_allclose(p, whole[: len(p)], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(whole, predict_batched(trained, rows, inputs), rtol=1e-5, atol=1e-5)
    eager = model(to_tensors(rows, inputs), training=False).numpy()
    np.testing.assert_allclose(whole, eager, rtol=1e-5, atol=1e-5)
