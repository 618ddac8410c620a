"""The demand model on Ray Train with 2 local workers (MultiWorkerMirroredStrategy) trains,
early-stops like the single-process fit and scores the same hold-out rows about as well."""

from __future__ import annotations

from dataclasses import replace

import pytest

from services.common.errors import InvalidArgument

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_two_workers_train_the_demand_model(tiny_export, local_ray) -> None:
    from services.training.distributed import DistributedConfig, train_demand_distributed
    from services.training.ray_features import panel_from_export
    from services.training.train import TrainConfig, train_demand

    panel, _ = panel_from_export(tiny_export.parquet)
    cfg = TrainConfig(seed=3, holdout_weeks=6, epochs=4, origin_stride=2)
    dist = train_demand_distributed(panel, cfg, DistributedConfig(workers=2))
    # like with like: the distributed hold-out fit is not refit on the validation weeks
    single = train_demand(panel, replace(cfg, refit_validation=False))

    info = dist.info
    assert info["distributed"]["workers"] == 2
    assert info["rows"] == single.info["rows"]  # the same fit rows, counted on Ray Data
    assert 1 <= info["epochs"] <= 4 and len(info["history"]) == info["epochs"]
    assert all(h["val_loss"] > 0 for h in info["history"])
    # the same hold-out rows, scored by the same code
    assert dist.metrics["model"]["rows"] == single.metrics["model"]["rows"] > 0
    wd, ws = dist.metrics["model"]["wape"], single.metrics["model"]["wape"]
    assert abs(wd - ws) <= 0.05 * ws, (wd, ws)
    q = dist.metrics["model"]["coverage_p10_p90"]
    assert 0.5 <= q <= 1.0


def test_worker_count_is_checked() -> None:
    from services.training.distributed import DistributedConfig

    with pytest.raises(InvalidArgument) as err:
        DistributedConfig(workers=0)
    assert err.value.field == "workers"


def test_train_workers_publishes_and_serves_the_distributed_model(
    tiny_export, local_ray, tmp_path, capsys
) -> None:
    import json

    from services.cli import main
    from services.registry.repository import ModelRepository

    models = tmp_path / "models"
    main(
        ["--db", tiny_export.db_url, "--models", str(models), "train", "--workers", "2",
         "--holdout-weeks", "6", "--epochs", "2", "--parquet", str(tmp_path / "export"), "--json"]
    )  # fmt: skip
    report = json.loads(capsys.readouterr().out)
    assert report["distributed"]["workers"] == 2
    assert report["demand"]["model"]["wape"] > 0
    repo = ModelRepository(models)
    assert repo.current("demand") == report["versions"]["demand"]
    assert (tmp_path / "export" / "orders").is_dir()


def test_train_workers_refuses_a_data_folder(tmp_path, capsys) -> None:
    from services.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--workers", "2", "--data", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "error: workers: --workers trains from the store, not --data" in capsys.readouterr().err
