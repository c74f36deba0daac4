"""automation: the closed loop's policies, rollouts, pending triggers, leases and event cursor

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'automation_policies',
        sa.Column('id', _ID, autoincrement=True, nullable=False),
        sa.Column('workspace', sa.String(length=63), nullable=False),
        sa.Column('name', sa.String(length=256), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('labels', sa.Text(), nullable=False),
        sa.Column('created_ms', sa.BigInteger(), nullable=False),
        sa.Column('updated_ms', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_automation_policies')),
        sa.UniqueConstraint('workspace', 'name', name=op.f('uq_automation_policies_workspace_name')),
    )
    op.create_table(
        'automation_rollouts',
        sa.Column('id', _ID, autoincrement=True, nullable=False),
        sa.Column('workspace', sa.String(length=63), nullable=False),
        sa.Column('policy', sa.String(length=256), nullable=False),
        sa.Column('deployment', sa.String(length=256), nullable=False),
        sa.Column('state', sa.String(length=32), nullable=False),
        sa.Column('step', sa.Integer(), nullable=False),
        sa.Column('step_started_ms', sa.BigInteger(), nullable=False),
        sa.Column('candidate', sa.String(length=512), nullable=False),
        sa.Column('champion', sa.String(length=512), nullable=False),
        sa.Column('base_revision', sa.Integer(), nullable=False),
        sa.Column('pipeline_run', sa.String(length=64), nullable=False),
        sa.Column('trigger', sa.Text(), nullable=False),
        sa.Column('verdict', sa.Text(), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('created_ms', sa.BigInteger(), nullable=False),
        sa.Column('updated_ms', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_automation_rollouts')),
    )
    op.create_index(
        op.f('ix_automation_rollouts_workspace_policy_id'), 'automation_rollouts', ['workspace', 'policy', 'id']
    )
    op.create_index(op.f('ix_automation_rollouts_workspace_state'), 'automation_rollouts', ['workspace', 'state'])
    op.create_table(
        'automation_triggers',
        sa.Column('id', _ID, autoincrement=True, nullable=False),
        sa.Column('workspace', sa.String(length=63), nullable=False),
        sa.Column('policy', sa.String(length=256), nullable=False),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('source_event', sa.BigInteger(), nullable=True),
        sa.Column('change_ms', sa.BigInteger(), nullable=False),
        sa.Column('created_ms', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_automation_triggers')),
    )
    op.create_index(op.f('ix_automation_triggers_workspace_policy'), 'automation_triggers', ['workspace', 'policy'])
    op.create_table(
        'automation_leases',
        sa.Column('workspace', sa.String(length=63), nullable=False),
        sa.Column('key', sa.String(length=512), nullable=False),
        sa.Column('holder', sa.String(length=255), nullable=False),
        sa.Column('expires_ms', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('workspace', 'key', name=op.f('pk_automation_leases')),
    )
    op.create_table(
        'automation_cursor',
        sa.Column('workspace', sa.String(length=63), nullable=False),
        sa.Column('event_id', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('workspace', name=op.f('pk_automation_cursor')),
    )


def downgrade() -> None:
    op.drop_table('automation_cursor')
    op.drop_table('automation_leases')
    op.drop_index(op.f('ix_automation_triggers_workspace_policy'), table_name='automation_triggers')
    op.drop_table('automation_triggers')
    op.drop_index(op.f('ix_automation_rollouts_workspace_state'), table_name='automation_rollouts')
    op.drop_index(op.f('ix_automation_rollouts_workspace_policy_id'), table_name='automation_rollouts')
    op.drop_table('automation_rollouts')
    op.drop_table('automation_policies')
