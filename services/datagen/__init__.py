"""The synthetic manufacturer: a documented generative model with ground truth.

Public surface: :class:`World` (truth + outcomes, advanced week by week by the simulator),
:func:`generate` / :func:`build_dataset` (a whole data set in the ingest format), the presets.
See docs/synthetic-data.md for the equations and parameter values.
"""

from services.datagen.generate import (
    TABLE_COLUMNS,
    TRUTH_COLUMNS,
    Dataset,
    DatasetSummary,
    build_dataset,
    generate,
)
from services.datagen.presets import PRESETS, Preset, get_preset
from services.datagen.world import OrderBatch, WeekOutcome, World

__all__ = [
    "PRESETS",
    "TABLE_COLUMNS",
    "TRUTH_COLUMNS",
    "Dataset",
    "DatasetSummary",
    "OrderBatch",
    "Preset",
    "WeekOutcome",
    "World",
    "build_dataset",
    "generate",
    "get_preset",
]
