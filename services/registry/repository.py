"""The model repository: a folder of versioned SavedModels, shared by training and serving.

Layout (see docs/model-interface.md)::

    <models>/<name>/<version>/saved_model/   tf.saved_model with a ``serving_default`` signature
    <models>/<name>/<version>/metadata.json  name, version, inputs, outputs, metrics, ...
    <models>/<name>/current                  text file: the served version number

A version directory is *complete* once ``metadata.json`` exists: training writes the SavedModel
first and the metadata last (atomically), so a reader never sees a half-written version.
``current`` is replaced atomically (write a temporary file, then ``os.replace``). Version numbers
are integers 1, 2, 3, ... allocated with ``os.mkdir`` so two writers never get the same one.

Pure standard library: the server, the trainer and the CLI all import it cheaply.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.common.errors import InvalidArgument, NotFound

MODEL_NAMES = ("demand", "cost")
METADATA_FILE = "metadata.json"
SAVED_MODEL_DIR = "saved_model"
CURRENT_FILE = "current"


def _atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class ModelRepository:
    """A model repository rooted at ``root`` (a folder, or a mounted PVC in Kubernetes)."""

    root: Path

    # -- paths ---------------------------------------------------------------------------------
    def model_dir(self, name: str) -> Path:
        if not name or "/" in name or name.startswith("."):
            raise InvalidArgument(f"bad model name {name!r}", field="model")
        return Path(self.root) / name

    def version_dir(self, name: str, version: int) -> Path:
        return self.model_dir(name) / str(int(version))

    def saved_model_dir(self, name: str, version: int) -> Path:
        return self.version_dir(name, version) / SAVED_MODEL_DIR

    # -- listing -------------------------------------------------------------------------------
    def names(self) -> list[str]:
        """Models that have at least one complete version."""
        root = Path(self.root)
        if not root.is_dir():
            return []
        return sorted(p.name for p in root.iterdir() if p.is_dir() and self.versions(p.name))

    def versions(self, name: str) -> list[int]:
        """Complete versions (those with metadata.json), ascending."""
        base = self.model_dir(name)
        if not base.is_dir():
            return []
        out = []
        for p in base.iterdir():
            if p.is_dir() and p.name.isdigit() and (p / METADATA_FILE).is_file():
                out.append(int(p.name))
        return sorted(out)

    def latest(self, name: str) -> int | None:
        vs = self.versions(name)
        return vs[-1] if vs else None

    def next_version(self, name: str) -> int:
        """The number the next version would get (1 + the highest directory, complete or not)."""
        base = self.model_dir(name)
        nums = [int(p.name) for p in base.iterdir() if p.name.isdigit()] if base.is_dir() else []
        return max(nums, default=0) + 1

    def create_version(self, name: str) -> tuple[int, Path]:
        """Allocate a new version directory (race-free: ``mkdir`` fails if it exists)."""
        self.model_dir(name).mkdir(parents=True, exist_ok=True)
        while True:
            version = self.next_version(name)
            path = self.version_dir(name, version)
            try:
                path.mkdir()
            except FileExistsError:
                continue
            return version, path

    # -- metadata ------------------------------------------------------------------------------
    def read_metadata(self, name: str, version: int) -> dict[str, Any]:
        path = self.version_dir(name, version) / METADATA_FILE
        if not path.is_file():
            raise NotFound(f"model {name!r} has no version {version}", field="version")
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return data

    def write_metadata(self, name: str, version: int, metadata: dict[str, Any]) -> Path:
        """Write metadata.json last: this marks the version complete."""
        path = self.version_dir(name, version) / METADATA_FILE
        _atomic_write_text(path, json.dumps(metadata, indent=2, sort_keys=True, default=str))
        return path

    # -- the served version --------------------------------------------------------------------
    def current(self, name: str) -> int | None:
        """The served version, or ``None`` when none was set (callers may fall back to latest)."""
        path = self.model_dir(name) / CURRENT_FILE
        try:
            text = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        return int(text) if text.isdigit() else None

    def served_version(self, name: str) -> int | None:
        """``current`` if set, else the latest complete version."""
        cur = self.current(name)
        return cur if cur is not None else self.latest(name)

    def set_current(self, name: str, version: int) -> None:
        """Make ``version`` the served one (atomic; the version must be complete)."""
        if int(version) not in self.versions(name):
            raise NotFound(f"model {name!r} has no complete version {version}", field="version")
        _atomic_write_text(self.model_dir(name) / CURRENT_FILE, f"{int(version)}\n")
