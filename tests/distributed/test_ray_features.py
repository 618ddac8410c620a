"""Features on Ray Data from the Parquet export equal the single-process features.

On the ``small`` preset (150 variants, 78 weeks, ~20k orders in 5 Parquet files): the panel's
arrays, the skipped-row counts and every training row (keys, strings, float32 features, ``y``)
are compared exactly. ``small`` is the smallest preset with several order blocks per variant and
every attribute; it takes ~10 s on Ray after the module's Ray is up.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ARRAYS = ("demand", "cum_demand", "cum_on_sale", "first_sale", "fam_per_variant", "market",
          "cum_rating_n", "cum_rating_sum", "price_ratio", "promo", "on_sale")  # fmt: skip


@pytest.fixture(scope="module")
def both_panels(small_export, local_ray):
    from services.features import observed
    from services.features.demand import build_panel
    from services.store.db import make_engine
    from services.store.frames import load_frames
    from services.training.ray_features import panel_from_export

    engine = make_engine(small_export.db_url)
    try:
        frames = load_frames(engine)
    finally:
        engine.dispose()
    single = observed.attach(build_panel(frames), frames)
    distributed, _ = panel_from_export(small_export.parquet)
    return single, distributed


def test_panel_from_ray_data_equals_the_pandas_panel(both_panels) -> None:
    single, distributed = both_panels
    assert distributed.n_weeks == single.n_weeks == 78
    assert distributed.first_week == single.first_week
    for name in ARRAYS:
        np.testing.assert_array_equal(getattr(distributed, name), getattr(single, name), name)
    pd.testing.assert_frame_equal(distributed.variants, single.variants)
    assert distributed.skipped == single.skipped
    assert single.demand.sum() > 10_000  # the orders made it through


def test_training_rows_from_ray_data_equal_build_training_frame(both_panels) -> None:
    from services.features.demand import build_training_frame
    from services.training.ray_features import sorted_frame, to_frame, training_dataset
    from services.training.train import observed_rows

    single, distributed = both_panels
    train_end = single.n_weeks - 1 - 13
    want = observed_rows(
        single,
        build_training_frame(
            single, horizon=13, until_week=single.week_at(train_end), origin_stride=2
        ),
    )
    ds = training_dataset(
        distributed, horizon=13, until_idx=train_end, first_origin_weeks=8, origin_stride=2,
        blocks=5,
    )  # fmt: skip
    got = to_frame(ds)
    assert len(got) == len(want) > 30_000
    pd.testing.assert_frame_equal(got, sorted_frame(want))
