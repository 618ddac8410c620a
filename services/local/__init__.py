"""Running tailorline on one machine.

- :mod:`services.local.bootstrap`: ``bootstrap_home()``, the one set-up of a fresh home (datagen,
  migrate, ingest, train) that the demo, the simulator and ``tailorline up`` use;
- :mod:`services.local.stack`: ``LocalStack``, predictor, optimizer and gateway as child processes;
- :mod:`services.local.commands`: ``tailorline up``.

Nothing is imported here, so that the light ``commands`` module stays light.
"""
