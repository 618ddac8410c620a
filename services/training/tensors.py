"""TensorFlow helpers shared by the demand and cost training: deterministic set-up, frames to
named tensors, batched prediction. (Their own module so that :mod:`services.training.cost_fit`
and :mod:`services.training.train` can both use them without importing each other.)"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from services.common.quantiles import QUANTILES


def setup_tensorflow(seed: int) -> None:
    """Deterministic TensorFlow: seeds, op determinism, a bounded thread pool."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    try:
        tf.config.threading.set_inter_op_parallelism_threads(2)
        tf.config.threading.set_intra_op_parallelism_threads(2)
    except RuntimeError:  # already initialised in this process
        pass


def to_tensors(frame: pd.DataFrame, inputs: list[tuple[str, str]]) -> dict[str, Any]:
    import tensorflow as tf

    out = {}
    for name, dtype in inputs:
        if dtype == "string":
            out[name] = tf.constant(frame[name].astype(str).to_numpy().astype(object))
        else:
            out[name] = tf.constant(frame[name].to_numpy(dtype=np.float32))
    return out


def predict_batched(
    model: Any, frame: pd.DataFrame, inputs: list[tuple[str, str]], batch: int = 8192
) -> np.ndarray:
    import tensorflow as tf

    fn = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    parts = [
        fn(to_tensors(frame.iloc[i : i + batch], inputs)).numpy()
        for i in range(0, len(frame), batch)
    ]
    return np.concatenate(parts) if parts else np.zeros((0, len(QUANTILES)), np.float32)
