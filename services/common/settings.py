"""Core settings shared by every command and service.

Each service adds its own settings class (own env prefix) next to its code; this one holds what
all of them need: where the data directory, the store and the model repository are, and the
secret key used to pseudonymise customer identifiers. Values come from (highest first) explicit
arguments, ``TAILORLINE_*`` environment variables, files in ``TAILORLINE_SECRETS_DIR`` (a mounted
Kubernetes Secret: one file per field), then the defaults below.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


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
    pseudonym_key: str = Field(
        default="tailorline-dev-key-change-me",
        description="Secret key of the keyed hash (HMAC-SHA256) that pseudonymises customer ids.",
    )
    log_level: str = Field(default="INFO", description="Python log level of every service.")

    @property
    def resolved_db_url(self) -> str:
        return self.db_url or f"sqlite:///{self.home / 'tailorline.db'}"

    @property
    def resolved_models_dir(self) -> Path:
        return self.models_dir or self.home / "models"
