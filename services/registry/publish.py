"""Publishing a trained model: SavedModel + metadata into the repository, a row in the store.

``export_saved_model`` writes a ``tf.saved_model`` whose ``serving_default`` signature takes the
raw feature columns as named 1-D tensors (docs/model-interface.md). ``publish`` allocates the next
version, exports and writes ``metadata.json`` last (that marks the version complete).
``register_version`` records it in the store's ``model_versions`` table as a ``candidate``.
Neither serves it: that is :func:`services.registry.promote.promote`'s alone.
"""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from services.common.quantiles import QUANTILES
from services.features.cost import COST_OUTPUTS
from services.registry.repository import ModelRepository
from services.store import models

OUTPUTS: dict[str, list[dict[str, Any]]] = {
    "demand": [
        {
            "name": "quantiles",
            "dtype": "float32",
            "shape": [-1, len(QUANTILES)],
            "quantiles": list(QUANTILES),
        }
    ],
    "cost": [{"name": name, "dtype": "float32", "shape": [-1]} for name in COST_OUTPUTS],
}


def code_version() -> str:
    """The git commit of the code (``-dirty`` when the tree has changes), or ``unknown``."""
    root = Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            [
                "git",
                "status",
                "--porcelain",
                "--",
                "services/features",
                "services/training",
                "services/predictor",
            ],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (sha + ("-dirty" if dirty else "")) if sha else "unknown"


def export_saved_model(model: Any, name: str, inputs: list[tuple[str, str]], path: Path) -> None:
    """Save ``model`` with a ``serving_default`` signature of named ``[N]`` tensors."""
    import tensorflow as tf

    spec = {
        col: tf.TensorSpec([None], tf.string if dtype == "string" else tf.float32, name=col)
        for col, dtype in inputs
    }

    def serve(features: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        out = model(features, training=False)
        if name == "demand":
            return {"quantiles": tf.identity(out, name="quantiles")}
        return {name: out[:, i] for i, name in enumerate(COST_OUTPUTS)}

    import keras

    archive = keras.export.ExportArchive()
    archive.track(model)
    for layer in model._flatten_layers(include_self=False):
        # Keras finds lookup tables by walking what is tracked; that walk does not descend into a
        # subclassed model whose call() takes a dict, so track each lookup layer itself.
        if isinstance(layer, keras.layers.StringLookup) and layer.built:
            archive.track(layer)
    archive.add_endpoint(name="serving_default", fn=serve, input_signature=[spec])
    archive.write_out(str(path), verbose=False)


def publish(
    repo: ModelRepository,
    name: str,
    model: Any,
    inputs: list[tuple[str, str]],
    metadata: dict[str, Any],
) -> int:
    """Export into the next version directory, write metadata last; the new version's number.

    The version is not served: :func:`services.registry.promote.promote` does that.
    """
    version, _vdir = repo.create_version(name)
    export_saved_model(model, name, inputs, repo.saved_model_dir(name, version))
    meta = {
        "name": name,
        "version": version,
        "created_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "inputs": [{"name": c, "dtype": d, "shape": [-1]} for c, d in inputs],
        "outputs": OUTPUTS[name],
        "code_version": code_version(),
        **metadata,
    }
    repo.write_metadata(name, version, meta)
    return version


def register_version(engine: Engine, repo: ModelRepository, name: str, version: int) -> None:
    """Record a published version in the store's ``model_versions`` table as a ``candidate``."""
    meta = repo.read_metadata(name, version)
    rng = meta.get("data_range", {})
    models.insert_version(
        engine,
        name=name,
        version=version,
        path=str(repo.version_dir(name, version)),
        metrics=meta.get("metrics"),
        data_start=_date(rng.get("first_week")),
        data_end=_date(rng.get("train_until")),
    )


def _date(value: Any) -> dt.date | None:
    return dt.date.fromisoformat(str(value)[:10]) if value else None
