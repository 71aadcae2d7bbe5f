"""outbox.body: the replies of an answer queued during a platform outage

A downgrade deletes the answers still queued: without the column they cannot be sent.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('body', sa.JSON(), nullable=True))


def downgrade() -> None:
    op.execute("DELETE FROM outbox WHERE kind = 'reply'")
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_column('body')
