"""A store-ingested promotion in a plan's future week reaches the demand model's inputs for that
week (issue 14: the planned price and promotions are known-future inputs of the forecast): the
calendar goes datagen -> ingest -> store -> the plan's store view -> the features sent to the
served model. No model server: the predict call records what it was sent."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine

from services.common.quantiles import QUANTILES
from services.common.settings import CoreSettings
from services.ingest import ingest_dir
from services.planning.service import Planner
from tests.planning.stores import tiny_store

WEEK = pd.Timedelta(days=7)
HORIZON = 6


@pytest.fixture()
def home(tmp_path: Path) -> Iterator[tuple[Path, Engine]]:
    engine, report = tiny_store(tmp_path)
    counts = {t.table: t for t in report.tables}["variant_weeks"]
    assert counts.loaded > 0 and counts.rejected == 0
    yield tmp_path, engine
    engine.dispose()


class _Recorder:
    """The served model's predict: records the input tensors, answers zero quantiles."""

    def __init__(self) -> None:
        self.sent: list[dict[str, np.ndarray]] = []

    def __call__(self, model: str, arrays: dict[str, np.ndarray]) -> tuple[dict[str, Any], int]:
        self.sent.append(arrays)
        n = len(next(iter(arrays.values())))
        return {"quantiles": np.zeros((n, len(QUANTILES)))}, 1


def _inputs(planner: Planner, variant: str, recorder: _Recorder) -> pd.DataFrame:
    _origin, table, _ = planner.forecast([variant], "", HORIZON)
    sent = recorder.sent[-1]
    return pd.DataFrame(
        {
            "target_week": table["target_week"].to_numpy(),
            "promo": sent["promo"],
            "price_ratio": sent["price_ratio"],
        }
    ).set_index("target_week")


def test_a_planned_promotion_in_a_future_week_is_the_forecasts_input_for_that_week(
    home: tuple[Path, Engine],
) -> None:
    folder, engine = home
    recorder = _Recorder()
    planner = Planner(
        engine,
        predict=lambda _deadline: recorder,
        inputs=lambda _model, _deadline: [("promo", "float32"), ("price_ratio", "float32")],
        solve=None,  # type: ignore[arg-type]
    )
    view = planner.store_view()
    assert view.last_order_week is not None
    variants = view.frames["variants"]
    variant = str(variants["variant_id"].iloc[0])
    list_price = float(variants["list_price"].iloc[0])
    # datagen's calendar for the weeks after the history: list price, no promotion
    before = _inputs(planner, variant, recorder)
    assert len(before) == HORIZON
    assert before["promo"].eq(0).all() and before["price_ratio"].eq(1).all()

    # the plan's third week goes on promotion at 80% of the list price (a revised calendar)
    target = view.last_order_week + 3 * WEEK
    revised = folder / "revised"
    revised.mkdir()
    (revised / "variant_weeks.csv").write_text(
        "variant_id,week,price,promo\n"
        f"{variant},{(target + pd.Timedelta(days=2)).date()},{0.8 * list_price:.2f},1\n"
    )
    report = ingest_dir(revised, engine, CoreSettings(home=folder))
    assert {t.table: t.updated for t in report.tables}["variant_weeks"] == 1

    after = _inputs(planner, variant, recorder)  # a new import: the plan reads the store again
    assert after.loc[target, "promo"] == 1.0
    assert after.loc[target, "price_ratio"] == pytest.approx(0.8, abs=1e-3)
    others = after.drop(index=target)
    assert others["promo"].eq(0).all() and others["price_ratio"].eq(1).all()
    # the promotion's week is the only target week whose inputs changed
    changed = (before != after).any(axis=1)
    assert list(changed[changed].index) == [target]
