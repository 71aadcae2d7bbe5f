"""Settings read from the environment (``KIGEN_*``); see ``.env.example``.

Nothing is required to start the terminal chat: every setting has a default.
"""

from __future__ import annotations

import math
import secrets
from functools import cached_property
from pathlib import Path

import platformdirs
from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.ratelimit import fastest_within, most_in_a_second

REPO_ROOT = Path(__file__).resolve().parent.parent
#: LINE's limits per channel, in calls per second, of the settings that pace them.
LINE_LIMITS = {"line_push_rate": 2000, "line_multicast_rate": 200}


class Settings(BaseSettings):
    """Kigen's configuration. Each field maps to ``KIGEN_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="KIGEN_", env_file=".env", extra="ignore")

    environment: str = Field(default="development", pattern="^(development|production)$")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: a SQLite file in the data directory"
    )
    locales_dir: Path = Field(default=REPO_ROOT / "locales")
    default_language: str = "en"
    delivery_interval_seconds: float = Field(default=1.0, gt=0)
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
    #: None: enough to keep the rate with answers 300 ms away (see bot/telegram.py).
    telegram_in_flight: int | None = Field(default=None, ge=1, le=1000)
    line_channel_secret: SecretStr | None = None
    line_channel_access_token: SecretStr | None = None
    line_api_url: str | None = None
    line_push_rate: float = Field(default=1900.0, gt=0)
    line_multicast_rate: float = Field(default=196.0, gt=0)
    retention_expired_days: int = Field(default=60, ge=0)
    retention_inactive_days: int = Field(default=30, ge=0)
    retention_events_days: int = Field(default=7, ge=0)
    retention_questions_days: int = Field(default=90, ge=0)

    @field_validator(*LINE_LIMITS)
    @classmethod
    def _within_line_limit(cls, rate: float, info: ValidationInfo) -> float:
        # A limiter that woke late makes up its pace, up to its window's most
        # (core.ratelimit): the pace must stay that much below LINE's limit, or LINE
        # answers 429.
        limit = LINE_LIMITS[info.field_name]
        if most_in_a_second(rate) > limit:
            raise ValueError(
                f"KIGEN_{info.field_name.upper()}={rate:g} could send "
                f"{most_in_a_second(rate):.2f} calls within one second, above LINE's limit "
                f"of {limit}: set at most {math.floor(fastest_within(limit) * 10) / 10:g}"
            )
        return rate

    def production_problems(self, *, telegram_polling: bool = False) -> list[str]:
        """What makes these settings unfit for production (empty when they are fine)."""
        problems = []
        if self.secret_key is None or len(self.secret_key.get_secret_value()) < 32:
            problems.append("KIGEN_SECRET_KEY must be set to at least 32 random characters")
        if bool(self.line_channel_secret) != bool(self.line_channel_access_token):
            problems.append(
                "LINE needs both KIGEN_LINE_CHANNEL_SECRET and KIGEN_LINE_CHANNEL_ACCESS_TOKEN"
            )
        for name in ("line_channel_secret", "line_channel_access_token", "telegram_token"):
            value = getattr(self, name)
            if value is not None and not value.get_secret_value().strip():
                problems.append(f"KIGEN_{name.upper()} is set but empty")
        if self.telegram_token and not telegram_polling and not self.telegram_webhook_secret:
            problems.append("the Telegram webhook needs KIGEN_TELEGRAM_WEBHOOK_SECRET")
        if self.public_url and not self.public_url.startswith("https://"):
            problems.append("KIGEN_PUBLIC_URL must be an https:// address")
        if not self.database_url:
            problems.append("set KIGEN_DATABASE_URL explicitly (PostgreSQL for several replicas)")
        return problems

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
