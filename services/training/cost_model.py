"""The cost model: Keras, unit cost and processing hours per unit for a (variant, line).

The structure follows how a plant's cost arises, with every piece learned from production records:

- ``log hours_per_unit = v(variant) + s(line)``: the variant's work content (an MLP over
  embeddings of family, attributes and family x attribute crosses, plus the list price) times the
  line's speed, so a line seen with other families generalises to new (variant, line) pairs;
- ``unit_cost = hours_per_unit * rate(line) + handling(line) + c(variant, line)``: a per-hour rate
  and a per-unit handling cost per line (embeddings through ``softplus``) and a small learned
  correction from the line's process parameters and the variant features.

Loss: squared error of ``log`` hours and ``log`` unit cost (relative errors), weighted by the
record's quantity. String lookups and normalisation are inside the model (raw columns in).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf


@keras.saving.register_keras_serializable(package="tailorline")
class CostNet(keras.Model):
    """Raw feature dict -> ``[N, 2]``: unit_cost, hours_per_unit."""

    def __init__(
        self,
        vocabularies: dict[str, list[str]],
        numeric: Sequence[str],
        means: Sequence[float],
        stds: Sequence[float],
        hidden: Sequence[int] = (32,),
        embed_dim: int = 4,
        init_log_hours: float = 0.0,
        init_rate: float = 30.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.vocabularies = {k: list(v) for k, v in vocabularies.items()}
        self.numeric = list(numeric)
        for name, vocab in self.vocabularies.items():
            key = name.replace("|", "_x_")
            self._set(
                "lookup",
                key,
                keras.layers.StringLookup(
                    vocabulary=vocab, num_oov_indices=1, name=f"lookup_{key}"
                ),
            )
            self._set(
                "embed",
                key,
                keras.layers.Embedding(
                    len(vocab) + 1, min(embed_dim, len(vocab) + 1), name=f"embed_{key}"
                ),
            )
        lines = self.vocabularies["line_id"]
        self.line_lookup = keras.layers.StringLookup(
            vocabulary=lines, num_oov_indices=1, name="lookup_line_params"
        )
        n_lines = len(lines) + 1
        self.line_speed = keras.layers.Embedding(
            n_lines, 1, embeddings_initializer="zeros", name="line_log_speed"
        )
        self.line_rate = keras.layers.Embedding(
            n_lines,
            1,
            embeddings_initializer=keras.initializers.Constant(float(np.log(np.expm1(init_rate)))),
            name="line_rate",
        )
        self.line_handling = keras.layers.Embedding(
            n_lines, 1, embeddings_initializer="zeros", name="line_handling"
        )
        self.means = tf.constant(np.asarray(means, dtype=np.float32))
        self.stds = tf.constant(np.maximum(np.asarray(stds, dtype=np.float32), 1e-6))
        self.work = [keras.layers.Dense(h, activation="relu") for h in hidden]
        self.work_head = keras.layers.Dense(
            1,
            kernel_initializer="zeros",
            bias_initializer=keras.initializers.Constant(init_log_hours),
        )
        self.corr_head = keras.layers.Dense(1, kernel_initializer="zeros")
        self._config = {
            "vocabularies": self.vocabularies,
            "numeric": self.numeric,
            "means": [float(x) for x in means],
            "stds": [float(x) for x in stds],
            "hidden": list(hidden),
            "embed_dim": embed_dim,
            "init_log_hours": init_log_hours,
            "init_rate": init_rate,
        }

    def _set(self, kind: str, key: str, layer: Any) -> None:
        # plain attributes (not a dict): TensorFlow's tracking must see the lookup tables to export
        setattr(self, f"{kind}_{key}", layer)

    def _get(self, kind: str, key: str) -> Any:
        return getattr(self, f"{kind}_{key}")

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), **self._config}

    def _string(self, inputs: dict[str, tf.Tensor], name: str) -> tf.Tensor:
        if "|" in name:
            a, b = name.split("|")
            return tf.strings.join([self._string(inputs, a), self._string(inputs, b)], "|")
        return tf.reshape(tf.convert_to_tensor(inputs[name]), [-1])

    def call(self, inputs: dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        variant_parts = []
        for name in self.vocabularies:
            if name == "line_id" or name.startswith("line_id|"):
                continue
            key = name.replace("|", "_x_")
            variant_parts.append(
                self._get("embed", key)(self._get("lookup", key)(self._string(inputs, name)))
            )
        raw = tf.stack([tf.reshape(tf.cast(inputs[c], tf.float32), [-1]) for c in self.numeric], 1)
        num = (tf.math.log1p(tf.maximum(raw, 0.0)) - self.means) / self.stds
        h = tf.concat([*variant_parts, num[:, :1]], axis=1)  # list price only: a variant feature
        for layer in self.work:
            h = layer(h)
        line = self.line_lookup(self._string(inputs, "line_id"))
        log_hours = self.work_head(h)[:, 0] + self.line_speed(line)[:, 0]
        hours = tf.exp(log_hours)
        rate = tf.nn.softplus(self.line_rate(line)[:, 0])
        handling = tf.nn.softplus(self.line_handling(line)[:, 0])
        corr_in = tf.concat([h, num, self._get("embed", "line_id")(line)], axis=1)
        corr = tf.exp(0.1 * tf.tanh(self.corr_head(corr_in)[:, 0]))
        unit_cost = (hours * rate + handling) * corr
        return tf.stack([unit_cost, hours], axis=1)


def log_mse(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
    y = tf.math.log(tf.maximum(tf.cast(y_true, tf.float32), 1e-6))
    p = tf.math.log(tf.maximum(y_pred, 1e-6))
    return tf.reduce_mean(tf.square(y - p), axis=-1)
