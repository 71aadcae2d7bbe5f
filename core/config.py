"""Settings read from the environment (``KIGEN_*``); see ``.env.example``.

Nothing is required to start the terminal chat: every setting has a default.
"""

from __future__ import annotations

import secrets
from functools import cached_property
from pathlib import Path

import platformdirs
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Kigen's configuration. Each field maps to ``KIGEN_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="KIGEN_", env_file=".env", extra="ignore")

    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: a SQLite file in the data directory"
    )
    locales_dir: Path = Field(default=REPO_ROOT / "locales")
    default_language: str = "en"
    delivery_interval_seconds: float = Field(default=5.0, gt=0)
    claim_lease_seconds: int = Field(default=120, gt=0)
    log_level: str = "WARNING"
    log_messages: bool = False
    flood_limit_per_minute: int = Field(default=20, gt=0)
    broadcast_two_person: bool = False
    public_url: str | None = Field(
        default=None, description="https address where residents reach this server"
    )
    secret_key: SecretStr | None = None
    telegram_token: SecretStr | None = None
    telegram_api_url: str = "https://api.telegram.org/bot"
    telegram_webhook_secret: SecretStr | None = None
    telegram_rate: float = Field(default=25.0, gt=0, le=1000)
    telegram_paid_broadcast: bool = False
    line_channel_secret: SecretStr | None = None
    line_channel_access_token: SecretStr | None = None
    line_api_url: str | None = None
    retention_expired_days: int = Field(default=60, ge=0)
    retention_inactive_days: int = Field(default=30, ge=0)
    retention_events_days: int = Field(default=7, ge=0)

    @cached_property
    def signing_key(self) -> bytes:
        """The key that signs links; a random one per process when none is configured."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value().encode("utf-8")
        return secrets.token_bytes(32)

    @cached_property
    def resolved_database_url(self) -> str:
        """The configured URL, or a SQLite file in the user's data directory."""
        if self.database_url:
            return self.database_url
        data_dir = Path(platformdirs.user_data_dir("kigen", appauthor=False))
        data_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite+aiosqlite:///{data_dir / 'kigen.db'}"
