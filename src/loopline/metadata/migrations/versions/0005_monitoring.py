"""monitoring tables: monitors, monitor runs, their metrics, stored reference profiles

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        'monitors',
        sa.Column('id', BigId, autoincrement=True, nullable=False),
        sa.Column('workspace', sa.String(length=63), nullable=False),
        sa.Column('name', sa.String(length=256), nullable=False),
        sa.Column('target', sa.String(length=512), nullable=False),
        sa.Column('reference', sa.String(length=1024), nullable=False),
        sa.Column('window', sa.String(length=32), nullable=False),
        sa.Column('schedule', sa.String(length=128), nullable=False),
        sa.Column('config', sa.Text(), nullable=False),
        sa.Column('state', sa.Text(), nullable=False),
        sa.Column('created_ms', sa.BigInteger(), nullable=False),
        sa.Column('updated_ms', sa.BigInteger(), nullable=False),
        sa.Column('last_run_ms', sa.BigInteger(), nullable=True),
        sa.Column('next_run_ms', sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_monitors')),
        sa.UniqueConstraint('workspace', 'name', name=op.f('uq_monitors_workspace_name')),
    )
    op.create_index(op.f('ix_monitors_workspace_next_run_ms'), 'monitors', ['workspace', 'next_run_ms'])
    op.create_table(
        'monitor_runs',
        sa.Column('id', BigId, autoincrement=True, nullable=False),
        sa.Column('workspace', sa.String(length=63), nullable=False),
        sa.Column('monitor_id', BigId, nullable=False),
        sa.Column('started_ms', sa.BigInteger(), nullable=False),
        sa.Column('finished_ms', sa.BigInteger(), nullable=False),
        sa.Column('rows', sa.BigInteger(), nullable=False),
        sa.Column('new_rows', sa.BigInteger(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('dataset_drift', sa.Boolean(), nullable=False),
        sa.Column('drift_share', sa.Double(), nullable=True),
        sa.Column('summary', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(['monitor_id'], ['monitors.id'], name=op.f('fk_monitor_runs_monitor_id_monitors'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_monitor_runs')),
    )
    op.create_index(
        op.f('ix_monitor_runs_workspace_monitor_id_started_ms'), 'monitor_runs', ['workspace', 'monitor_id', 'started_ms']
    )
    op.create_table(
        'monitor_metrics',
        sa.Column('id', BigId, autoincrement=True, nullable=False),
        sa.Column('workspace', sa.String(length=63), nullable=False),
        sa.Column('monitor_id', BigId, nullable=False),
        sa.Column('run_id', BigId, nullable=False),
        sa.Column('time_ms', sa.BigInteger(), nullable=False),
        sa.Column('key', sa.String(length=256), nullable=False),
        sa.Column('value', sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(['monitor_id'], ['monitors.id'], name=op.f('fk_monitor_metrics_monitor_id_monitors'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['run_id'], ['monitor_runs.id'], name=op.f('fk_monitor_metrics_run_id_monitor_runs'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_monitor_metrics')),
    )
    op.create_index(
        op.f('ix_monitor_metrics_workspace_monitor_id_key_time_ms'), 'monitor_metrics', ['workspace', 'monitor_id', 'key', 'time_ms']
    )
    op.create_table(
        'reference_profiles',
        sa.Column('id', BigId, autoincrement=True, nullable=False),
        sa.Column('workspace', sa.String(length=63), nullable=False),
        sa.Column('source', sa.String(length=512), nullable=False),
        sa.Column('path', sa.String(length=1024), nullable=False),
        sa.Column('created_ms', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_reference_profiles')),
        sa.UniqueConstraint('workspace', 'source', name=op.f('uq_reference_profiles_workspace_source')),
    )


def downgrade() -> None:
    op.drop_table('reference_profiles')
    op.drop_index(op.f('ix_monitor_metrics_workspace_monitor_id_key_time_ms'), table_name='monitor_metrics')
    op.drop_table('monitor_metrics')
    op.drop_index(op.f('ix_monitor_runs_workspace_monitor_id_started_ms'), table_name='monitor_runs')
    op.drop_table('monitor_runs')
    op.drop_index(op.f('ix_monitors_workspace_next_run_ms'), table_name='monitors')
    op.drop_table('monitors')
