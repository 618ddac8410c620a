"""The home's own secrets: random, made once, readable by their owner only.

``tailorline up``, ``demo`` (through :func:`services.local.bootstrap.bootstrap_home`) and
``ingest`` into the home's own store call :func:`ensure_pseudonym_key`: a home without a configured
key gets ``<home>/pseudonym_key`` (32
random bytes, hex, file mode 0600) on first use, and every process of the stack reads it from
there (:class:`services.common.settings.CoreSettings`). A key set through the environment or a
mounted Secret always wins; the key file is never rewritten, so stored pseudonyms stay stable.

The local stack's Ray (the optimizer's, which runs retraining jobs) takes a token the same way:
:func:`ensure_ray_auth_token` makes ``<home>/ray_auth_token`` (0600) once; the optimizer starts Ray
with ``RAY_AUTH_MODE=token`` and that file, so its job API, dashboard and GCS refuse callers
without it, and the gateway and ``LocalStack.stop_ray_jobs`` send it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
import tempfile
from pathlib import Path

from services.common.errors import FailedPrecondition
from services.common.settings import DEV_PSEUDONYM_KEY, CoreSettings

#: the home's Ray token file (``LocalStack`` hands it to the optimizer and the gateway)
RAY_AUTH_TOKEN_FILE = "ray_auth_token"


def ensure_pseudonym_key(core: CoreSettings) -> CoreSettings:
    """``core`` with a pseudonym key: its own, else the home's key file, made now if missing.

    A home whose own store already holds data but has no key file was filled by an earlier
    version with the public development key: a new random key would give the same customers new
    pseudonyms, so that is refused with what to do instead."""
    path = core.pseudonym_key_file
    if core.pseudonym_key:  # configured, the home's file, or the explicit dev flag's constant
        _owner_only(path)
        return core
    if path.exists():
        raise FailedPrecondition(
            f"the key file {path} is empty: restore the key the store was made with, or remove "
            "the file and the store to start afresh",
            field="pseudonym_key",
        )
    store = core.home / "tailorline.db"
    if core.db_url is None and store.is_file() and store.stat().st_size > 0:
        raise FailedPrecondition(
            f"the store {store} was filled before this home had its own key (earlier versions "
            f"used the public development key): write that key ({DEV_PSEUDONYM_KEY!r}) to {path} "
            "to keep the stored pseudonyms, set TAILORLINE_PSEUDONYM_KEY to the key it was made "
            "with, or start a fresh home",
            field="pseudonym_key",
        )
    return core.model_copy(update={"pseudonym_key": _secret_file(path)})


def ensure_ray_auth_token(home: Path) -> Path:
    """``<home>/ray_auth_token``: made now (32 random bytes, hex, mode 0600) if missing, never
    rewritten (a running Ray keeps the token it started with); made owner-only if it was not."""
    path = Path(home) / RAY_AUTH_TOKEN_FILE
    if path.exists():
        _owner_only(path)
    else:
        _secret_file(path)
    return path


def _secret_file(path: Path) -> str:
    """Create ``path`` (0600) with a fresh random secret and return it; if a concurrent first use
    made it meanwhile, return that one's. The secret is written to a private temporary file first
    and linked into place, so ``path`` never exists half-written (not even after a crash)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_hex(32)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(secret + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:  # made by a concurrent first use: read that one
            return path.read_text(encoding="utf-8").strip()
    finally:
        os.unlink(tmp)
    return secret


def _owner_only(path: Path) -> None:
    """A secret file others can read is made owner-only (it may have been copied in by hand)."""
    with contextlib.suppress(OSError):
        if path.is_file() and stat.S_IMODE(path.stat().st_mode) & 0o077:
            path.chmod(0o600)
