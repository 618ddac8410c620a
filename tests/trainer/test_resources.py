"""What a Tune trial and the final refit ask Ray for: a GPU share only where the cluster has one."""

from __future__ import annotations

from services.training.search import refit_resources, trial_resources


def test_cpu_only_clusters_ask_for_cpu_only() -> None:
    assert trial_resources({"CPU": 16.0}, trials=8) == {"cpu": 1}
    assert trial_resources({"CPU": 2.0, "GPU": 0.0}, trials=4) == {"cpu": 1}
    assert refit_resources({"CPU": 2.0}) == {"num_cpus": 1}


def test_gpu_clusters_share_their_gpus_among_the_trials_that_run_at_once() -> None:
    # one GPU, 4 trials on 16 CPUs: a quarter each, all four run at once on the one GPU
    assert trial_resources({"CPU": 16.0, "GPU": 1.0}, trials=4) == {"cpu": 1, "gpu": 0.25}
    # one GPU, 8 trials: never below a quarter (the rest queue rather than crowd the GPU)
    assert trial_resources({"CPU": 16.0, "GPU": 1.0}, trials=8) == {"cpu": 1, "gpu": 0.25}
    # two GPUs, 2 trials: a whole GPU each
    assert trial_resources({"CPU": 16.0, "GPU": 2.0}, trials=2) == {"cpu": 1, "gpu": 1.0}
    # one GPU, 3 trials on 2 CPUs: 2 at once, half a GPU each
    assert trial_resources({"CPU": 2.0, "GPU": 1.0}, trials=3) == {"cpu": 1, "gpu": 0.5}
    assert refit_resources({"CPU": 16.0, "GPU": 1.0}) == {"num_cpus": 1, "num_gpus": 1}
