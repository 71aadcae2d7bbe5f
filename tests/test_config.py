"""Settings: every KIGEN_* setting is documented, and nothing is required."""

from __future__ import annotations

import os
import re

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
