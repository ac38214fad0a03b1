"""What a job needs: the settings, a database session per job, and the after-commit event release.

The API calls `configure(settings)` from its app factory; a worker process configures itself from
the environment on first use. Jobs run one transaction each (`unit_of_work`).
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
    from mall.notifications import reactions
    from mall.promotions.coupons import wiring as coupons
    from mall.promotions.flash_sale import wiring as flash_sales
    from mall.promotions.group_buy import wiring as group_buy
    from workers import subscriptions
    from workers.flash import gate as flash_gate

    _settings = settings
    engine = sa.create_engine(engine_url(settings.database_url), **engine_options(settings.database_url))
    _sessions = sessionmaker(engine, expire_on_commit=False)
    subscriptions.register()
    reactions.install()
    flash_sales.install(flash_gate)
    group_buy.install()
    coupons.install(remind_before_hours=settings.coupon_expiry_reminder_hours,
                    return_on_full_refund=settings.coupon_return_on_full_refund)  # fmt: skip


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
