"""Settings: every KIGEN_* setting is documented, and nothing is required."""

from __future__ import annotations

import os
import re

import pytest
from pydantic import ValidationError

from core.config import REPO_ROOT, Settings


def documented_variables() -> set[str]:
    text = (REPO_ROOT / ".env.example").read_text(encoding="utf-8")
    return set(re.findall(r"^#?\s*(KIGEN_[A-Z0-9_]+)=", text, flags=re.MULTILINE))


def test_every_setting_is_in_env_example_and_nothing_else():
    fields = {f"KIGEN_{name.upper()}" for name in Settings.model_fields}
    assert documented_variables() == fields


def test_nothing_is_required(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("KIGEN_"):
            monkeypatch.delenv(name)
    settings = Settings()
    assert settings.database_url is None
    assert settings.locales_dir.is_dir()


def test_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("KIGEN_DATABASE_URL", "sqlite+aiosqlite:///elsewhere.db")
    monkeypatch.setenv("KIGEN_RETENTION_EXPIRED_DAYS", "90")
    settings = Settings(_env_file=None)
    assert settings.resolved_database_url == "sqlite+aiosqlite:///elsewhere.db"
    assert settings.retention_expired_days == 90


def test_line_paces_that_could_exceed_lines_limits_are_refused(monkeypatch):
    # What a limiter makes up after waking late: 197 multicasts a second can give 199.97
    # within 1.01 s, so in one second where LINE counts them; 198 can give 200.98.
    for name, fits, too_fast, fastest in (
        ("KIGEN_LINE_MULTICAST_RATE", "197", "198", "197"),
        ("KIGEN_LINE_PUSH_RATE", "1979.2", "1980", "1979.2"),
    ):
        monkeypatch.setenv(name, fits)
        field = name.removeprefix("KIGEN_").lower()
        assert getattr(Settings(_env_file=None), field) == float(fits)
        monkeypatch.setenv(name, too_fast)
        with pytest.raises(ValidationError, match=f"above LINE's limit .*at most {fastest} "):
            Settings(_env_file=None)
        monkeypatch.delenv(name)


def test_production_refuses_weak_settings(tmp_path):
    weak = Settings(
        _env_file=None,
        environment="production",
        line_channel_secret="x",
        telegram_token="1:abc",
        public_url="http://kigen.example",
    )
    problems = " | ".join(weak.production_problems())
    for expected in (
        "KIGEN_SECRET_KEY",
        "LINE needs both",
        "KIGEN_TELEGRAM_WEBHOOK_SECRET",
        "https://",
        "KIGEN_DATABASE_URL",
    ):
        assert expected in problems
    strong = Settings(
        _env_file=None,
        environment="production",
        secret_key="s" * 40,
        database_url=f"sqlite+aiosqlite:///{tmp_path}/k.db",
        telegram_token="1:abc",
        telegram_webhook_secret="hook-secret",
        public_url="https://kigen.example",
    )
    assert strong.production_problems() == []


def test_the_server_refuses_to_start_in_production_with_weak_settings(tmp_path):
    import os
    import subprocess
    import sys

    env = {
        **os.environ,
        "KIGEN_ENVIRONMENT": "production",
        "KIGEN_LINE_CHANNEL_SECRET": "",
        "KIGEN_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/k.db",
    }
    env.pop("KIGEN_SECRET_KEY", None)
    result = subprocess.run(
        [sys.executable, "-m", "bot", "serve", "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert (
        "refusing to start in production" in result.stderr and "KIGEN_SECRET_KEY" in result.stderr
    )
