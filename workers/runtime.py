"""What a job needs: the settings, a database session per job, and the after-commit event release.

`configure(settings)` opens the job sessions and runs the composition root (workers/composition.py).
The API calls it from its app factory, `rq cron` from workers/cron.py, the RQ worker class
(workers/worker.py) in the worker's parent process before it forks a work horse per job; any other
process configures itself from the environment before its first job. Jobs run one transaction each (`unit_of_work`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from mall import events
from mall.config import Settings
from mall.db import engine_options, engine_url

_settings: Settings | None = None
_sessions: sessionmaker | None = None


def configure(settings: Settings) -> None:
    global _settings, _sessions
    if _settings == settings and _sessions is not None:
        return
    import mall.models  # noqa: F401  (every mapper known before the first query)
    from workers import composition

    _settings = settings
    engine = sa.create_engine(engine_url(settings.database_url), **engine_options(settings.database_url))
    _sessions = sessionmaker(engine, expire_on_commit=False)
    composition.install(settings)


def after_fork() -> None:
    """In a forked child (a work horse): drop the database connections inherited from the parent, unclosed
    (they are the parent's), so this process opens its own."""
    if _sessions is not None:
        _sessions.kw["bind"].dispose(close=False)


def settings() -> Settings:
    if _settings is None:
        configure(Settings.from_env())
    return _settings


@contextmanager
def unit_of_work() -> Iterator[Session]:
    """One job, one transaction: commit on success, then release events; roll back on error."""
    settings()
    session = _sessions()
    try:
        yield session
        session.commit()
        events.release(session)
    except BaseException:
        session.rollback()
        events.discard(session)
        raise
    finally:
        session.close()
