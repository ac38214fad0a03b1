"""Declarative base, naming convention and column types shared by every model."""

from __future__ import annotations

import functools
import time
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from mall import clock

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(sa.types.TypeDecorator):
    """Aware UTC in, aware UTC out, on every backend (SQLite stores naive UTC)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# JSON that is JSONB on PostgreSQL (indexable), plain JSON elsewhere.
JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}


class Timestamped:
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now, onupdate=clock.now)


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, _record):
    """WAL lets readers run beside the one writer; foreign keys are off by default in SQLite."""
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cur = dbapi_connection.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=10000")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()


# Indexes created by raw SQL in migrations (PostgreSQL-only operator classes), unknown to the
# models; autogenerate and the drift test leave them alone.
UNMANAGED_INDEXES = frozenset({"ix_products_title_trgm"})


def include_in_autogenerate(obj, name, type_, reflected, compare_to) -> bool:
    return not (type_ == "index" and name in UNMANAGED_INDEXES)


def insert_on_conflict(
    session, target, *, values: dict, index_elements: list[str] | None, update: dict | None = None, where=None
):
    """INSERT … ON CONFLICT (index) DO UPDATE/NOTHING on PostgreSQL and SQLite alike (race-free upsert).

    `target` a Table: returns the written row's primary key (a Row, truthy), or None when the conflict left
    the existing row alone. `target` a mapped class: the written row as that entity (read by the same
    statement), or None. RETURNING is used because drivers do not agree on rowcount for ON CONFLICT."""
    dialect = session.get_bind().dialect.name
    if update:  # the SET clause may hold expressions: built for this call
        stmt = _insert(dialect, target).values(**values)
        stmt = _returning(stmt.on_conflict_do_update(index_elements=index_elements, set_=update, where=where), target)
        params = None
    else:  # DO NOTHING: the same statement for every call of this shape, the values passed as parameters
        stmt = _insert_or_nothing(dialect, target, tuple(index_elements or ()), tuple(values))
        params = values
    if isinstance(target, sa.Table):
        return session.execute(stmt, params).first()
    return session.scalars(stmt, params, execution_options={"populate_existing": True}).first()


def upsert_many(session, table: sa.Table, rows: list[dict], *, index_elements: list[str], update: tuple[str, ...] = (),
                returning: tuple = ()) -> list:  # fmt: skip
    """Many rows in one INSERT … ON CONFLICT (index) DO UPDATE SET the `update` columns to the new row's (DO
    NOTHING without), on PostgreSQL and SQLite alike. For batch jobs; returns the `returning` columns of the rows
    written (those a conflict left alone are not among them)."""
    if not rows:
        return []
    # Executed with the rows as parameters, not .values(rows): SQLAlchemy's insertmanyvalues batches them into
    # multi-row statements from one cached compilation (compiling a 1,000-row VALUES took 0.5 s).
    stmt = _insert(session.get_bind().dialect.name, table)
    if update:
        stmt = stmt.on_conflict_do_update(index_elements=index_elements, set_={c: stmt.excluded[c] for c in update})
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=index_elements)
    if returning:
        return session.execute(stmt.returning(*returning), rows).all()
    session.execute(stmt, rows)
    return []


def _insert(dialect: str, target):
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(target)


@functools.cache
def _insert_or_nothing(dialect: str, target, index_elements: tuple[str, ...], columns: tuple[str, ...]):
    """INSERT … ON CONFLICT DO NOTHING RETURNING …, built once per shape: building a statement and hashing
    its cache key cost more Python than running it (index_elements empty: any unique constraint)."""
    stmt = _insert(dialect, target).values({name: sa.bindparam(name) for name in columns})
    return _returning(stmt.on_conflict_do_nothing(index_elements=list(index_elements) or None), target)


def _returning(stmt, target):
    return stmt.returning(*target.primary_key.columns) if isinstance(target, sa.Table) else stmt.returning(target)


def hold_written(obj, values: dict) -> None:
    """`obj` holds what an UPDATE just wrote to its row, without reading the row back and without marking
    anything to be written again."""
    from sqlalchemy.orm.attributes import set_committed_value

    for key, value in values.items():
        set_committed_value(obj, key, value)


def among(column, name: str, dialect: str):
    """`column IN (:name)` for a list of integer ids. PostgreSQL: `= ANY(:name)` with one array parameter, so the
    statement's text is the same whatever the list's length (no rendering per call, one prepared statement);
    elsewhere an expanding IN."""
    if dialect == "postgresql":
        return column == sa.any_(sa.bindparam(name, type_=postgresql.ARRAY(sa.Integer)))
    return column.in_(sa.bindparam(name, expanding=True))


def as_loaded(cls, values: dict):
    """A detached `cls` holding `values` as if just loaded from its row (nothing to flush; what `values` leaves
    out loads on first access), built without the attribute events the constructor fires for every value:
    for rows a statement just wrote, such as a new order's (mall/orders/creation.py)."""
    from sqlalchemy.orm import make_transient_to_detached
    from sqlalchemy.orm.instrumentation import manager_of_class

    obj = manager_of_class(cls).new_instance()
    obj.__dict__.update(values)  # the instance's state dict: where a load puts column values
    make_transient_to_detached(obj)
    return obj


def engine_url(url: str) -> str:
    """Plain postgres:// URLs get the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def engine_options(url: str) -> dict:
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 15}}
    return {"poolclass": IdlePingQueuePool, "pool_size": 10, "max_overflow": 10, "pool_recycle": 1800}


class IdlePingQueuePool(sa.pool.QueuePool):
    """A QueuePool that checks a connection before handing it out only if it sat unused a while.

    `pool_pre_ping` pings on every checkout: a round trip per request, about a tenth of a busy
    catalog read. A connection that was in use a moment ago is alive; one idle for
    IDLE_SECONDS may have been cut (database restart, failover, a firewall's idle timeout), so
    it is pinged, and replaced if dead, before any request sees it.
    """

    IDLE_SECONDS = 10.0


@event.listens_for(IdlePingQueuePool, "checkin")
def _note_checkin(_dbapi_connection, record) -> None:
    record.info["mall.checked_in"] = time.monotonic()


@event.listens_for(IdlePingQueuePool, "checkout")
def _ping_if_idle(dbapi_connection, record, _proxy) -> None:
    checked_in = record.info.get("mall.checked_in")
    if checked_in is None or time.monotonic() - checked_in < IdlePingQueuePool.IDLE_SECONDS:
        return  # a new connection, or one in use a moment ago
    try:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("SELECT 1")
        finally:
            cursor.close()
        dbapi_connection.rollback()  # hand it out as found: outside any transaction
    except Exception as exc:
        # The pool invalidates this connection and checks out another (SQLAlchemy's documented
        # pessimistic disconnect handling).
        raise sa.exc.DisconnectionError(f"idle connection failed its ping: {exc}") from exc
