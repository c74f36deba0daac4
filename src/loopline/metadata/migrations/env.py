"""Alembic environment: runs on the connection Loopline hands it (see engine.upgrade)."""

from alembic import context

from loopline.metadata.schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite needs batch mode for ALTERs
)
with context.begin_transaction():
    context.run_migrations()
