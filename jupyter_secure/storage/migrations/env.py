"""Alembic environment: runs on the connection the caller hands in.

jupyter-secure never runs Alembic from a command line against a URL; the
store calls :func:`jupyter_secure.storage.migrate.upgrade_to_head` with an
open connection whose transaction already holds the migration lock.
"""

from alembic import context

from jupyter_secure.storage.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("jupyter-secure migrations run through jupyter_secure.storage.migrate")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
context.run_migrations()
