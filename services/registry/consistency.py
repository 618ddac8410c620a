"""The store and the model folder must tell the same story before anything is trained.

Version numbers are allocated by the model repository (``mkdir`` of the next number) and recorded
in the store's ``model_versions`` (unique per name and version). Pointing a used store at a fresh
``--models`` folder makes the repository hand out version 1 again, which the store already holds:
training would run for minutes and then fail on the unique key. The reverse (a used folder on a
fresh store) serves versions the store has never heard of. :func:`check_versions` finds both
before training starts and says what to do.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from services.common.errors import FailedPrecondition
from services.registry.repository import ModelRepository
from services.store.models import list_versions


def _span(versions: list[int]) -> str:
    if not versions:
        return "none"
    return f"{versions[0]}" if len(versions) == 1 else f"{versions[0]}..{versions[-1]}"


def check_versions(engine: Any, repo: ModelRepository, names: Iterable[str]) -> None:
    """FailedPrecondition (field ``models``) when the store and the repository disagree about
    the versions of any model in ``names``: the store knows a version the repository would hand
    out again, or the repository holds versions the store has no row for. No store: nothing to
    check."""
    if engine is None:
        return
    for name in names:
        stored = sorted(int(r.version) for r in list_versions(engine, name))
        held = repo.versions(name)
        nxt = repo.next_version(name)
        clash = [v for v in stored if v >= nxt]
        unknown = sorted(set(held) - set(stored))
        if clash:
            raise FailedPrecondition(
                f"the store records {name} versions {_span(stored)} but the model folder "
                f"{repo.root} holds {_span(held)}: the next version ({nxt}) is taken. Use the "
                "model folder this store was trained into (--models), or a fresh store (--db)",
                field="models",
            )
        if unknown:
            raise FailedPrecondition(
                f"the model folder {repo.root} holds {name} versions {_span(unknown)} that the "
                f"store does not record (it has {_span(stored)}): it belongs to another store. "
                "Use that store (--db), or a fresh model folder (--models)",
                field="models",
            )
