"""The Alembic migrations build exactly the schema the models describe."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from core.store.db import alembic_config, sync_url, upgrade
from core.store.models import SQLModel


def test_migrations_match_the_models(database_url):
    upgrade(database_url)
    engine = create_engine(sync_url(database_url))
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    engine.dispose()
    assert diff == []


def test_upgrade_is_idempotent_and_downgrade_removes_everything(database_url):
    upgrade(database_url)
    upgrade(database_url)
    command.downgrade(alembic_config(database_url), "base")
    engine = create_engine(sync_url(database_url))
    assert set(inspect(engine).get_table_names()) == {"alembic_version"}
    engine.dispose()


def test_queued_recipients_survive_the_rebuild_of_their_table(database_url):
    upgrade(database_url, "0002")
    engine = create_engine(sync_url(database_url))
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO users (id, channel, platform_id, language_chosen, active, "
                "reminder_hour, timezone, created_at) "
                "VALUES (7, 'line', 'U1', false, true, 9, 'Asia/Tokyo', '2026-11-26')"
            )
        )
        connection.execute(
            text(
                "INSERT INTO broadcasts (id, title, texts, fallback, audience, status, "
                "audience_done, queued_until_user, created_by, created_at) VALUES "
                "(1, 't', '{}', 'skip', '{}', 'sending', false, 0, 'ed', '2026-11-26')"
            )
        )
        connection.execute(
            text(
                "INSERT INTO broadcast_batches (id, broadcast_id, channel, language) "
                "VALUES (3, 1, 'line', 'en')"
            )
        )
        connection.execute(text("INSERT INTO broadcast_recipients VALUES (3, 7)"))
    upgrade(database_url)
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT batch_id, user_id FROM broadcast_recipients"))
        assert rows.all() == [(3, 7)]
    assert inspect(engine).get_foreign_keys("broadcast_recipients") == []
    engine.dispose()
