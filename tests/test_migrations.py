"""The schema comes from Alembic: an empty database upgrades to head and matches the models."""

from __future__ import annotations

import uuid
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from api import create_app
from mall.db import Base, include_in_autogenerate


@pytest.fixture
def empty_database(settings, tmp_path):
    """A database with no tables: a new SQLite file, or a new schema in the test PostgreSQL database."""
    if settings.database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    schema = f"mig_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(settings.database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in settings.database_url else "?"
    # Only the new schema on the path: the test database's own tables (and its alembic_version) must be invisible.
    yield f"{settings.database_url}{sep}options={quote(f'-csearch_path={schema}')}"
    with admin.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


def _app_on(settings, url):
    from dataclasses import replace

    return create_app(replace(settings, database_url=url))


def test_empty_database_upgrades_to_head_and_matches_models(settings, empty_database):
    app = _app_on(settings, empty_database)
    with app.app_context():
        from api.extensions import db

        upgrade()
        with db.engine.connect() as conn:
            tables = set(sa.inspect(conn).get_table_names())
            assert {t.name for t in Base.metadata.sorted_tables} <= tables
            diff = compare_metadata(
                MigrationContext.configure(conn, opts={"include_object": include_in_autogenerate}), Base.metadata
            )
            assert diff == [], f"models and migrations disagree: {diff}"
            version = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
        db.engine.dispose()
    assert version is not None


def test_downgrade_to_base_removes_everything(settings, empty_database):
    app = _app_on(settings, empty_database)
    with app.app_context():
        from api.extensions import db

        upgrade()
        downgrade(revision="base")
        with db.engine.connect() as conn:
            remaining = set(sa.inspect(conn).get_table_names()) - {"alembic_version"}
        db.engine.dispose()
    assert remaining == set()
