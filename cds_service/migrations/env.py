"""Alembic environment: run by ``cds_service.store.migrate`` on a connection it already opened.

There is no ``alembic.ini``: the configuration is built in code (``migrate.alembic_config``), so the
migrations ship inside the package and ``trialcds db upgrade`` needs nothing else on disk.
"""

from __future__ import annotations

from alembic import context

from cds_service.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata,
                  render_as_batch=connection.dialect.name == "sqlite")  # SQLite alters tables by copying
with context.begin_transaction():
    context.run_migrations()
