"""The cost model: Keras, the lot-size and changeover economics of a (variant, line).

The structure follows how a plant's cost arises, with every piece learned from production records:

- ``log hours_per_unit = v(variant) + s(line)``: the variant's work content (an MLP over
  embeddings of family, attributes and family x attribute crosses, plus the list price) times the
  line's speed, so a line seen with other families generalises to new (variant, line) pairs;
- ``unit_cost = hours_per_unit * rate(line) + handling(line) + c(variant, line)``: the marginal
  cost ``c`` at regular time, a per-hour rate and a per-unit handling cost per line (embeddings
  through ``softplus``) and a small learned correction from the line's process parameters and the
  variant features;
- ``log run_cost = r(variant) + r(line)``: the fixed cost ``F`` of one run, and likewise
  ``log setup_hours`` (the variant setup before a run), from the same variant representation;
- ``overtime_cost_per_hour = softplus(o(line))``: the premium of an overtime hour.

A record of a run of ``lot_size`` q in a week with ``line_load`` L (hours / regular capacity)
is predicted as ``lot_unit_cost = c + F / q + premium * o * (hours_per_unit + setup_hours / q)``
with the overtime share ``o = max(0, 1 - 1 / L)``; so ``c`` and ``F`` are told apart by the
records' lot sizes and the premium by their loads. ``family_setup_hours``/``family_setup_cost``
per (family, line) are the geometric means of the ``changeovers`` records
(:func:`services.features.cost.changeover_table`), held in the model as a lookup table; a pair
without records gets 0 (the planner then takes the plant's current standard).

``lot_inputs=False`` is the model without lot-size and load inputs (what was served before
issue 16): ``F`` and the premium are 0 and ``lot_unit_cost`` = ``unit_cost``;
``bench/bench_cost_model.py`` compares the two.

Loss (:func:`cost_loss`): squared error of ``log`` lot unit cost, ``log`` hours per unit and,
where recorded, ``log`` setup hours (relative errors). String lookups and normalisation are
inside the model (raw columns in). Outputs: ``[N, 8]`` in the order of
:data:`services.features.cost.COST_OUTPUTS`.
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
        lot_inputs: bool = True,
        family_setups: dict[str, list[float]] | None = None,
        init_run_cost: float = 50.0,
        init_setup_hours: float = 0.5,
        init_overtime: float = 30.0,
        setup_learned: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.lot_inputs = bool(lot_inputs)
        # False when no fit record carried its setup hours: the ``setup_hours`` output is then 0
        # (docs/model-interface.md), so the planner keeps the line's standard instead of an
        # untrained figure (the head still enters ``lot_unit_cost`` at its starting value)
        self.setup_learned = bool(setup_learned)
        fam = {str(k): [float(x) for x in v] for k, v in sorted((family_setups or {}).items())}
        self.family_keys = list(fam)
        self.family_lookup = keras.layers.StringLookup(
            vocabulary=self.family_keys or ["|"], num_oov_indices=1, name="lookup_family_setup"
        )
        rows = [[0.0, 0.0]] + ([fam[k] for k in self.family_keys] or [[0.0, 0.0]])
        self.family_values = tf.constant(np.asarray(rows, dtype=np.float32))
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
        self.run_head = keras.layers.Dense(1, kernel_initializer="zeros", name="run_head")
        self.line_run = keras.layers.Embedding(
            n_lines,
            1,
            embeddings_initializer=keras.initializers.Constant(float(np.log(init_run_cost))),
            name="line_log_run_cost",
        )
        self.setup_head = keras.layers.Dense(1, kernel_initializer="zeros", name="setup_head")
        self.line_setup = keras.layers.Embedding(
            n_lines,
            1,
            embeddings_initializer=keras.initializers.Constant(float(np.log(init_setup_hours))),
            name="line_log_setup_hours",
        )
        self.line_overtime = keras.layers.Embedding(
            n_lines,
            1,
            embeddings_initializer=keras.initializers.Constant(
                float(np.log(np.expm1(init_overtime)))
            ),
            name="line_overtime_premium",
        )
        self._config = {
            "vocabularies": self.vocabularies,
            "numeric": self.numeric,
            "means": [float(x) for x in means],
            "stds": [float(x) for x in stds],
            "hidden": list(hidden),
            "embed_dim": embed_dim,
            "init_log_hours": init_log_hours,
            "init_rate": init_rate,
            "lot_inputs": self.lot_inputs,
            "family_setups": fam,
            "init_run_cost": init_run_cost,
            "init_setup_hours": init_setup_hours,
            "init_overtime": init_overtime,
            "setup_learned": self.setup_learned,
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
        setup_hours = tf.exp(self.setup_head(h)[:, 0] + self.line_setup(line)[:, 0])
        pair = [self._string(inputs, "family_id"), self._string(inputs, "line_id")]
        family = self.family_lookup(tf.strings.join(pair, "|"))
        fam = tf.gather(self.family_values, family)
        if self.lot_inputs:
            run_cost = tf.exp(self.run_head(h)[:, 0] + self.line_run(line)[:, 0])
            premium = tf.nn.softplus(self.line_overtime(line)[:, 0])
            lot = tf.maximum(tf.reshape(tf.cast(inputs["lot_size"], tf.float32), [-1]), 1.0)
            load = tf.reshape(tf.cast(inputs["line_load"], tf.float32), [-1])
            share = tf.nn.relu(1.0 - 1.0 / tf.maximum(load, 1e-3))
            lot_unit = unit_cost + run_cost / lot + premium * share * (hours + setup_hours / lot)
        else:
            run_cost = tf.zeros_like(unit_cost)
            premium = tf.zeros_like(unit_cost)
            lot_unit = unit_cost
        setup_out = setup_hours if self.setup_learned else tf.zeros_like(setup_hours)
        return tf.stack(
            [unit_cost, hours, run_cost, setup_out, fam[:, 0], fam[:, 1], premium, lot_unit],
            axis=1,
        )


def log_mse(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
    """Squared log error of unit cost and hours per unit (the first two columns)."""
    y = tf.math.log(tf.maximum(tf.cast(y_true[:, :2], tf.float32), 1e-6))
    p = tf.math.log(tf.maximum(y_pred[:, :2], 1e-6))
    return tf.reduce_mean(tf.square(y - p), axis=-1)


def cost_loss(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
    """``y_true`` ``[N, 3]``: a record's cost per unit, hours per unit, setup hours (<= 0: not
    recorded); squared log errors against ``lot_unit_cost``, ``hours_per_unit``, ``setup_hours``."""
    y = tf.cast(y_true, tf.float32)

    def err(true: tf.Tensor, pred: tf.Tensor) -> tf.Tensor:
        return tf.square(tf.math.log(tf.maximum(true, 1e-6)) - tf.math.log(tf.maximum(pred, 1e-6)))

    recorded = tf.cast(y[:, 2] > 0, tf.float32)
    return (
        err(y[:, 0], y_pred[:, 7])
        + err(y[:, 1], y_pred[:, 1])
        + recorded * err(y[:, 2], y_pred[:, 3])
    )
