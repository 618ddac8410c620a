"""TensorFlow helpers shared by the demand and cost training: deterministic set-up, frames to
named tensors, batched prediction. (Their own module so that :mod:`services.training.cost_fit`
and :mod:`services.training.train` can both use them without importing each other.)"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
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


# one inference function per (model, inputs), traced once: a tf.function made per call traced
# anew on every call (TensorFlow warned "triggered tf.function retracing", and a trace costs more
# than the prediction of a small frame); the signature's None batch dimension lets the last,
# shorter batch and frames of any length reuse the one trace. Weak keys: an entry goes with its
# model. A model's Python-side state (not its variables, which are read live) is frozen at the
# trace, as in Keras's own ``predict_function``.
_PREDICT_FNS: weakref.WeakKeyDictionary[Any, dict[tuple[tuple[str, str], ...], Any]] = (
    weakref.WeakKeyDictionary()
)
_PREDICT_LOCK = threading.Lock()


def predict_function(model: Any, inputs: list[tuple[str, str]]) -> Any:
    """``model(x, training=False)`` as a ``tf.function`` over the named ``inputs`` (any number of
    rows), made once per model and input list."""
    import tensorflow as tf

    key = tuple((str(name), str(dtype)) for name, dtype in inputs)
    ref: Callable[[], Any]
    with _PREDICT_LOCK:
        try:
            per_model = _PREDICT_FNS.setdefault(model, {})
            ref = weakref.ref(model)  # the cache must not keep the model alive
        except TypeError:  # not weakly referable: a function for this call only
            per_model, ref = {}, lambda: model
        fn = per_model.get(key)
        if fn is None:
            spec = {
                name: tf.TensorSpec([None], tf.string if dtype == "string" else tf.float32)
                for name, dtype in key
            }

            def call(x: dict[str, Any]) -> Any:
                live = ref()
                if live is None:  # only when traced again after the model was collected
                    raise RuntimeError("predict_function: the model is gone")
                return live(x, training=False)

            fn = tf.function(call, input_signature=[spec])
            # trace now: TensorFlow's retracing warning counts traces per Python function (this
            # ``call``, shared by every model), so first-call traces of several models in a row
            # would trip it; a trace made here is not counted, the calls then reuse it
            fn.get_concrete_function()
            per_model[key] = fn
    return fn


def predict_batched(
    model: Any, frame: pd.DataFrame, inputs: list[tuple[str, str]], batch: int = 8192
) -> np.ndarray:
    if not len(frame):
        return np.zeros((0, len(QUANTILES)), np.float32)
    fn = predict_function(model, inputs)
    parts = [
        fn(to_tensors(frame.iloc[i : i + batch], inputs)).numpy()
        for i in range(0, len(frame), batch)
    ]
    return np.concatenate(parts)
