"""Reading the staff audit log in tests, straight from the table (only committed rows)."""

from __future__ import annotations

import sqlalchemy as sa

from mall.audit import AuditEntry
from tests.catalog_helpers import rows

AUDIT = "/api/v1/admin/audit-log"
_TABLE = AuditEntry.__table__


def audit_rows(app, **where) -> list[dict]:
    """The log's entries matching `where` (column=value), oldest first, as dicts."""
    query = sa.select(*_TABLE.columns, sa.literal(1)).filter_by(**where).order_by(_TABLE.c.id)
    return [{c.key: row._mapping[c.key] for c in _TABLE.columns} for row in rows(app, query)]


def only(app, **where) -> dict:
    """The one entry matching `where`."""
    found = audit_rows(app, **where)
    assert len(found) == 1, found
    return found[0]
