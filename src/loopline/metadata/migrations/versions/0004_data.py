"""data tables: versioned datasets, versions, aliases, validation results

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        'versioned_datasets',
        sa.Column('id', BigId, autoincrement=True, nullable=False),
        sa.Column('workspace', sa.String(length=63), nullable=False),
        sa.Column('name', sa.String(length=256), nullable=False),
        sa.Column('description', sa.Text(), nullable=False),
        sa.Column('creation_time', sa.BigInteger(), nullable=False),
        sa.Column('last_updated_time', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_versioned_datasets')),
        sa.UniqueConstraint('workspace', 'name', name=op.f('uq_versioned_datasets_workspace_name')),
    )
    op.create_table(
        'dataset_versions',
        sa.Column('dataset', BigId, nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('digest', sa.String(length=64), nullable=False),
        sa.Column('manifest_digest', sa.String(length=64), nullable=False),
        sa.Column('format', sa.String(length=16), nullable=False),
        sa.Column('source', sa.Text(), nullable=False),
        sa.Column('num_files', sa.Integer(), nullable=False),
        sa.Column('size_bytes', sa.BigInteger(), nullable=False),
        sa.Column('num_rows', sa.BigInteger(), nullable=True),
        sa.Column('schema', sa.Text(), nullable=False),
        sa.Column('profile', sa.Text(), nullable=False),
        sa.Column('description', sa.Text(), nullable=False),
        sa.Column('created_by', sa.String(length=255), nullable=False),
        sa.Column('creation_time', sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(['dataset'], ['versioned_datasets.id'],
                                name=op.f('fk_dataset_versions_dataset_versioned_datasets'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('dataset', 'version', name=op.f('pk_dataset_versions')),
    )
    op.create_index(op.f('ix_dataset_versions_dataset_digest'), 'dataset_versions', ['dataset', 'digest'])
    op.create_table(
        'dataset_aliases',
        sa.Column('dataset', BigId, nullable=False),
        sa.Column('alias', sa.String(length=255), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['dataset'], ['versioned_datasets.id'],
                                name=op.f('fk_dataset_aliases_dataset_versioned_datasets'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('dataset', 'alias', name=op.f('pk_dataset_aliases')),
    )
    op.create_table(
        'dataset_validations',
        sa.Column('id', BigId, autoincrement=True, nullable=False),
        sa.Column('dataset', BigId, nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('suite', sa.String(length=256), nullable=False),
        sa.Column('success', sa.Boolean(), nullable=False),
        sa.Column('result', sa.Text(), nullable=False),
        sa.Column('created_by', sa.String(length=255), nullable=False),
        sa.Column('creation_time', sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(['dataset'], ['versioned_datasets.id'],
                                name=op.f('fk_dataset_validations_dataset_versioned_datasets'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_dataset_validations')),
    )
    op.create_index(op.f('ix_dataset_validations_dataset_version_id'), 'dataset_validations',
                    ['dataset', 'version', 'id'])


def downgrade() -> None:
    op.drop_index(op.f('ix_dataset_validations_dataset_version_id'), table_name='dataset_validations')
    op.drop_table('dataset_validations')
    op.drop_table('dataset_aliases')
    op.drop_index(op.f('ix_dataset_versions_dataset_digest'), table_name='dataset_versions')
    op.drop_table('dataset_versions')
    op.drop_table('versioned_datasets')
