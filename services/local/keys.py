"""The home's own pseudonym key: random, made once, readable by its owner only.

``tailorline up`` and ``demo`` (through :func:`services.local.bootstrap.bootstrap_home`) call
:func:`ensure_pseudonym_key`: a home without a configured key gets ``<home>/pseudonym_key`` (32
random bytes, hex, file mode 0600) on first use, and every process of the stack reads it from
there (:class:`services.common.settings.CoreSettings`). A key set through the environment or a
mounted Secret always wins; the key file is never rewritten, so stored pseudonyms stay stable.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat

from services.common.settings import CoreSettings


def ensure_pseudonym_key(core: CoreSettings) -> CoreSettings:
    """``core`` with a pseudonym key: its own, else the home's key file, made now if missing."""
    path = core.pseudonym_key_file
    if core.pseudonym_key:  # configured, the home's file, or the explicit dev flag's constant
        _owner_only(core)
        return core
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # made by a concurrent first use: read that one
        key = path.read_text(encoding="utf-8").strip()
    else:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(key + "\n")
    return core.model_copy(update={"pseudonym_key": key})


def _owner_only(core: CoreSettings) -> None:
    """A key file others can read is made owner-only (it may have been copied in by hand)."""
    path = core.pseudonym_key_file
    with contextlib.suppress(OSError):
        if path.is_file() and stat.S_IMODE(path.stat().st_mode) & 0o077:
            path.chmod(0o600)
