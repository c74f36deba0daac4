"""What every metadata table is built on: the one ``MetaData`` and the column types they share.

``schema.py`` (the core tables) and each domain's ``schema_*.py`` define their tables on this
``metadata``; ``schema.py`` gathers them all, so that importing it gives Alembic (and the test that
compares the migrations with the schema) the whole schema.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Integer, MetaData

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL wants BIGINT for big tables.
BigId = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

__all__ = ["BigId", "metadata"]
