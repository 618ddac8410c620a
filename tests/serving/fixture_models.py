"""Tiny demand and cost models that follow docs/model-interface.md, for serving tests and bench.

Each is a small Keras network with a ``StringLookup`` inside (so the server receives raw string
columns), saved as a SavedModel whose ``serving_default`` signature takes named 1-D tensors, plus
``metadata.json`` and the ``current`` pointer, through the training engineer's
:class:`services.registry.repository.ModelRepository`. Weights come from a seed: a different seed
is a different "version" with different predictions. Nothing is trained: serving only needs a
deterministic function of the inputs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from services.registry.repository import ModelRepository

FAMILIES = ["F01", "F02", "F03", "F04"]
FABRICS = ["cotton", "denim", "linen", "wool"]
LINES = ["L1", "L2", "L3"]

DEMAND_INPUTS = {
    "family_id": "string",
    "attr_fabric": "string",
    "week_of_year": "float32",
    "list_price": "float32",
}
COST_INPUTS = {
    "family_id": "string",
    "line_id": "string",
    "attr_fabric": "string",
    "list_price": "float32",
}
OUTPUTS = {
    "demand": {"quantiles": ("float32", [-1, 3])},
    "cost": {"unit_cost": ("float32", [-1]), "hours_per_unit": ("float32", [-1])},
}


def _build_module(name: str, seed: int) -> Any:
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    columns = DEMAND_INPUTS if name == "demand" else COST_INPUTS
    vocab = {"family_id": FAMILIES, "attr_fabric": FABRICS, "line_id": LINES}

    class Served(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lookups = {
                c: keras.layers.StringLookup(vocabulary=vocab[c], output_mode="one_hot")
                for c, t in columns.items()
                if t == "string"
            }
            self.hidden = keras.layers.Dense(16, activation="relu")
            self.head = keras.layers.Dense(3 if name == "demand" else 2)

        def features(self, inputs: dict[str, tf.Tensor]) -> tf.Tensor:
            parts = []
            for c, t in sorted(columns.items()):
                if t == "string":
                    parts.append(tf.cast(self.lookups[c](inputs[c]), tf.float32))
                else:
                    parts.append(tf.expand_dims(inputs[c] / 100.0, -1))
            return tf.concat(parts, axis=-1)

        @tf.function(
            input_signature=[
                {
                    c: tf.TensorSpec([None], tf.string if t == "string" else tf.float32, name=c)
                    for c, t in columns.items()
                }
            ]
        )
        def serve(self, inputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
            raw = self.head(self.hidden(self.features(inputs)))
            if name == "demand":
                p50 = 10.0 * tf.nn.softplus(raw[:, 1])
                low = p50 - 3.0 * tf.nn.softplus(raw[:, 0])
                high = p50 + 3.0 * tf.nn.softplus(raw[:, 2])
                return {"quantiles": tf.stack([tf.maximum(low, 0.0), p50, high], axis=1)}
            return {
                "unit_cost": 5.0 + tf.nn.softplus(raw[:, 0]),
                "hours_per_unit": 0.1 + 0.1 * tf.nn.softplus(raw[:, 1]),
            }

    module = Served()
    # Build the layers once so that their variables exist before saving.
    module.serve(sample_inputs(name, 2))
    return module


def sample_inputs(name: str, rows: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Random but valid raw feature columns for ``name`` (strings as object arrays of bytes)."""
    rng = np.random.default_rng(seed)
    columns = DEMAND_INPUTS if name == "demand" else COST_INPUTS
    vocab = {"family_id": [*FAMILIES, "F99"], "attr_fabric": FABRICS, "line_id": LINES}
    out: dict[str, np.ndarray] = {}
    for c, t in columns.items():
        if t == "string":
            values = rng.choice(vocab[c], size=rows)
            out[c] = np.array([v.encode() for v in values], dtype=np.object_)
        elif c == "week_of_year":
            out[c] = rng.integers(1, 53, size=rows).astype(np.float32)
        else:
            out[c] = rng.uniform(20.0, 120.0, size=rows).astype(np.float32)
    return out


def write_version(root: Path, name: str, seed: int, *, make_current: bool = True) -> int:
    """Save a new version of ``name`` into the repository at ``root``; return its number."""
    import tensorflow as tf

    repo = ModelRepository(Path(root))
    version, vdir = repo.create_version(name)
    module = _build_module(name, seed)
    tf.saved_model.save(
        module,
        str(vdir / "saved_model"),
        signatures={"serving_default": module.serve.get_concrete_function()},
    )
    columns = DEMAND_INPUTS if name == "demand" else COST_INPUTS
    metadata = {
        "name": name,
        "version": version,
        "inputs": [{"name": c, "dtype": t, "shape": [-1]} for c, t in columns.items()],
        "outputs": [{"name": o, "dtype": t, "shape": s} for o, (t, s) in OUTPUTS[name].items()],
        "fixture": {"seed": seed},
    }
    repo.write_metadata(name, version, metadata)
    if make_current:
        repo.set_current(name, version)
    return version


def build_repository(root: Path, seed: int = 1) -> Path:
    """Version 1 of both models, served."""
    for name in ("demand", "cost"):
        write_version(root, name, seed)
    return root
