"""Model: the demand and cost models, their training, and retraining with champion/challenger.

- ``demand_model``, ``cost_model``: the Keras models; ``train``: one training of each (time split,
  early stopping, hold-out metrics); ``metrics``: forecast metrics and the baselines;
  ``run``: ``tailorline train`` end to end (store -> both models -> registry).
- ``fit`` (plain, no Ray) trains one configuration; ``search`` runs it under Ray Tune; ``job`` is a
  retraining job end to end; ``champion`` scores challenger and champion on the same hold-out and
  asks the registry to promote only a better one; ``launch`` says where a job runs (local Ray job,
  KubeRay RayJob); ``retraining`` submits and follows jobs for the gateway.

TensorFlow and Ray are imported only by the modules that build, train or search.
"""
