"""deployments as metadata objects: deployments and their revisions

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-10
"""

import sqlalchemy as sa
from alembic import op


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        'deployments',
        sa.Column('id', BigId, autoincrement=True, nullable=False),
        sa.Column('workspace', sa.String(length=63), nullable=False),
        sa.Column('name', sa.String(length=256), nullable=False),
        sa.Column('spec', sa.Text(), nullable=False),
        sa.Column('revision', sa.Integer(), nullable=False),
        sa.Column('created_ms', sa.BigInteger(), nullable=False),
        sa.Column('created_by', sa.String(length=255), nullable=False),
        sa.Column('updated_ms', sa.BigInteger(), nullable=False),
        sa.Column('updated_by', sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_deployments')),
        sa.UniqueConstraint('workspace', 'name', name=op.f('uq_deployments_workspace_name')),
    )
    op.create_table(
        'deployment_revisions',
        sa.Column('id', BigId, autoincrement=True, nullable=False),
        sa.Column('workspace', sa.String(length=63), nullable=False),
        sa.Column('deployment_id', BigId, nullable=False),
        sa.Column('revision', sa.Integer(), nullable=False),
        sa.Column('spec', sa.Text(), nullable=False),
        sa.Column('resolved', sa.Text(), nullable=False),
        sa.Column('actor', sa.String(length=255), nullable=False),
        sa.Column('time_ms', sa.BigInteger(), nullable=False),
        sa.Column('comment', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ['deployment_id'],
            ['deployments.id'],
            name=op.f('fk_deployment_revisions_deployment_id_deployments'),
            ondelete='CASCADE',
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_deployment_revisions')),
        sa.UniqueConstraint(
            'deployment_id', 'revision', name=op.f('uq_deployment_revisions_deployment_id_revision')
        ),
    )


def downgrade() -> None:
    op.drop_table('deployment_revisions')
    op.drop_table('deployments')
