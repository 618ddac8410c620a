"""The model repository and the one owner of "which version is served".

- ``repository``: a folder of versioned SavedModels shared by training and serving (standard
  library only: the predictor imports it, and nothing else of this package);
- ``publish``: a trained model into the repository (``publish``) and its row in the store's
  ``model_versions`` (``register_version``), as a candidate;
- ``promote``: :func:`~services.registry.promote.promote`, the only writer of the served version
  (the store's ``model_versions.status`` and the repository's ``current``, which is
  authoritative).

The package names its modules and imports none of them here, so that the predictor's import of
``services.registry.repository`` does not pull in the store (SQLAlchemy) or TensorFlow.
"""
