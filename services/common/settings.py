"""Core settings shared by every command and service.

Each service adds its own settings class (own env prefix) next to its code; this one holds what
all of them need: where the data directory, the store and the model repository are, and the
secret key used to pseudonymise customer identifiers. Values come from (highest first) explicit
arguments, ``TAILORLINE_*`` environment variables, files in ``TAILORLINE_SECRETS_DIR`` (a mounted
Kubernetes Secret: one file per field), then the defaults below.

The pseudonym key has no default: without one set, the home's own key file ``<home>/pseudonym_key``
(made, mode 0600, by ``tailorline up`` and ``demo``) is read; the published constant
:data:`DEV_PSEUDONYM_KEY` is used only with the explicit dev flag ``TAILORLINE_DEV_PSEUDONYM_KEY``.
Whatever needs the key calls :meth:`CoreSettings.require_pseudonym_key`, which refuses to go on
without one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.common.errors import FailedPrecondition

DEV_PSEUDONYM_KEY = "tailorline-dev-key-change-me"  # public: only with dev_pseudonym_key
PSEUDONYM_KEY_FILE = "pseudonym_key"  # in the home


def _default_home() -> Path:
    return Path(os.environ.get("TAILORLINE_HOME", "~/.tailorline")).expanduser()


class CoreSettings(BaseSettings):
    """Settings every tailorline process reads (env prefix ``TAILORLINE_``)."""

    model_config = SettingsConfigDict(
        env_prefix="TAILORLINE_",
        extra="forbid",
        secrets_dir=os.environ.get("TAILORLINE_SECRETS_DIR") or None,
    )

    home: Path = Field(
        default_factory=_default_home,
        description="Data directory: SQLite store, model repository and reports live here.",
    )
    db_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the store; default: a SQLite file <home>/tailorline.db.",
    )
    models_dir: Path | None = Field(
        default=None,
        description="Model repository folder; default: <home>/models.",
    )
    pseudonym_key: str | None = Field(
        default=None,
        description="Secret key of the keyed hash (HMAC-SHA256) that pseudonymises customer ids; "
        "must never change for a store. None: the home's key file <home>/pseudonym_key (made by "
        "`tailorline up`/`demo`), else the dev constant if dev_pseudonym_key, else none.",
    )
    dev_pseudonym_key: bool = Field(
        default=False,
        description="Development only: without a key, use the published constant key (stored "
        "pseudonyms are then re-identifiable by anyone who reads the source).",
    )
    log_level: str = Field(default="INFO", description="Python log level of every service.")
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="Log lines of every service: 'text' (the usual lines, with trace=<id>) or "
        "'json' (one JSON object per line with trace_id and span_id).",
    )
    otlp_endpoint: str = Field(
        default="",
        description="OTLP/gRPC collector every process exports its trace spans to, e.g. "
        "http://otel-collector:4317; empty: spans are made (their ids are in logs and errors) "
        "but not exported.",
    )

    @model_validator(mode="after")
    def _key_from_home(self) -> CoreSettings:
        if self.pseudonym_key is None:
            path = self.pseudonym_key_file
            if path.is_file():
                self.pseudonym_key = path.read_text(encoding="utf-8").strip() or None
            if self.pseudonym_key is None and self.dev_pseudonym_key:
                self.pseudonym_key = DEV_PSEUDONYM_KEY
        return self

    @property
    def pseudonym_key_file(self) -> Path:
        """The home's own key file (``tailorline up``/``demo`` make it, mode 0600)."""
        return self.home / PSEUDONYM_KEY_FILE

    def require_pseudonym_key(self) -> str:
        """The pseudonym key, or FailedPrecondition saying how to provide one."""
        if not self.pseudonym_key:
            raise FailedPrecondition(
                "no pseudonym key: set TAILORLINE_PSEUDONYM_KEY, mount the Secret "
                "(TAILORLINE_SECRETS_DIR), or let `tailorline up`/`demo` create "
                f"{self.pseudonym_key_file}; TAILORLINE_DEV_PSEUDONYM_KEY=true uses the public "
                "development key",
                field="pseudonym_key",
            )
        return self.pseudonym_key

    @property
    def resolved_db_url(self) -> str:
        return self.db_url or f"sqlite:///{self.home / 'tailorline.db'}"

    @property
    def resolved_models_dir(self) -> Path:
        return self.models_dir or self.home / "models"
