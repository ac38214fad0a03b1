"""Imports every model module so the metadata (and Alembic autogenerate) sees all tables."""

from mall import events  # noqa: F401
from mall.catalog import models as catalog_models  # noqa: F401
from mall.identity import models as identity_models  # noqa: F401
