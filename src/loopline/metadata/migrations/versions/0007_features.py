"""features tables: registered definitions and materialisation jobs

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        'feature_objects',
        sa.Column('id', BigId, autoincrement=True, nullable=False),
        sa.Column('workspace', sa.String(length=63), nullable=False),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('name', sa.String(length=256), nullable=False),
        sa.Column('spec', sa.Text(), nullable=False),
        sa.Column('digest', sa.String(length=64), nullable=False),
        sa.Column('creation_time', sa.BigInteger(), nullable=False),
        sa.Column('last_updated_time', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_feature_objects')),
        sa.UniqueConstraint('workspace', 'kind', 'name', name=op.f('uq_feature_objects_workspace_kind_name')),
    )
    op.create_table(
        'feature_materializations',
        sa.Column('id', BigId, autoincrement=True, nullable=False),
        sa.Column('workspace', sa.String(length=63), nullable=False),
        sa.Column('view', sa.String(length=256), nullable=False),
        sa.Column('start_ms', sa.BigInteger(), nullable=False),
        sa.Column('end_ms', sa.BigInteger(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('rows', sa.BigInteger(), nullable=False),
        sa.Column('cursor', sa.Text(), nullable=True),
        sa.Column('error', sa.Text(), nullable=False),
        sa.Column('start_time', sa.BigInteger(), nullable=False),
        sa.Column('last_updated_time', sa.BigInteger(), nullable=False),
        sa.Column('end_time', sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_feature_materializations')),
    )
    with op.batch_alter_table('feature_materializations', schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f('ix_feature_materializations_workspace_view_status_end_ms'),
            ['workspace', 'view', 'status', 'end_ms'],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table('feature_materializations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_feature_materializations_workspace_view_status_end_ms'))
    op.drop_table('feature_materializations')
    op.drop_table('feature_objects')
