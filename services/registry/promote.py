"""Promotion: the one owner of "which version is served".

Two places say which version of a model is served: the repository's ``<models>/<name>/current``
file and the store's ``model_versions.status``. :func:`promote` is the only code that changes
either (``tailorline train``, a retraining job's champion/challenger decision, tests), and it
writes both in one order:

1. in one store transaction the served row becomes ``retired`` and ``version``'s row ``served``;
2. ``current`` is replaced atomically (temporary file + ``os.replace``) inside that transaction,
   just before its commit;
3. the commit.

A failure before step 2 changes neither (the transaction rolls back); a failure of step 2 rolls
the transaction back too. The one window left is a crash between step 2 and the commit, or a
commit that fails: then ``current`` names the new version and the store still the old one.

**``current`` is authoritative.** The predictor serves what ``current`` names (it reads only the
repository: on Kubernetes a volume, without access to the store), so that is what is served; the
store's ``status`` is the record of it. A disagreement is reported by ``ModelService.ListModels``,
which gives each version both its store ``status`` and ``served`` from ``current``; it is
resolved by promoting again the version ``current`` names (``promote`` is idempotent).
"""

from __future__ import annotations

from sqlalchemy import Engine

from services.common.errors import FailedPrecondition
from services.registry.repository import ModelRepository
from services.store import models


def promote(engine: Engine | None, repo: ModelRepository, name: str, version: int) -> None:
    """Serve ``version`` of model ``name``: the store's registry, then ``current``.

    ``version`` must be complete in ``repo`` (NotFound otherwise) and, with a store, registered
    in it (:func:`services.registry.publish.register_version`; FailedPrecondition otherwise).
    ``engine=None`` (training from a folder, without a store) moves ``current`` alone.
    """
    if engine is None:
        repo.set_current(name, version)
        return
    with engine.begin() as conn:
        if not models.set_served(conn, name, version):
            raise FailedPrecondition(
                f"model {name!r} version {version} is not registered in the store",
                field="version",
            )
        repo.set_current(name, version)  # last: the commit follows at once
