"""The edge commits once per request, then releases the events the change recorded."""

from __future__ import annotations

from api.extensions import db
from mall import events


def commit() -> None:
    db.session.commit()
    events.release(db.session)


def rollback() -> None:
    """Undo the request's change: its events never happened."""
    db.session.rollback()
    events.discard(db.session)


def read_only() -> None:
    """For a view that only reads: its session runs on an autocommit connection.

    No BEGIN before the first query and no ROLLBACK at the end: two round trips fewer on PostgreSQL, and
    psycopg keeps its prepared statements, which a ROLLBACK discards (with a DEALLOCATE ALL), so one quote
    in a shopper's checkout no longer makes PostgreSQL parse and plan the placement's and payment's
    statements again. Each statement still sees one consistent snapshot, as under READ COMMITTED anyway.
    Nothing that writes may run after this (it would commit statement by statement)."""
    session = db.session()  # the request's Session (in_transaction is not proxied by scoped_session)
    if not session.in_transaction():  # too late once something has read (the first connection decides)
        session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
