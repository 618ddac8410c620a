"""Model: the demand and cost models, their training, and retraining with champion/challenger.

- ``demand_model``, ``cost_model``: the Keras models; ``train``: one training of each (time split,
  early stopping, hold-out metrics); ``metrics``: forecast metrics and the baselines;
  ``run``: ``tailorline train`` end to end (store -> both models -> registry).
- ``fit`` (plain, no Ray) trains one configuration; ``search`` runs it under Ray Tune (``space``
  parses a search space given by a user); ``job`` is a retraining job end to end; ``champion``
  scores challenger and champion on the same hold-out and has the registry promote only a better
  one; ``launch`` says where a job runs (local Ray job, KubeRay RayJob); ``retraining`` submits
  and follows jobs for the gateway and runs its feedback trigger.
- ``commands``: the ``train`` and ``retrain`` CLI commands (the only typer module here).

The job rows are the store's (:mod:`services.store.jobs`); publishing and serving a version are
the registry's (:mod:`services.registry.publish`, :func:`services.registry.promote.promote`).
TensorFlow and Ray are imported only by the modules that build, train or search (``train``,
``search``, ``launch`` and ``champion`` import them inside the functions that need them), so the
gateway can import ``launch`` and ``retraining`` without either.
"""
