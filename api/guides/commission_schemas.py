"""Request and response schemas of the commission ledger endpoints (rate cards, entries, balances, why)."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from api.fields import MAX_ID, Bool, Id, QueryBool
from api.guides.schemas import BindingEventSchema
from mall.guides.ledger_models import SCOPES, STATES


class NewRateCardSchema(Schema):
    brand_id = Id(load_default=None, metadata={"description": "a platform admin names the brand"})
    scope = fields.String(required=True, validate=validate.OneOf(SCOPES))
    category_id = Id(load_default=None, metadata={"description": "scope category: the category (and its subtree)"})
    product_id = Id(load_default=None, metadata={"description": "scope product: a product of the brand"})
    guide_grade = fields.String(load_default=None, validate=validate.Length(1, 32),
                                metadata={"description": "only guides of this grade (none: any grade)"})  # fmt: skip
    basis_points = fields.Integer(strict=True, load_default=None, validate=validate.Range(0, 10000),
                                  metadata={"description": "of what the line paid (100 = 1%)"})  # fmt: skip
    amount_per_unit = fields.Integer(strict=True, load_default=None, validate=validate.Range(0, 10**12),
                                     metadata={"description": "minor units per unit, capped at what the line paid"})  # fmt: skip
    currency = fields.String(load_default=None, validate=validate.Regexp(r"^[A-Z]{3}$"))
    includes_campaign_lines = Bool(load_default=False,
                                             metadata={"description": "flash, group-buy and live-price lines earn"})  # fmt: skip
    replaces = Id(load_default=None, metadata={"description": "a card of the brand closed now (a change of terms)"})

    @validates_schema
    def _target(self, data, **kwargs):
        needs = {"product": "product_id", "category": "category_id"}.get(data["scope"])
        if needs is not None and data.get(needs) is None:
            raise ValidationError(f"A {data['scope']} card names its {needs}.", field_name=needs)
        if (data.get("basis_points") is None) == (data.get("amount_per_unit") is None):
            raise ValidationError("Give basis_points or amount_per_unit (not both).", field_name="basis_points")


class RateCardSchema(Schema):
    id = fields.Integer()
    brand_id = fields.Integer()
    scope = fields.String()
    category_id = fields.Integer(allow_none=True)
    product_id = fields.Integer(allow_none=True)
    guide_grade = fields.String(allow_none=True)
    basis_points = fields.Integer(allow_none=True)
    amount_per_unit = fields.Integer(allow_none=True)
    currency = fields.String(allow_none=True)
    includes_campaign_lines = fields.Boolean()
    valid_from = fields.AwareDateTime()
    valid_to = fields.AwareDateTime(allow_none=True)
    created_by = fields.Integer(allow_none=True)


class RateCardListArgs(Schema):
    brand_id = fields.Integer(load_default=None, validate=validate.Range(1, MAX_ID),
                              metadata={"description": "a platform admin names the brand"})  # fmt: skip
    include_closed = QueryBool(load_default=False)


class CommissionArgs(Schema):
    state = fields.String(load_default=None, validate=validate.OneOf(STATES))
    before_id = fields.Integer(load_default=None, validate=validate.Range(1, MAX_ID),
                               metadata={"description": "the page after: next_before_id of the previous page"})  # fmt: skip
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 200))


class AdminCommissionArgs(CommissionArgs):
    guide_id = fields.Integer(required=True, validate=validate.Range(1, MAX_ID))


class CommissionEntrySchema(Schema):
    id = fields.Integer()
    guide_id = fields.Integer()
    brand_id = fields.Integer()
    currency = fields.String()
    amount = fields.Integer(metadata={"description": "signed minor units"})
    kind = fields.String(metadata={"description": "earn, reverse, payout, payout_return, adjust"})
    state = fields.String(metadata={"description": "pending, available, on_hold, void"})
    order_id = fields.Integer(allow_none=True)
    sub_order_id = fields.Integer(allow_none=True)
    order_line_id = fields.Integer(allow_none=True)
    refund_line_id = fields.Integer(allow_none=True)
    payout_id = fields.Integer(allow_none=True)
    rate_card_id = fields.Integer(allow_none=True)
    reason = fields.Dict(metadata={"description": "why: the rule, the card's terms, the paid base, the refund"})
    created_at = fields.AwareDateTime()
    state_changed_at = fields.AwareDateTime()


class CommissionPageSchema(Schema):
    items = fields.List(fields.Nested(CommissionEntrySchema))
    next_before_id = fields.Integer(allow_none=True)


class CommissionBalanceSchema(Schema):
    currency = fields.String()
    pending = fields.Integer()
    available = fields.Integer()
    on_hold = fields.Integer()


class CommissionBalancesSchema(Schema):
    guide_id = fields.Integer()
    balances = fields.List(fields.Nested(CommissionBalanceSchema))


class WhyLineArgs(Schema):
    order_line_id = fields.Integer(required=True, validate=validate.Range(1, MAX_ID))


class BindingSnapshotSchema(Schema):
    id = fields.Integer()
    guide_id = fields.Integer()
    since = fields.AwareDateTime()
    until = fields.AwareDateTime(allow_none=True)
    reason = fields.Dict()


class WhyLineSchema(Schema):
    order_line_id = fields.Integer()
    order_id = fields.Integer()
    sub_order_id = fields.Integer()
    brand_id = fields.Integer()
    guide_id = fields.Integer(allow_none=True, metadata={"description": "the guide credited (only to them/admins)"})
    verdict = fields.String(metadata={"description": "credited, pending_settlement, held_for_review, refunded, "
                                                     "no_rate_card, campaign_line_excluded, zero, not_paid, "
                                                     "not_bound_at_placement, bound_to_another_guide"})  # fmt: skip
    binding = fields.Nested(BindingSnapshotSchema, allow_none=True, metadata={"description": "the binding snapshotted"})
    binding_events = fields.List(fields.Nested(BindingEventSchema))
    entries = fields.List(fields.Nested(CommissionEntrySchema))
