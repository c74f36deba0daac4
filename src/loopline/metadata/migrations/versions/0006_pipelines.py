"""pipelines tables

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('pipeline_runs',
    sa.Column('run_id', sa.String(length=32), nullable=False),
    sa.Column('workspace', sa.String(length=63), nullable=False),
    sa.Column('name', sa.String(length=256), nullable=False),
    sa.Column('target', sa.String(length=1024), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('params', sa.Text(), nullable=False),
    sa.Column('seed', sa.BigInteger(), nullable=False),
    sa.Column('executor', sa.String(length=256), nullable=False),
    sa.Column('environment', sa.Text(), nullable=False),
    sa.Column('graph', sa.Text(), nullable=False),
    sa.Column('outputs', sa.Text(), nullable=False),
    sa.Column('error', sa.Text(), nullable=False),
    sa.Column('rerun_of', sa.String(length=32), nullable=False),
    sa.Column('sweep_id', sa.String(length=32), nullable=False),
    sa.Column('schedule', sa.String(length=256), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=False),
    sa.Column('start_time', sa.BigInteger(), nullable=False),
    sa.Column('end_time', sa.BigInteger(), nullable=True),
    sa.PrimaryKeyConstraint('run_id', name=op.f('pk_pipeline_runs'))
    )
    op.create_index(op.f('ix_pipeline_runs_workspace_name_start_time'), 'pipeline_runs', ['workspace', 'name', 'start_time'], unique=False)
    op.create_index(op.f('ix_pipeline_runs_workspace_start_time'), 'pipeline_runs', ['workspace', 'start_time'], unique=False)
    op.create_index(op.f('ix_pipeline_runs_workspace_sweep_id'), 'pipeline_runs', ['workspace', 'sweep_id'], unique=False)
    op.create_table('pipeline_schedule_slots',
    sa.Column('workspace', sa.String(length=63), nullable=False),
    sa.Column('schedule', sa.String(length=256), nullable=False),
    sa.Column('slot_ms', sa.BigInteger(), nullable=False),
    sa.Column('claimed_by', sa.String(length=255), nullable=False),
    sa.Column('claimed_time', sa.BigInteger(), nullable=False),
    sa.Column('run_id', sa.String(length=32), nullable=False),
    sa.Column('error', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('workspace', 'schedule', 'slot_ms', name=op.f('pk_pipeline_schedule_slots'))
    )
    op.create_table('pipeline_schedules',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('workspace', sa.String(length=63), nullable=False),
    sa.Column('name', sa.String(length=256), nullable=False),
    sa.Column('target', sa.String(length=1024), nullable=False),
    sa.Column('cron', sa.String(length=128), nullable=False),
    sa.Column('params', sa.Text(), nullable=False),
    sa.Column('executor', sa.String(length=256), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('created_time', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pipeline_schedules')),
    sa.UniqueConstraint('workspace', 'name', name=op.f('uq_pipeline_schedules_workspace_name'))
    )
    op.create_table('pipeline_sweeps',
    sa.Column('sweep_id', sa.String(length=32), nullable=False),
    sa.Column('workspace', sa.String(length=63), nullable=False),
    sa.Column('name', sa.String(length=256), nullable=False),
    sa.Column('target', sa.String(length=1024), nullable=False),
    sa.Column('method', sa.String(length=16), nullable=False),
    sa.Column('metric', sa.String(length=256), nullable=False),
    sa.Column('direction', sa.String(length=8), nullable=False),
    sa.Column('space', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('best_run_id', sa.String(length=32), nullable=False),
    sa.Column('best_value', sa.Text(), nullable=False),
    sa.Column('start_time', sa.BigInteger(), nullable=False),
    sa.Column('end_time', sa.BigInteger(), nullable=True),
    sa.PrimaryKeyConstraint('sweep_id', name=op.f('pk_pipeline_sweeps'))
    )
    op.create_index(op.f('ix_pipeline_sweeps_workspace_start_time'), 'pipeline_sweeps', ['workspace', 'start_time'], unique=False)
    op.create_table('pipeline_steps',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('workspace', sa.String(length=63), nullable=False),
    sa.Column('run_id', sa.String(length=32), nullable=False),
    sa.Column('pipeline', sa.String(length=256), nullable=False),
    sa.Column('node', sa.String(length=256), nullable=False),
    sa.Column('step', sa.String(length=256), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('cache_key', sa.String(length=64), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('inputs', sa.Text(), nullable=False),
    sa.Column('params', sa.Text(), nullable=False),
    sa.Column('cached_from', sa.String(length=32), nullable=False),
    sa.Column('serializer', sa.String(length=32), nullable=False),
    sa.Column('output_path', sa.String(length=1024), nullable=False),
    sa.Column('output_digest', sa.String(length=64), nullable=False),
    sa.Column('output_size', sa.BigInteger(), nullable=False),
    sa.Column('output_inline', sa.Text(), nullable=True),
    sa.Column('output_meta', sa.Text(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('error', sa.Text(), nullable=False),
    sa.Column('start_time', sa.BigInteger(), nullable=True),
    sa.Column('end_time', sa.BigInteger(), nullable=True),
    sa.ForeignKeyConstraint(['run_id'], ['pipeline_runs.run_id'], name=op.f('fk_pipeline_steps_run_id_pipeline_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pipeline_steps')),
    sa.UniqueConstraint('run_id', 'node', name=op.f('uq_pipeline_steps_run_id_node'))
    )
    op.create_index(op.f('ix_pipeline_steps_workspace_cache_key'), 'pipeline_steps', ['workspace', 'cache_key'], unique=False)
    op.create_index(op.f('ix_pipeline_steps_workspace_fingerprint'), 'pipeline_steps', ['workspace', 'fingerprint'], unique=False)
    op.create_index(op.f('ix_pipeline_steps_workspace_pipeline_node_end_time'), 'pipeline_steps', ['workspace', 'pipeline', 'node', 'end_time'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_pipeline_steps_workspace_pipeline_node_end_time'), table_name='pipeline_steps')
    op.drop_index(op.f('ix_pipeline_steps_workspace_fingerprint'), table_name='pipeline_steps')
    op.drop_index(op.f('ix_pipeline_steps_workspace_cache_key'), table_name='pipeline_steps')
    op.drop_table('pipeline_steps')
    op.drop_index(op.f('ix_pipeline_sweeps_workspace_start_time'), table_name='pipeline_sweeps')
    op.drop_table('pipeline_sweeps')
    op.drop_table('pipeline_schedules')
    op.drop_table('pipeline_schedule_slots')
    op.drop_index(op.f('ix_pipeline_runs_workspace_sweep_id'), table_name='pipeline_runs')
    op.drop_index(op.f('ix_pipeline_runs_workspace_start_time'), table_name='pipeline_runs')
    op.drop_index(op.f('ix_pipeline_runs_workspace_name_start_time'), table_name='pipeline_runs')
    op.drop_table('pipeline_runs')
