"""Alembic environment: the URL comes from the caller (``fapiao db upgrade``), never from an ini file."""

from alembic import context

from fapiao.adapters.db import Base, make_engine

config = context.config
url = config.get_main_option("sqlalchemy.url")
connection = config.attributes.get("connection")


def run(conn) -> None:
    context.configure(connection=conn, target_metadata=Base.metadata, render_as_batch=True, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


if connection is not None:
    run(connection)
else:
    if url is None:
        raise RuntimeError("no sqlalchemy.url: run migrations through fapiao.migrate (fapiao db upgrade)")
    engine = make_engine(url)
    with engine.connect() as conn:
        run(conn)
    engine.dispose()
