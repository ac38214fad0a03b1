"""The staff audit log, read-only (ADR 0034): platform admins read every entry, brand admins their brand's."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from api.auth import MallBlueprint, current_actor
from api.extensions import db
from api.fields import MAX_ID
from api.tx import read_only
from mall import audit
from mall.identity.roles import MERCHANT

blp = MallBlueprint("audit", __name__, url_prefix="/admin", description="The staff audit log (read-only)")

QueryId = lambda **kw: fields.Integer(validate=validate.Range(1, MAX_ID), load_default=None, **kw)  # noqa: E731


class AuditLogArgs(Schema):
    actor_id = QueryId()
    brand_id = QueryId(metadata={"description": "a brand admin always reads their own brand's entries"})
    object_type = fields.String(load_default=None, validate=validate.Length(1, 32))
    object_id = QueryId()
    action = fields.String(load_default=None, validate=validate.Length(1, 64))
    since = fields.AwareDateTime(load_default=None, metadata={"description": "entries at or after this time"})
    until = fields.AwareDateTime(load_default=None, metadata={"description": "entries before this time"})
    before_id = QueryId(metadata={"description": "the previous page's next_before_id"})
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 200))


class AuditEntrySchema(Schema):
    id = fields.Integer()
    at = fields.AwareDateTime()
    actor_id = fields.Integer()
    actor_role = fields.String()
    brand_id = fields.Integer(allow_none=True)
    action = fields.String(metadata={"description": "e.g. sku.updated, payout.approved"})
    object_type = fields.String()
    object_id = fields.Integer(allow_none=True)
    before = fields.Raw(allow_none=True, metadata={"description": "the changed fields' values before"})
    after = fields.Raw(allow_none=True, metadata={"description": "the changed fields' values after"})
    request_id = fields.String(allow_none=True)


class AuditPageSchema(Schema):
    items = fields.List(fields.Nested(AuditEntrySchema))
    next_before_id = fields.Integer(allow_none=True, metadata={"description": "pass as before_id for the next page"})


@blp.get("/audit-log")
@blp.auth(*MERCHANT)
@blp.arguments(AuditLogArgs, location="query")
@blp.response(200, AuditPageSchema)
def audit_log(args):
    """Staff changes, newest first. Entries are never changed or deleted (no route writes them)."""
    read_only()
    items, next_before = audit.entries(db.session, actor=current_actor(), **args)
    return {"items": items, "next_before_id": next_before}
