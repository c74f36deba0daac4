"""MLflow compatibility: external lineage edges, runs' model inputs and outputs

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('lineage_edges', schema=None) as batch_op:
        batch_op.add_column(sa.Column('external', sa.Boolean(), server_default=sa.false(), nullable=False))
    op.create_table(
        'run_logged_models',
        sa.Column('run_uuid', sa.String(length=32), nullable=False),
        sa.Column('model_id', sa.String(length=64), nullable=False),
        sa.Column('direction', sa.String(length=8), nullable=False),
        sa.Column('step', sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ['run_uuid'], ['runs.run_uuid'], name=op.f('fk_run_logged_models_run_uuid_runs'), ondelete='CASCADE'
        ),
        sa.PrimaryKeyConstraint('run_uuid', 'model_id', 'direction', name=op.f('pk_run_logged_models')),
    )


def downgrade() -> None:
    op.drop_table('run_logged_models')
    with op.batch_alter_table('lineage_edges', schema=None) as batch_op:
        batch_op.drop_column('external')
